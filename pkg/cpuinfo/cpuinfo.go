// Package cpuinfo reads Linux /proc/cpuinfo files (of this machine, a mounted root or a support
// dump such as a sosreport) for every architecture compatkit knows (amd64, arm64, s390x, ppc64le,
// riscv64), and turns them into the cpu features NFD's cpu source reports (cpu.cpuid flags,
// cpu.model attributes), in NFD's names.
//
// NFD's cpu source asks the CPU itself (CPUID on x86, AT_HWCAP on arm64), so it cannot read a dump;
// this package is what compatkit uses instead for dumps, and on builds where NFD's cpu source does
// not exist (no cgo on arm64, s390x, ppc64le; riscv64).
package cpuinfo

// Info is what a /proc/cpuinfo file says about the machine's CPU, as the kernel printed it.
type Info struct {
	// Arch is the GOARCH of the machine (amd64, arm64, s390x, ppc64le, riscv64): given to Parse, or
	// inferred from the file's fields.
	Arch string
	// Vendor is the raw vendor the file names: x86 "vendor_id" (GenuineIntel, AuthenticAMD, ...),
	// arm64 "CPU implementer" ("0x41"), s390x "vendor_id" ("IBM/S390"), ppc64le and riscv64 as
	// printed ("" when the file does not say).
	Vendor string
	// ModelName is the "model name" (x86), "cpu" (ppc64le: "POWER9 (raw), altivec supported"),
	// "uarch" (riscv64), or "" when absent.
	ModelName string
	// Flags are the CPU's feature names exactly as the kernel prints them, sorted and unique: x86
	// "flags", arm64 "Features", s390x "features", riscv64 the extensions of the "isa" string
	// (single letters and multi-letter names, lower case), ppc64le none.
	Flags []string
	// Fields holds the first processor block's fields (key as printed, trimmed) and the
	// machine-wide fields some architectures print once (s390x).
	Fields map[string]string
	// Processors is the number of processor blocks.
	Processors int
}
