package host

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
)

// PlatformFeature is the attribute feature set that names a host's platform: elements os and arch
// (GOOS and GOARCH values, as in an OCI platform) and, optionally, variant. compatkit's own source
// reports it for this host, FeaturesFromLabels derives it from the kubelet's labels, and saved
// profiles carry it.
const PlatformFeature = "compatkit.platform"

// ErrNoPlatform means features do not say which platform (os/arch) the host is: NFD's own
// `nfd export features` output has no platform, for instance.
var ErrNoPlatform = errors.New("the host's platform is unknown")

// x86Levels lists, per x86-64 microarchitecture level (psABI "x86-64 Micro-architecture Levels":
// x86-64-v2, -v3, -v4), the cpuid flags it adds, in the names NFD's cpu source reports
// (klauspost/cpuid: SSE4 is SSE4.1, LAHF is LAHF/SAHF in 64-bit mode, FMA3 is FMA, CX16 is
// CMPXCHG16B). Level 1 is the x86-64 baseline every amd64 CPU has; OSXSAVE stands for the psABI's
// "XSAVE enabled by the OS" (AVX state), as klauspost/cpuid's X64Level and NFD v0.19's X86_64_V*
// flags require it.
var x86Levels = [...][]string{
	2: {"CX16", "LAHF", "POPCNT", "SSE3", "SSE4", "SSE42", "SSSE3"},
	3: {"AVX", "AVX2", "BMI1", "BMI2", "F16C", "FMA3", "LZCNT", "MOVBE", "OSXSAVE"},
	4: {"AVX512F", "AVX512BW", "AVX512CD", "AVX512DQ", "AVX512VL"},
}

// X86LevelFlags returns the cpuid flags that x86-64 microarchitecture level (2, 3 or 4) adds to the
// level below it, in NFD's names; nil for other levels.
func X86LevelFlags(level int) []string {
	if level < 2 || level >= len(x86Levels) {
		return nil
	}
	return append([]string(nil), x86Levels[level]...)
}

// X86Level returns the x86-64 microarchitecture level (1-4, psABI) of the host whose cpu.cpuid
// flags f holds: the highest level whose flags, and those of every level below, are all present.
// NFD v0.19's own X86_64_V2..X86_64_V4 flags count as well. Level 1 is the floor: every amd64
// host has the baseline, also when its features do not list it (features rebuilt from node
// labels, for example). Missing flags lower the level, never raise it.
func X86Level(f *Features) int {
	level := 1
	if f == nil {
		return level
	}
	flags := f.Flags["cpu.cpuid"].Elements
	has := func(name string) bool { _, ok := flags[name]; return ok }
	for l := 2; l < len(x86Levels); l++ {
		ok := true
		for _, fl := range x86Levels[l] {
			if !has(fl) {
				ok = false
				break
			}
		}
		if !ok {
			break
		}
		level = l
	}
	for l := len(x86Levels) - 1; l > level; l-- {
		if has(fmt.Sprintf("X86_64_V%d", l)) {
			return l
		}
	}
	return level
}

// Platform returns the OCI platform (image-spec v1.1 image-index.md "platform") of the host whose
// features f holds:
//
//   - os and architecture from the PlatformFeature attribute (ErrNoPlatform when it is missing);
//   - on amd64, the variant is the x86-64 level X86Level computes from cpu.cpuid ("v1" .. "v4"),
//     lowered to the attribute's own variant when that is lower (an administrator may cap it);
//   - on arm64, the attribute's variant when it is one containerd knows (v8, v8.1 .. v9.x), else
//     "v8": NFD's features do not tell the architecture version, and containerd's own detection
//     reports v8 for every ARMv8 or later CPU;
//   - on arm, the attribute's variant (v5 .. v8), else "v5", the lowest, so that no image is chosen
//     for an instruction set the host may lack;
//   - on other architectures, the attribute's variant as given.
//
// The result never claims more than the features show: a platform is a requirement an image puts
// on the host, like its spec.
func Platform(f *Features) (ocispec.Platform, error) {
	if f == nil {
		return ocispec.Platform{}, ErrNoPlatform
	}
	el := f.Attributes[PlatformFeature].Elements
	os, arch, variant := strings.TrimSpace(el["os"]), strings.TrimSpace(el["arch"]), strings.TrimSpace(el["variant"])
	if arch == "" {
		return ocispec.Platform{}, ErrNoPlatform
	}
	if os == "" {
		os = "linux"
	}
	// uname's and distributions' names (x86_64, aarch64, Linux) are GOOS/GOARCH names here, as
	// containerd normalises them.
	n := platforms.Normalize(ocispec.Platform{OS: strings.ToLower(os), Architecture: arch, Variant: variant})
	if a := strings.ToLower(arch); variant == "" && (a == "armhf" || a == "armel") {
		variant = n.Variant // the Debian names say the variant
	}
	os, arch, variant = n.OS, n.Architecture, strings.ToLower(variant)
	p := ocispec.Platform{OS: os, Architecture: arch}
	switch arch {
	case "amd64":
		level := X86Level(f)
		if n, err := strconv.Atoi(strings.TrimPrefix(variant, "v")); err == nil && n >= 1 && n < level {
			level = n
		}
		p.Variant = "v" + strconv.Itoa(level)
	case "arm64":
		p.Variant = "v8"
		if ARM64Variant(variant) {
			p.Variant = variant
		}
	case "arm":
		p.Variant = "v5"
		switch variant {
		case "v5", "v6", "v7", "v8":
			p.Variant = variant
		}
	default:
		p.Variant = variant
	}
	return p, nil
}

// ARM64Variant reports whether v is an arm64 variant containerd's platform matching knows: v8,
// v8.0 .. v8.9, v9, v9.0 .. v9.7.
func ARM64Variant(v string) bool {
	major, minor, hasMinor := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	if !strings.HasPrefix(v, "v") {
		return false
	}
	m, err := strconv.Atoi(minor)
	switch {
	case major == "8":
		return !hasMinor || (err == nil && m >= 0 && m <= 9)
	case major == "9":
		return !hasMinor || (err == nil && m >= 0 && m <= 7)
	}
	return false
}

// SetPlatform records p in f's PlatformFeature attribute (os, arch and variant when not empty),
// replacing what was there.
func SetPlatform(f *Features, p ocispec.Platform) {
	el := map[string]string{"os": p.OS, "arch": p.Architecture}
	if p.Variant != "" {
		el["variant"] = p.Variant
	}
	if f.Attributes == nil {
		f.Attributes = map[string]nfdv1alpha1.AttributeFeatureSet{}
	}
	f.Attributes[PlatformFeature] = nfdv1alpha1.AttributeFeatureSet{Elements: el}
}
