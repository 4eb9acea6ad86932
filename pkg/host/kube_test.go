package host

import (
	"strings"
	"testing"
)

const nodeList = `{"apiVersion": "v1", "kind": "List", "items": [
 {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "gpu-1", "labels": {
   "kubernetes.io/arch": "amd64",
   "feature.node.kubernetes.io/cpu-cpuid.AVX2": "true",
   "feature.node.kubernetes.io/cpu-cpuid.AVX10_VERSION": "1",
   "feature.node.kubernetes.io/cpu-model.vendor_id": "AMD",
   "feature.node.kubernetes.io/cpu-hardware_multithreading": "true",
   "feature.node.kubernetes.io/kernel-version.full": "6.8.0-45-generic",
   "feature.node.kubernetes.io/kernel-version.major": "6",
   "feature.node.kubernetes.io/system-os_release.ID": "ubuntu",
   "feature.node.kubernetes.io/pci-0302_10de.present": "true",
   "feature.node.kubernetes.io/pci-0302_10de.sriov.capable": "true",
   "feature.node.kubernetes.io/usb-ff_1d6b_0003.present": "true"}}},
 {"apiVersion": "nfd.k8s-sigs.io/v1alpha1", "kind": "NodeFeature", "metadata": {"name": "cpu-2-abcde", "labels": {"nfd.node.kubernetes.io/node-name": "cpu-2"}},
  "spec": {"features": {"flags": {"cpu.cpuid": {"elements": {"BMI2": {}}}}}}}
]}`

func TestParseNodes(t *testing.T) {
	nodes, err := ParseNodes([]byte(nodeList), "nodes.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0].Name != "gpu-1" || !nodes[0].FromLabels || nodes[1].Name != "cpu-2" || nodes[1].FromLabels {
		t.Fatalf("nodes %+v", nodes)
	}
	f := nodes[0].Features
	if _, ok := f.Flags["cpu.cpuid"].Elements["AVX2"]; !ok {
		t.Error("AVX2 flag missing")
	}
	if f.Attributes["cpu.cpuid"].Elements["AVX10_VERSION"] != "1" {
		t.Error("AVX10_VERSION attribute missing")
	}
	if f.Attributes["cpu.model"].Elements["vendor_id"] != "AMD" || f.Attributes["cpu.topology"].Elements["hardware_multithreading"] != "true" {
		t.Errorf("cpu attributes %v", f.Attributes)
	}
	if f.Attributes["kernel.version"].Elements["major"] != "6" || f.Attributes["system.osrelease"].Elements["ID"] != "ubuntu" {
		t.Errorf("kernel/system %v", f.Attributes)
	}
	pci := f.Instances["pci.device"].Elements
	if len(pci) != 1 || pci[0].Attributes["vendor"] != "10de" || pci[0].Attributes["class"] != "0302" {
		t.Errorf("pci %v", pci)
	}
	usb := f.Instances["usb.device"].Elements
	if len(usb) != 1 || usb[0].Attributes["device"] != "0003" {
		t.Errorf("usb %v", usb)
	}
	if f.Attributes["compatkit.platform"].Elements["arch"] != "amd64" {
		t.Errorf("platform from kubernetes.io labels: %v", f.Attributes["compatkit.platform"])
	}
	// AVX2 is labelled: the x86-64 baseline and what AVX2 implies are inferred; what only AVX
	// would imply is not.
	inferred := strings.Join(nodes[0].Inferred, " ")
	if !strings.Contains(inferred, "BMI2") || !strings.Contains(inferred, "SSE2") || strings.Contains(inferred, "POPCNT") {
		t.Errorf("inferred %q", inferred)
	}
	if _, ok := f.Flags["cpu.cpuid"].Elements["LZCNT"]; !ok {
		t.Error("LZCNT not inferred from AVX2")
	}
	if _, ok := nodes[1].Features.Flags["cpu.cpuid"].Elements["BMI2"]; !ok {
		t.Error("NodeFeature features lost")
	}
}

func TestParseNodesErrors(t *testing.T) {
	for in, want := range map[string]string{
		`{"kind": "List", "items": []}`:                      "no items",
		`{"kind": "List", "items": [{"kind": "Pod"}]}`:       `items[0]: invalid feature file: kind "Pod"`,
		`{"kind": "NodeFeature", "metadata": {"name": "x"}}`: "has no spec.features",
	} {
		_, err := ParseNodes([]byte(in), "n.json")
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "n.json") {
			t.Errorf("%s: error %v, want %q", in, err, want)
		}
	}
}

// FuzzParseNodes: kubectl's node and NodeFeature lists (and single objects) as users save them; a
// parse either fails with an error or yields nodes with names and features.
func FuzzParseNodes(f *testing.F) {
	f.Add([]byte(nodeList))
	f.Add([]byte(`{"kind": "List", "items": []}`))
	f.Add([]byte(`{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n", "labels": {"kubernetes.io/arch": "arm64", "feature.node.kubernetes.io/cpu-cpuid.ASIMD": "true"}}}`))
	f.Add([]byte("apiVersion: v1\nkind: NodeList\nitems:\n- metadata: {name: a, labels: {kubernetes.io/arch: amd64}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		nodes, err := ParseNodes(data, "fuzz")
		if err != nil {
			return
		}
		for i, n := range nodes {
			if n.Features == nil {
				t.Fatalf("node %d (%q) without features", i, n.Name)
			}
		}
	})
}

// NFD v0.19 labels the x86-64 level; features rebuilt from such labels have every flag of it.
func TestInferFromLevelLabel(t *testing.T) {
	f := FeaturesFromLabels(map[string]string{"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
		NFDLabelPrefix + "cpu-cpuid.X86_64_V3": "true", NFDLabelPrefix + "cpu-cpuid.X86_64_V2": "true"})
	InferUnlabelledCPUID(f)
	if got := X86Level(f); got != 3 {
		t.Errorf("level %d, want 3", got)
	}
	for _, fl := range append(X86LevelFlags(2), X86LevelFlags(3)...) {
		if _, ok := f.Flags["cpu.cpuid"].Elements[fl]; !ok {
			t.Errorf("%s not inferred from X86_64_V3", fl)
		}
	}
	if _, ok := f.Flags["cpu.cpuid"].Elements["AVX512F"]; ok {
		t.Error("AVX512F inferred from X86_64_V3")
	}
}
