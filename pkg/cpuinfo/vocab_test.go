package cpuinfo

import (
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/cpuid/v2"
)

func TestKnownFlags(t *testing.T) {
	known := KnownFlags()
	if !slices.IsSorted(known) {
		t.Error("KnownFlags is not sorted")
	}
	// The first and the last klauspost FeatureID, the levels, each architecture's lists and the
	// AVX10_VERSION attribute.
	for _, n := range []string{
		cpuid.ADX.String(), cpuid.RV_ZVKSG.String(), "AVX512F", "AVX10", "SEV_SNP", "X86_64_V1",
		"X86_64_V4", "SVE2", "SMEFA64", "VXE2", "NNPA", "4xxMAC", "POWER5+", "HTM-NO-SUSPEND", "MMA",
		"VFPv3", "NEON", "RV_IMA", "AVX10_VERSION",
	} {
		if !slices.Contains(known, n) || !IsKnownFlag(n) {
			t.Errorf("%s is not known", n)
		}
	}
	for _, n := range []string{"", "AVX521F", "avx2", "firstID", "lastID", "RV_I", "RV_zba", "cpu.cpuid"} {
		if IsKnownFlag(n) {
			t.Errorf("%q is known", n)
		}
	}
	for _, n := range []string{"RV_ZICSR", "RV_SSTC", "RV_XTHEADVECTOR", "RV_H"} {
		if !IsKnownFlag(n) {
			t.Errorf("riscv64 %s is not known", n)
		}
	}
	known[0] = "changed"
	if KnownFlags()[0] == "changed" {
		t.Error("KnownFlags returns its own slice")
	}
}

// TestKnownFlagsCoverDumps checks that every cpu.cpuid name compatkit reports from a real dump is
// in the vocabulary vet checks specs against.
func TestKnownFlagsCoverDumps(t *testing.T) {
	for name, data := range dumps(t) {
		info, err := Parse(data, "")
		if err != nil {
			continue
		}
		for _, f := range info.CpuidFlags() {
			if !IsKnownFlag(f) {
				t.Errorf("%s: %s (%s) is not a known flag", name, f, info.Arch)
			}
		}
	}
	for _, l := range [][]string{arm64Flags, s390xFlags} {
		for _, f := range l {
			if !IsKnownFlag(strings.ToUpper(f)) {
				t.Errorf("%s is not known", f)
			}
		}
	}
	for _, f := range x86Flags {
		if !IsKnownFlag(f) {
			t.Errorf("x86 %s is not known", f)
		}
	}
	for _, f := range x86Hidden {
		if !IsKnownFlag(f) {
			t.Errorf("x86 hidden %s is not known", f)
		}
	}
}
