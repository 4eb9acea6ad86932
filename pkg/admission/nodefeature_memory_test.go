package admission_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/compatkit/compatkit/pkg/admission"
	"github.com/compatkit/compatkit/pkg/host"
)

// TestNodeFeatureMemory: NFD's worker publishes every CONFIG_ option of the node's kernel
// (thousands) in its NodeFeature; nodes with equal NodeFeatures keep one copy of their features
// (Nodes.Intern), so a thousand nodes of one model and kernel cost megabytes, not gigabytes. (The
// informer keeps a stub of each object: WatchNodes's transform.)
func TestNodeFeatureMemory(t *testing.T) {
	var kcfg, flags, mods []string
	for i := range 9000 {
		kcfg = append(kcfg, fmt.Sprintf("%q: %q", fmt.Sprintf("SOME_KERNEL_OPTION_NUMBER_%04d", i), "y"))
	}
	for i := range 150 {
		flags = append(flags, fmt.Sprintf("%q: {}", fmt.Sprintf("FLAG%03d", i)))
		mods = append(mods, fmt.Sprintf("%q: {}", fmt.Sprintf("module_%03d", i)))
	}
	features := fmt.Sprintf(`{"flags": {"cpu.cpuid": {"elements": {%s}}, "kernel.loadedmodule": {"elements": {%s}}},
		"attributes": {"kernel.version": {"elements": {"major": "6", "minor": "8", "full": "6.8.0"}}, "kernel.config": {"elements": {%s}}}}`,
		strings.Join(flags, ","), strings.Join(mods, ","), strings.Join(kcfg, ","))
	const n = 100
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	nodes := admission.NewNodes()
	for i := range n {
		nodes.Upsert(Node(fmt.Sprintf("node-%d", i), "amd64", "6"))
		// What WatchNodes's transform does with each object: parse it, keep it by content.
		hn, err := host.NodeFromNodeFeature(fmt.Sprintf("node-%d", i), nil, []byte(features), "test")
		if err != nil {
			t.Fatal(err)
		}
		nodes.UpsertNodeFeature(fmt.Sprintf("nfd/node-%d", i), hn)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	perNode := (int64(ms.HeapAlloc) - int64(before)) / n
	t.Logf("NodeFeature JSON %d KiB; kept per node: %d KiB; 1,000 such nodes: %d MiB", len(features)>>10, perNode>>10, perNode*1000>>20)
	if perNode > 64<<10 {
		t.Errorf("%d KiB per node of equal NodeFeatures, want them kept once", perNode>>10)
	}
	runtime.KeepAlive(nodes)
}
