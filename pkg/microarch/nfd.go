package microarch

import "github.com/compatkit/compatkit/pkg/cpuinfo"

// NFDFlag returns the cpu.cpuid element name NFD reports for a CPU feature that Linux
// /proc/cpuinfo prints as cpuinfoName, and false when NFD does not report it. arch is a GOARCH or
// an archspec family: on amd64 (x86_64) cpuinfo "flags" names map to github.com/klauspost/cpuid/v2
// names (sse4_1 → SSE4, sse4_2 → SSE42, pni and sse3 → SSE3, lahf_lm → LAHF, abm → LZCNT, fma →
// FMA3, sha_ni → SHA, aes → AESNI, pclmulqdq → CLMUL, avx512_vnni → AVX512VNNI); on arm64
// (aarch64) "Features" names map to the kernel's HWCAP names in upper case, as NFD reports them
// (asimddp → ASIMDDP, sve2 → SVE2; not sme2, which NFD v0.19 does not know). Other architectures
// report false.
//
// The table is pkg/cpuinfo's (cpuinfo.NFDFlag), the one compatkit keeps.
func NFDFlag(arch, cpuinfoName string) (string, bool) {
	switch Family(arch) {
	case "x86_64":
		return cpuinfo.NFDFlag("amd64", cpuinfoName)
	case "aarch64":
		return cpuinfo.NFDFlag("arm64", cpuinfoName)
	}
	return "", false
}

// nfdVendors maps archspec vendors to the cpu.model vendor_id NFD reports (klauspost/cpuid's
// Vendor names). Apple, IBM, SiFive and SpacemiT are absent: klauspost/cpuid v2.4.0 does not name
// them on Linux (Apple's implementer 0x61 is unknown to it; NFD reads no vendor on ppc64le and
// riscv64), so NFD reports no usable vendor_id for them.
var nfdVendors = map[string]string{
	"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "ARM": "ARM", "Ampere": "Ampere",
	"Cavium": "Cavium", "Fujitsu": "Fujitsu", "Broadcom": "Broadcom", "Qualcomm": "Qualcomm",
	"Marvell": "Marvell", "Nvidia": "NVIDIA", "APM": "AMCC", "DEC": "DEC", "Motorola": "Motorola",
	"Infineon Technologies AG": "Infineon", "Intel": "Intel",
}

// NFDVendor returns the cpu.model vendor_id NFD reports for a CPU of an archspec vendor
// ("GenuineIntel" → "Intel", "AuthenticAMD" → "AMD", "ARM" → "ARM", "Ampere" → "Ampere"), and false
// for Generic and for vendors NFD does not name (Apple, IBM, SiFive, SpacemiT).
func NFDVendor(vendor string) (string, bool) {
	v, ok := nfdVendors[vendor]
	return v, ok
}
