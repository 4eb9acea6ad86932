package admission_test

import (
	"testing"

	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"

	"github.com/compatkit/compatkit/pkg/admission"
	"github.com/compatkit/compatkit/pkg/host"
)

// TestNodesFeatureSets: equal labels share a set; a NodeFeature makes a set of its own and goes
// back to the labels' when deleted; a NodeFeature of an unknown node is kept until the node comes;
// deleting nodes empties the sets.
func TestNodesFeatureSets(t *testing.T) {
	n := admission.NewNodes()
	n.Upsert(Node("a", "amd64", "6", V3Flags...))
	n.Upsert(Node("b", "amd64", "6", V3Flags...))
	n.Upsert(Node("c", "amd64", "5"))
	if nodes, sets := n.Counts(); nodes != 3 || sets != 2 {
		t.Fatalf("%d nodes, %d sets; want 3, 2", nodes, sets)
	}
	sa, _ := n.Set("a")
	if sb, _ := n.Set("b"); sa != sb || sa.Nodes != 2 || sa.Host.Platform.Variant != "v3" {
		t.Errorf("a and b: %+v %+v", sa, sb)
	}
	f := nfdv1alpha1.NewFeatures()
	f.Flags["cpu.cpuid"] = nfdv1alpha1.NewFlagFeatures("AVX", "SSE4")
	n.UpsertNodeFeature("nfd/a", host.Node{Name: "a", Features: f})
	n.UpsertNodeFeature("nfd/later", host.Node{Name: "later", Features: f})
	if _, sets := n.Counts(); sets != 3 {
		t.Errorf("%d sets after a's NodeFeature, want 3", sets)
	}
	if s, _ := n.Set("a"); !s.FromNodeFeature || s.Host.Platform.Architecture != "amd64" || s.Host.Platform.Variant == "v3" {
		t.Errorf("a from its NodeFeature: %+v (platform from the labels, level from the flags)", s)
	}
	n.Upsert(Node("later", "amd64", "6"))
	if s, _ := n.Set("later"); s == nil || !s.FromNodeFeature {
		t.Errorf("a NodeFeature that came before its node: %+v", s)
	}
	n.DeleteNodeFeature("nfd/a")
	if s, _ := n.Set("a"); s != sa || s.Nodes != 2 {
		t.Errorf("a after its NodeFeature went: %+v, want the labels' set", s)
	}
	for _, name := range []string{"a", "b", "c", "later"} {
		n.Delete(name)
	}
	if nodes, sets := n.Counts(); nodes != 0 || sets != 0 {
		t.Errorf("%d nodes, %d sets after deleting all", nodes, sets)
	}
}
