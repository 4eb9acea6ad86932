package host

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/compatkit/compatkit/internal/fileutil"

	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
	"sigs.k8s.io/yaml"
)

// NFDLabelPrefix is the prefix of the node labels NFD's worker publishes.
const NFDLabelPrefix = "feature.node.kubernetes.io/"

// NFDUnlabelledCPUID lists the cpuid flags NFD v0.19 (as v0.18) discovers but does not publish as node labels
// by default (the cpu source's attributeBlacklist). Features rebuilt from labels lack them even
// when the CPU has them; NodeFeature objects carry them.
var NFDUnlabelledCPUID = []string{"AVX10", "BMI1", "BMI2", "CLMUL", "CMOV", "CX16", "ERMS", "F16C", "HTT",
	"LZCNT", "MMX", "MMXEXT", "NX", "POPCNT", "RDRAND", "RDSEED", "RDTSCP", "SGX", "SGXLC", "SSE", "SSE2",
	"SSE3", "SSE4", "SSE42", "SSSE3", "TDX_GUEST"}

// Node is a named host and its features.
type Node struct {
	// Name of the node (Kubernetes node name, profile name or file name).
	Name string `json:"name"`
	// Features of the node.
	Features *Features `json:"features"`
	// FromLabels is true when Features were rebuilt from NFD's node labels, which omit some
	// features (see NFDUnlabelledCPUID, and every instance attribute but class and vendor).
	FromLabels bool `json:"fromLabels,omitempty"`
	// Inferred lists the cpuid flags InferUnlabelledCPUID added to features rebuilt from labels.
	Inferred []string `json:"inferred,omitempty"`
}

// ReadNodes reads hosts from path: a Kubernetes Node, a List of Nodes (`kubectl get nodes -o
// json`), a NodeFeature or a List of them (`kubectl get nodefeatures -A -o json`), or a saved
// feature file (ParseFeatures; the node is named after the file). JSON or YAML.
func ReadNodes(path string) ([]Node, error) {
	data, err := fileutil.ReadLimited(path, MaxFeatureFileBytes*16)
	if err != nil {
		return nil, fmt.Errorf("reading nodes: %w", err)
	}
	return ParseNodes(data, path)
}

type kubeObject struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Features json.RawMessage `json:"features"`
	} `json:"spec"`
	Items []json.RawMessage `json:"items"`
}

// ParseNodes decodes the shapes ReadNodes accepts; source names the input in errors.
func ParseNodes(data []byte, source string) ([]Node, error) {
	j, err := yaml.YAMLToJSON(bytes.TrimSpace(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", source, ErrFeatureFile, err)
	}
	var obj kubeObject
	if err := json.Unmarshal(j, &obj); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", source, ErrFeatureFile, err)
	}
	switch obj.Kind {
	case "List", "NodeList", "NodeFeatureList":
		var out []Node
		for i, raw := range obj.Items {
			n, err := parseKubeNode(raw, fmt.Sprintf("%s: items[%d]", source, i))
			if err != nil {
				return nil, err
			}
			out = append(out, n)
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%s: %w: the list has no items", source, ErrFeatureFile)
		}
		return MergeNodeFeatures(out), nil
	case "Node", "NodeFeature":
		n, err := parseKubeNode(j, source)
		if err != nil {
			return nil, err
		}
		return []Node{n}, nil
	}
	f, err := ParseFeatures(data, source)
	if err != nil {
		return nil, err
	}
	return []Node{{Name: nodeNameFromPath(source), Features: f}}, nil
}

func nodeNameFromPath(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		p = p[i+1:]
	}
	for _, ext := range []string{".json", ".yaml", ".yml"} {
		p = strings.TrimSuffix(p, ext)
	}
	return p
}

func parseKubeNode(raw []byte, source string) (Node, error) {
	var obj kubeObject
	if err := json.Unmarshal(raw, &obj); err != nil {
		return Node{}, fmt.Errorf("%s: %w: %v", source, ErrFeatureFile, err)
	}
	switch obj.Kind {
	case "Node":
		return NodeFromLabels(obj.Metadata.Name, obj.Metadata.Labels), nil
	case "NodeFeature":
		if len(obj.Spec.Features) == 0 {
			return Node{}, fmt.Errorf("%s: %w: NodeFeature %s has no spec.features", source, ErrFeatureFile, obj.Metadata.Name)
		}
		return NodeFromNodeFeature(obj.Metadata.Name, obj.Metadata.Labels, obj.Spec.Features, source)
	}
	return Node{}, fmt.Errorf("%s: %w: kind %q is neither Node nor NodeFeature", source, ErrFeatureFile, obj.Kind)
}

// NodeFromLabels returns a Kubernetes Node of this name and labels as ParseNodes reads it: its
// features rebuilt from NFD's labels (FeaturesFromLabels), with the unlabelled cpuid flags that
// can be inferred (InferUnlabelledCPUID) and compatkit's features mirrored (MirrorCompatkit).
func NodeFromLabels(name string, labels map[string]string) Node {
	f := FeaturesFromLabels(labels)
	inferred := InferUnlabelledCPUID(f)
	MirrorCompatkit(f)
	return Node{Name: name, Features: f, FromLabels: true, Inferred: inferred}
}

// NodeFromNodeFeature returns an NFD NodeFeature object (nfd.k8s-sigs.io/v1alpha1) as ParseNodes
// reads it, from its name, labels and the JSON of its spec.features (ParseFeatures): the node is
// the one its nfd.node.kubernetes.io/node-name label names, else the object's name. source names
// the object in errors.
func NodeFromNodeFeature(name string, labels map[string]string, features []byte, source string) (Node, error) {
	f, err := ParseFeatures(features, source)
	if err != nil {
		return Node{}, err
	}
	// NFD names NodeFeature objects after the node and records it in this label.
	if n := labels[nfdv1alpha1.NodeFeatureObjNodeNameLabel]; n != "" {
		name = n
	}
	return Node{Name: name, Features: f}, nil
}

// MergeNodeFeatures joins the nodes read from several NodeFeature objects of one node (NFD may
// publish more than one per node; Merge in list order) and keeps list order otherwise. Nodes
// rebuilt from labels are never merged.
func MergeNodeFeatures(nodes []Node) []Node {
	idx := map[string]int{}
	var out []Node
	for _, n := range nodes {
		if i, ok := idx[n.Name]; ok && !n.FromLabels && !out[i].FromLabels {
			Merge(out[i].Features, n.Features)
			continue
		}
		idx[n.Name] = len(out)
		out = append(out, n)
	}
	return out
}

// FeaturesFromLabels rebuilds features from NFD's node labels
// (feature.node.kubernetes.io/<source>-<name>), the inverse of NFD v0.18's default labelling:
//
//	cpu-cpuid.AVX2=true           → flags cpu.cpuid AVX2 (other values: attributes cpu.cpuid)
//	cpu-model.vendor_id=Intel     → attributes cpu.model vendor_id (also cstate, pstate, security)
//	cpu-power.sst_bf.enabled=true → attributes cpu.sst bf.enabled
//	cpu-hardware_multithreading   → attributes cpu.topology hardware_multithreading
//	kernel-version.full=6.1.0     → attributes kernel.version full (also config, selinux)
//	system-os_release.ID=ubuntu   → attributes system.osrelease ID
//	pci-0300_10de.present=true    → instance pci.device {class: 0300, vendor: 10de}
//	usb-ff_1d6b_0003.present=true → instance usb.device {class: ff, vendor: 1d6b, device: 0003}
//	memory-numa=true              → attributes memory.numa is_numa
//	compatkit-<feature>.<elem>    → attributes compatkit.<feature> <elem> (compatkit's own local labels)
//	kubernetes.io/os, /arch       → attributes compatkit.platform os, arch (or the beta.kubernetes.io/ labels)
//
// Labels of other prefixes, and custom rule labels, are ignored. The result is lossy: NFD does not
// label every flag (NFDUnlabelledCPUID) nor every attribute.
func FeaturesFromLabels(labels map[string]string) *Features {
	f := nfdv1alpha1.NewFeatures()
	attr := func(feature, k, v string) {
		s, ok := f.Attributes[feature]
		if !ok {
			s = nfdv1alpha1.AttributeFeatureSet{Elements: map[string]string{}}
		}
		s.Elements[k] = v
		f.Attributes[feature] = s
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// The kubelet's well-known labels give the platform, as compatkit's own source does.
	if os, arch := LabelPlatform(labels); arch != "" {
		attr(PlatformFeature, "os", os)
		attr(PlatformFeature, "arch", arch)
	}
	for _, key := range keys {
		v := labels[key]
		name, ok := strings.CutPrefix(key, NFDLabelPrefix)
		if !ok {
			continue
		}
		src, rest, ok := strings.Cut(name, "-")
		if !ok {
			continue
		}
		switch src {
		case "cpu":
			switch {
			case strings.HasPrefix(rest, "cpuid."):
				flag := strings.TrimPrefix(rest, "cpuid.")
				if v == "true" {
					s, ok := f.Flags["cpu.cpuid"]
					if !ok {
						s = nfdv1alpha1.FlagFeatureSet{Elements: map[string]nfdv1alpha1.Nil{}}
					}
					s.Elements[flag] = nfdv1alpha1.Nil{}
					f.Flags["cpu.cpuid"] = s
				} else {
					attr("cpu.cpuid", flag, v)
				}
			case strings.HasPrefix(rest, "power.sst_"):
				attr("cpu.sst", strings.TrimPrefix(rest, "power.sst_"), v)
			case rest == "hardware_multithreading":
				attr("cpu.topology", rest, v)
			default:
				if feat, elem, ok := strings.Cut(rest, "."); ok {
					attr("cpu."+feat, elem, v)
				}
			}
		case "kernel":
			if feat, elem, ok := strings.Cut(rest, "."); ok {
				attr("kernel."+feat, elem, v)
			}
		case "system":
			if feat, elem, ok := strings.Cut(rest, "."); ok {
				if feat == "os_release" {
					feat = "osrelease"
				}
				attr("system."+feat, elem, v)
			}
		case "memory":
			if rest == "numa" {
				attr("memory.numa", "is_numa", v)
			}
		case "pci", "usb":
			dev, suffix, ok := strings.Cut(rest, ".")
			if !ok || suffix != "present" || v != "true" {
				continue
			}
			parts := strings.Split(dev, "_")
			inst := nfdv1alpha1.InstanceFeature{Attributes: map[string]string{}}
			fields := []string{"class", "vendor", "device"}
			if src == "pci" && len(parts) == 2 {
				inst.Attributes["class"], inst.Attributes["vendor"] = parts[0], parts[1]
			} else {
				for i, p := range parts {
					if i < len(fields) {
						inst.Attributes[fields[i]] = p
					}
				}
			}
			s := f.Instances[src+".device"]
			s.Elements = append(s.Elements, inst)
			f.Instances[src+".device"] = s
		case "compatkit":
			if feat, elem, ok := strings.Cut(rest, "."); ok {
				attr("compatkit."+feat, elem, v)
			}
		}
	}
	NormalizeKernelVersion(f)
	return f
}

// Kubernetes' well-known node labels for the platform (set by the kubelet), and the beta labels
// that older kubelets and some distributions still set instead.
const (
	LabelOS       = "kubernetes.io/os"
	LabelArch     = "kubernetes.io/arch"
	LabelBetaOS   = "beta.kubernetes.io/os"
	LabelBetaArch = "beta.kubernetes.io/arch"
)

// LabelPlatform returns the os and architecture that a Node's labels give: kubernetes.io/os and
// kubernetes.io/arch, else beta.kubernetes.io/os and beta.kubernetes.io/arch; os defaults to
// "linux" when only the architecture is labelled; both are empty when no architecture label is set.
func LabelPlatform(labels map[string]string) (os, arch string) {
	arch, os = labels[LabelArch], labels[LabelOS]
	if arch == "" {
		arch = labels[LabelBetaArch]
	}
	if os == "" {
		os = labels[LabelBetaOS]
	}
	if arch == "" {
		return "", ""
	}
	if os == "" {
		os = "linux"
	}
	return os, arch
}

// cpuidImplied lists, for a labelled cpuid flag, unlabelled flags every CPU that has it also has
// (x86-64: AVX arrived with Sandy Bridge and Bulldozer, which have every x86-64-v2 flag; AVX2 with
// Haswell and Excavator, which have BMI1, BMI2, F16C and LZCNT; both hold for every later CPU).
var cpuidImplied = map[string][]string{
	"AVX":  {"CX16", "LAHF", "POPCNT", "SSE3", "SSSE3", "SSE4", "SSE42"},
	"AVX2": {"BMI1", "BMI2", "F16C", "LZCNT"},
}

// x86-64 baseline flags (psABI x86-64-v1) that NFD does not label: every amd64 CPU has them.
var x8664Baseline = []string{"CMOV", "CMPXCHG8", "FXSR", "MMX", "SSE", "SSE2"}

// InferUnlabelledCPUID adds to features rebuilt from labels (FeaturesFromLabels) the cpuid flags
// NFD does not label (NFDUnlabelledCPUID) but that the node certainly has: on amd64 the x86-64
// baseline, and the flags implied by a labelled AVX or AVX2 (see cpuidImplied). Flags that cannot
// be inferred stay absent; NFD v0.19's X86_64_V2..X86_64_V4 labels imply every flag of their level
// (X86LevelFlags). It returns the flags it added, sorted.
func InferUnlabelledCPUID(f *Features) []string {
	if f.Attributes[PlatformFeature].Elements["arch"] != "amd64" {
		return nil
	}
	set, ok := f.Flags["cpu.cpuid"]
	if !ok {
		set = nfdv1alpha1.FlagFeatureSet{Elements: map[string]nfdv1alpha1.Nil{}}
	}
	var added []string
	add := func(flags ...string) {
		for _, fl := range flags {
			if _, has := set.Elements[fl]; !has {
				set.Elements[fl] = nfdv1alpha1.Nil{}
				added = append(added, fl)
			}
		}
	}
	add(x8664Baseline...)
	for labelled, implied := range cpuidImplied {
		if _, has := set.Elements[labelled]; has {
			add(implied...)
		}
	}
	// NFD v0.19 labels the x86-64 level (cpu-cpuid.X86_64_V2..V4): the node has every flag of it.
	for l := len(x86Levels) - 1; l >= 2; l-- {
		if _, has := set.Elements[fmt.Sprintf("X86_64_V%d", l)]; has {
			for k := 2; k <= l; k++ {
				add(x86Levels[k]...)
			}
			break
		}
	}
	f.Flags["cpu.cpuid"] = set
	sort.Strings(added)
	return added
}
