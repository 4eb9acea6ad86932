package host

import (
	"errors"
	"strings"
	"testing"

	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
)

var (
	v1Flags = []string{"CMOV", "CMPXCHG8", "FXSR", "MMX", "SSE", "SSE2", "X87", "SYSCALL"}
	v2Flags = append(append([]string(nil), v1Flags...), "CX16", "LAHF", "POPCNT", "SSE3", "SSE4", "SSE42", "SSSE3")
	v3Flags = append(append([]string(nil), v2Flags...), "AVX", "AVX2", "BMI1", "BMI2", "F16C", "FMA3", "LZCNT", "MOVBE", "OSXSAVE")
	v4Flags = append(append([]string(nil), v3Flags...), "AVX512F", "AVX512BW", "AVX512CD", "AVX512DQ", "AVX512VL")
)

func featuresOf(platform map[string]string, flags ...string) *Features {
	f := nfdv1alpha1.NewFeatures()
	f.Flags["cpu.cpuid"] = nfdv1alpha1.NewFlagFeatures(flags...)
	if platform != nil {
		f.Attributes[PlatformFeature] = nfdv1alpha1.AttributeFeatureSet{Elements: platform}
	}
	return f
}

func without(flags []string, drop string) []string {
	var out []string
	for _, f := range flags {
		if f != drop {
			out = append(out, f)
		}
	}
	return out
}

func TestX86Level(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
		want  int
	}{
		{"nothing listed is still the baseline", nil, 1},
		{"baseline", v1Flags, 1},
		{"v2", v2Flags, 2},
		{"v2 without POPCNT", without(v2Flags, "POPCNT"), 1},
		{"v3", v3Flags, 3},
		{"Haswell without OSXSAVE (AVX state not enabled by the OS)", without(v3Flags, "OSXSAVE"), 2},
		{"AVX2 alone is not v3", append(append([]string(nil), v2Flags...), "AVX2"), 2},
		{"v3 flags without the v2 ones are not v3", []string{"AVX", "AVX2", "BMI1", "BMI2", "F16C", "FMA3", "LZCNT", "MOVBE", "OSXSAVE"}, 1},
		{"v4", v4Flags, 4},
		{"v4 without AVX512VL", without(v4Flags, "AVX512VL"), 3},
		{"NFD v0.19 level flags", append(append([]string(nil), v1Flags...), "X86_64_V1", "X86_64_V2", "X86_64_V3"), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := X86Level(featuresOf(nil, tc.flags...)); got != tc.want {
				t.Fatalf("X86Level = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestPlatform(t *testing.T) {
	for _, tc := range []struct {
		name     string
		platform map[string]string
		flags    []string
		want     string
	}{
		{"amd64 v3 from flags", map[string]string{"os": "linux", "arch": "amd64"}, v3Flags, "linux/amd64/v3"},
		{"amd64 capped by the recorded variant", map[string]string{"os": "linux", "arch": "amd64", "variant": "v2"}, v4Flags, "linux/amd64/v2"},
		{"a recorded variant never raises the level", map[string]string{"os": "linux", "arch": "amd64", "variant": "v4"}, v2Flags, "linux/amd64/v2"},
		{"os defaults to linux", map[string]string{"arch": "amd64"}, v1Flags, "linux/amd64/v1"},
		{"arm64 defaults to v8", map[string]string{"os": "linux", "arch": "arm64"}, []string{"ASIMD", "FP"}, "linux/arm64/v8"},
		{"arm64 recorded v8.2", map[string]string{"os": "linux", "arch": "arm64", "variant": "v8.2"}, nil, "linux/arm64/v8.2"},
		{"arm64 unknown variant is v8", map[string]string{"os": "linux", "arch": "arm64", "variant": "v12"}, nil, "linux/arm64/v8"},
		{"arm without variant is v5", map[string]string{"os": "linux", "arch": "arm"}, nil, "linux/arm/v5"},
		{"arm v7", map[string]string{"os": "linux", "arch": "arm", "variant": "v7"}, nil, "linux/arm/v7"},
		{"s390x", map[string]string{"os": "linux", "arch": "s390x"}, nil, "linux/s390x"},
		{"uname's names", map[string]string{"os": "Linux", "arch": "x86_64"}, v4Flags, "linux/amd64/v4"},
		{"aarch64", map[string]string{"os": "linux", "arch": "aarch64"}, nil, "linux/arm64/v8"},
		{"armhf is v7", map[string]string{"os": "linux", "arch": "armhf"}, nil, "linux/arm/v7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Platform(featuresOf(tc.platform, tc.flags...))
			if err != nil {
				t.Fatal(err)
			}
			got := p.OS + "/" + p.Architecture
			if p.Variant != "" {
				got += "/" + p.Variant
			}
			if got != tc.want {
				t.Fatalf("Platform = %s, want %s", got, tc.want)
			}
		})
	}
	if _, err := Platform(featuresOf(nil, v3Flags...)); !errors.Is(err, ErrNoPlatform) {
		t.Fatalf("features without compatkit.platform: %v, want ErrNoPlatform", err)
	}
}

func TestLabelPlatform(t *testing.T) {
	for _, tc := range []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{LabelArch: "arm64", LabelOS: "linux"}, "linux/arm64"},
		{map[string]string{LabelBetaArch: "amd64", LabelBetaOS: "linux"}, "linux/amd64"},
		{map[string]string{LabelArch: "arm64", LabelBetaArch: "amd64"}, "linux/arm64"},
		{map[string]string{LabelBetaArch: "amd64"}, "linux/amd64"},
		{map[string]string{LabelOS: "linux"}, "/"},
	} {
		os, arch := LabelPlatform(tc.labels)
		if got := os + "/" + arch; got != tc.want {
			t.Errorf("LabelPlatform(%v) = %s, want %s", tc.labels, got, tc.want)
		}
	}
	f := FeaturesFromLabels(map[string]string{LabelBetaArch: "amd64", NFDLabelPrefix + "cpu-cpuid.AVX2": "true"})
	if p, err := Platform(f); err != nil || !strings.HasPrefix(p.OS+"/"+p.Architecture, "linux/amd64") {
		t.Fatalf("beta labels: %v %v", p, err)
	}
}

// Nodes read from labels publish compatkit's own features in both forms, as discovery and feature
// files do: compiled specs test them as local.feature elements.
func TestNodeLabelsMirrorCompatkit(t *testing.T) {
	nodes, err := ParseNodes([]byte(`{"kind": "Node", "metadata": {"name": "n", "labels": {"kubernetes.io/arch": "arm64",
  "feature.node.kubernetes.io/compatkit-nvidia.driver.major": "550"}}}`), "node.json")
	if err != nil {
		t.Fatal(err)
	}
	local := nodes[0].Features.Attributes["local.feature"].Elements
	if local["compatkit.platform.arch"] != "arm64" || local["compatkit.nvidia.driver.major"] != "550" {
		t.Fatalf("local.feature %v", local)
	}
}
