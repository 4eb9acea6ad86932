package cpuinfo

import (
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/klauspost/cpuid/v2"
)

// ppc64leFlags are the hwcap names NFD v0.19 reports on linux/ppc64le
// (source/cpu/cpuid_linux_ppc64le.go, AT_HWCAP and AT_HWCAP2), spelt as NFD spells them.
var ppc64leFlags = strings.Fields(`PPC32 PPC64 PPC601 ALTIVEC FPU MMU 4xxMAC UCACHE SPE EFPFLOAT
EFPDOUBLE NOTB POWER4 POWER5 POWER5+ CELLBE BOOKE SMT IC_SNOOP ARCH_2_05 PA6T DFP POWER6X
ARCH_2_06 VSX ARCHPMU TRUE_LE PPCLE ARCH_2_07 HTM DSCR EBB ISEL TAR VCRYPTO HTM-NOSC ARCH_3_00
IEEE128 DARN SCV HTM-NO-SUSPEND ARCH_3_1 MMA`)

// armFlags are the hwcap names NFD v0.19 reports on 32-bit linux/arm
// (source/cpu/cpuid_linux_arm.go), spelt as NFD spells them.
var armFlags = strings.Fields(`SWP HALF THUMB 26BIT FASTMUL FPA VFP EDSP JAVA IWMMXT CRUNCH THUMBEE
NEON VFPv3 VFPv3D16 TLS VFPv4 IDIVA IDIVT VFPD32 LPAE EVTSTRM AES PMULL SHA1 SHA2 CRC32`)

// cpuidAttributes are the attribute elements of NFD v0.19's cpu.cpuid (amd64 only).
var cpuidAttributes = []string{"AVX10_VERSION"}

// riscvName is the form of every riscv64 name compatkit can report beyond klauspost's own
// (riscvFeatures: "RV_" + an upper-case ISA extension): a single letter other than I, M and A
// (reported together as RV_IMA), or a multi-letter Z*, S* or X* extension.
var riscvName = regexp.MustCompile(`^RV_([B-HJ-LN-Z]|[ZSX][A-Z0-9]+)$`)

var (
	knownOnce sync.Once
	knownList []string
	knownSet  map[string]bool
)

func initKnown() {
	knownSet = map[string]bool{}
	add := func(names ...string) {
		for _, n := range names {
			knownSet[n] = true
		}
	}
	// Every klauspost/cpuid FeatureID (x86, arm64 and riscv64 names): the constants run from ADX
	// up to the unexported lastID sentinel, whose String() is "lastID".
	for id := cpuid.ADX; ; id++ {
		s := id.String()
		if s == "lastID" || strings.HasPrefix(s, "FeatureID(") {
			break
		}
		add(s)
	}
	add("X86_64_V1", "X86_64_V2", "X86_64_V3", "X86_64_V4")
	for _, f := range arm64Flags {
		add(strings.ToUpper(f))
	}
	for _, f := range s390xFlags {
		add(strings.ToUpper(f))
	}
	add(ppc64leFlags...)
	add(armFlags...)
	add(cpuidAttributes...)
	knownList = make([]string, 0, len(knownSet))
	for n := range knownSet {
		knownList = append(knownList, n)
	}
	slices.Sort(knownList)
}

// KnownFlags returns, sorted, every cpu.cpuid element name NFD v0.19 can report on any
// architecture: the github.com/klauspost/cpuid/v2 FeatureID names (amd64, and the arm64 and RV_*
// names klauspost knows), X86_64_V1..X86_64_V4, the arm64, arm, s390x and ppc64le hwcap names as
// NFD spells them, and the attribute AVX10_VERSION. riscv64 names beyond klauspost's ("RV_" + any
// ISA extension, see [IsKnownFlag]) are not listed. The caller may modify the slice.
func KnownFlags() []string {
	knownOnce.Do(initKnown)
	return slices.Clone(knownList)
}

// IsKnownFlag reports whether name is a cpu.cpuid element NFD v0.19 (or compatkit, on riscv64)
// can report: one of [KnownFlags], or an "RV_" riscv64 extension name as compatkit forms it
// (RV_ZICSR, RV_SSTC, RV_XTHEADVECTOR, ...). Names are case-sensitive, as NFD matches them.
func IsKnownFlag(name string) bool {
	knownOnce.Do(initKnown)
	return knownSet[name] || riscvName.MatchString(name)
}
