// Package cpuinfo reads Linux /proc/cpuinfo files (of this machine, a mounted root or a support
// dump such as a sosreport) for every architecture compatkit knows (amd64, arm64, s390x, ppc64le,
// riscv64), and turns them into the cpu features NFD's cpu source reports (cpu.cpuid flags,
// cpu.model attributes), in NFD's names.
//
// NFD's cpu source asks the CPU itself (CPUID on x86, AT_HWCAP on arm64), so it cannot read a dump;
// this package is what compatkit uses instead for dumps, and on builds where NFD's cpu source does
// not exist (no cgo on arm64, s390x, ppc64le; riscv64).
//
// A dump says less than the CPU itself: some CPUID bits are never printed by Linux, some are
// cleared by the kernel or the firmware, and the hypervisor is not named. [Info.Unknown] lists
// what a given dump cannot tell, so callers can say "unknown on this host" rather than "absent".
package cpuinfo

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxSize is the largest input Parse accepts, in bytes (4 MiB). A real /proc/cpuinfo of a
// 1024-thread x86 machine is about 1.6 MiB.
const MaxSize = 4 << 20

// Info is what a /proc/cpuinfo file says about the machine's CPU, as the kernel printed it.
type Info struct {
	// Arch is the GOARCH of the machine (amd64, arm64, s390x, ppc64le, riscv64): given to Parse, or
	// inferred from the file's fields.
	Arch string
	// Vendor is the raw vendor the file names: x86 "vendor_id" (GenuineIntel, AuthenticAMD, ...),
	// arm64 "CPU implementer" ("0x41"), s390x "vendor_id" ("IBM/S390"), riscv64 "mvendorid"
	// ("0x710"), ppc64le none ("" when the file does not say).
	Vendor string
	// ModelName is the "model name" (x86; arm64 when the kernel prints one), "cpu" (ppc64le:
	// "POWER9 (raw), altivec supported"), "uarch" (riscv64; else its "model name"), or "" when
	// absent.
	ModelName string
	// Flags are the CPU's feature names exactly as the kernel prints them, sorted and unique: x86
	// "flags", arm64 "Features", s390x "features", riscv64 the extensions of the "isa" string
	// (single letters and multi-letter names, lower case, "g" expanded), ppc64le none.
	Flags []string
	// Fields holds the first processor block's fields (key as printed, trimmed; value trimmed) and
	// the machine-wide fields some architectures print once, outside processor blocks (s390x's
	// header, ppc64le's trailing "timebase"/"platform"/"model"/"machine"); for a key printed more
	// than once there, the first value wins.
	Fields map[string]string
	// Processors is the number of processor blocks (logical CPUs listed): "processor" lines, or
	// on s390x the "# processors" count (else its "processor N:" lines).
	Processors int

	// all holds every "key : value" pair of the file in order (NFD's s390x model code reads some
	// of them across all blocks).
	all []field
}

type field struct{ key, value string }

// Parse parses a Linux /proc/cpuinfo file of an amd64, arm64, s390x, ppc64le or riscv64 machine.
//
// arch is a GOARCH; "" infers it from the content (x86: "vendor_id" and "flags"; arm64: "CPU
// implementer" or "Features"; s390x: "vendor_id : IBM/S390" or "features"; ppc64le: "cpu : POWERn"
// or "platform"; riscv64: "isa : rv64..."). Errors (all prefixed "cpuinfo: "): input over
// [MaxSize]; empty, binary (a NUL byte) or without any "key : value" line; an unsupported arch
// (given or found: 32-bit arm, rv32, ...); a given arch the content contradicts (the error names
// both); the architecture's feature line missing from the first processor block (x86 "flags",
// arm64 "Features", s390x "features", riscv64 "isa", ppc64le "cpu"). Unknown values (an arm64
// implementer or part, an x86 vendor) are not errors. Parse never panics.
func Parse(data []byte, arch string) (*Info, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("cpuinfo: input is %d bytes, over the %d-byte (4 MiB) limit", len(data), MaxSize)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("cpuinfo: empty input")
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return nil, fmt.Errorf("cpuinfo: not a text file (NUL byte at offset %d)", i)
	}
	switch arch {
	case "", "amd64", "arm64", "s390x", "ppc64le", "riscv64":
	default:
		return nil, fmt.Errorf("cpuinfo: unsupported arch %q (want amd64, arm64, s390x, ppc64le, riscv64 or \"\" to infer)", arch)
	}

	info := &Info{Fields: map[string]string{}}
	blocks := split(string(data), info)
	if len(info.all) == 0 {
		return nil, fmt.Errorf("cpuinfo: no \"key : value\" line in %d bytes; not a /proc/cpuinfo file", len(data))
	}
	// Fields: the first processor block, then the machine-wide blocks.
	first := -1
	for i, b := range blocks {
		if b.processor {
			first = i
			break
		}
	}
	if first < 0 {
		first = 0
	}
	for _, f := range blocks[first].fields {
		if _, ok := info.Fields[f.key]; !ok {
			info.Fields[f.key] = f.value
		}
	}
	for i, b := range blocks {
		if i == first || b.processor {
			continue
		}
		for _, f := range b.fields {
			if _, ok := info.Fields[f.key]; !ok {
				info.Fields[f.key] = f.value
			}
		}
	}

	found, why, err := infer(info)
	if err != nil {
		return nil, err
	}
	switch {
	case arch == "" && found == "":
		return nil, fmt.Errorf("cpuinfo: cannot tell the architecture: none of x86 \"vendor_id\"+\"flags\", arm64 \"CPU implementer\"/\"Features\", s390x \"vendor_id : IBM/S390\"/\"features\", ppc64le \"cpu : POWERn\"/\"platform\", riscv64 \"isa : rv64...\" in the first processor block")
	case arch == "":
		arch = found
	case found != "" && found != arch:
		return nil, fmt.Errorf("cpuinfo: arch %s was given but the file is %s (%s)", arch, found, why)
	}
	info.Arch = arch

	for _, f := range info.all {
		if f.key == "processor" {
			info.Processors++
		}
	}
	get := func(k string) string { return info.Fields[k] }
	switch arch {
	case "amd64":
		v, ok := blocks[first].get("flags")
		if !ok {
			return nil, fmt.Errorf("cpuinfo: no \"flags\" line in the first processor block (x86)")
		}
		info.Flags = words(v)
		info.Vendor = get("vendor_id")
		info.ModelName = get("model name")
	case "arm64":
		v, ok := info.Fields["Features"]
		if !ok {
			return nil, fmt.Errorf("cpuinfo: no \"Features\" line in the first processor block (arm64)")
		}
		info.Flags = words(v)
		info.Vendor = get("CPU implementer")
		info.ModelName = get("model name")
	case "s390x":
		v, ok := info.Fields["features"]
		if !ok {
			return nil, fmt.Errorf("cpuinfo: no \"features\" line in the header block (s390x)")
		}
		info.Flags = words(v)
		info.Vendor = get("vendor_id")
		info.Processors = 0
		if n, err := strconv.Atoi(get("# processors")); err == nil && n > 0 {
			info.Processors = n
		} else {
			for _, f := range info.all {
				if strings.HasPrefix(f.key, "processor ") {
					info.Processors++
				}
			}
		}
	case "ppc64le":
		v, ok := info.Fields["cpu"]
		if !ok {
			return nil, fmt.Errorf("cpuinfo: no \"cpu\" line in the first processor block (ppc64le)")
		}
		info.ModelName = v
	case "riscv64":
		isa, ok := info.Fields["isa"]
		if !ok {
			isa, ok = info.Fields["hart isa"]
		}
		if !ok {
			return nil, fmt.Errorf("cpuinfo: no \"isa\" line in the first processor block (riscv64)")
		}
		exts, err := parseISA(isa)
		if err != nil {
			return nil, err
		}
		info.Flags = exts
		info.Vendor = get("mvendorid")
		info.ModelName = get("uarch")
		if info.ModelName == "" {
			info.ModelName = get("model name")
		}
	}
	if info.Processors == 0 {
		info.Processors = 1
	}
	return info, nil
}

type block struct {
	fields    []field
	processor bool // has a "processor" (or s390x "cpu number") field
}

func (b block) get(k string) (string, bool) {
	for _, f := range b.fields {
		if f.key == k {
			return f.value, true
		}
	}
	return "", false
}

// split cuts the text into blank-line separated blocks of "key : value" fields (lines without a
// colon are skipped), recording every field in info.all. A "processor" line also starts a new
// block, for old arm64 kernels that print processor lines back to back.
func split(text string, info *Info) []block {
	var blocks []block
	var cur block
	flush := func() {
		if len(cur.fields) > 0 {
			blocks = append(blocks, cur)
		}
		cur = block{}
	}
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "" {
			continue
		}
		if k == "processor" || k == "cpu number" {
			if cur.processor {
				flush()
			}
			cur.processor = true
		}
		f := field{k, v}
		cur.fields = append(cur.fields, f)
		info.all = append(info.all, f)
	}
	flush()
	if len(blocks) == 0 {
		blocks = []block{{}}
	}
	return blocks
}

// infer tells the architecture from info.Fields: the GOARCH and the fields that tell it, "" when
// nothing does, or an error for an architecture compatkit does not support.
func infer(info *Info) (arch, why string, err error) {
	f := info.Fields
	has := func(k string) bool { _, ok := f[k]; return ok }
	switch {
	case f["vendor_id"] == "IBM/S390" || (has("features") && has("# processors")):
		return "s390x", "vendor_id " + strconv.Quote(f["vendor_id"]) + " and \"features\"", nil
	case has("vendor_id") && has("flags"):
		return "amd64", "x86 \"vendor_id\" and \"flags\"", nil
	case has("CPU implementer") || has("Features"):
		a := f["CPU architecture"]
		if a != "" && a != "8" && !strings.EqualFold(a, "AArch64") {
			if n, err := strconv.Atoi(a); err != nil || n < 8 {
				return "", "", fmt.Errorf("cpuinfo: 32-bit arm (\"CPU architecture: %s\") is not supported", a)
			}
		}
		return "arm64", "arm64 \"CPU implementer\"/\"Features\"", nil
	case has("isa"):
		isa := strings.ToLower(f["isa"])
		if strings.HasPrefix(isa, "rv64") {
			return "riscv64", "riscv64 \"isa : " + short(f["isa"]) + "\"", nil
		}
		if strings.HasPrefix(isa, "rv32") {
			return "", "", fmt.Errorf("cpuinfo: 32-bit RISC-V (\"isa : %s\") is not supported", short(f["isa"]))
		}
	}
	if c := f["cpu"]; strings.HasPrefix(strings.ToUpper(c), "POWER") || has("platform") && (strings.Contains(f["platform"], "PowerNV") || strings.Contains(f["platform"], "pSeries")) {
		return "ppc64le", "ppc64le \"cpu : " + short(c) + "\"", nil
	}
	return "", "", nil
}

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// words splits a feature line into sorted, unique names.
func words(s string) []string {
	w := strings.Fields(s)
	slices.Sort(w)
	return slices.Compact(w)
}

// parseISA splits a Linux riscv64 "isa" string (rv64imafdcv_zicbom_..._zbs) into its extensions,
// lower case, sorted and unique: single letters (with "g" expanded to i, m, a, f, d, zicsr,
// zifencei) and the "_"-separated multi-letter names. Version suffixes (2p0) are dropped.
func parseISA(isa string) ([]string, error) {
	s := strings.ToLower(strings.TrimSpace(isa))
	if !strings.HasPrefix(s, "rv64") {
		return nil, fmt.Errorf("cpuinfo: riscv64 \"isa\" %q does not start with rv64", short(isa))
	}
	var out []string
	add := func(e string) {
		if e == "g" {
			out = append(out, "i", "m", "a", "f", "d", "zicsr", "zifencei")
			return
		}
		out = append(out, e)
	}
	parts := strings.Split(s[4:], "_")
	base := parts[0]
	for i := 0; i < len(base); i++ {
		c := base[i]
		switch {
		case c == 'z' || c == 's' || c == 'x':
			// A multi-letter extension glued to the base (not Linux's format, but harmless).
			add(trimVersion(base[i:]))
			i = len(base)
		case c >= 'a' && c <= 'z':
			if c == 'p' && i > 0 && base[i-1] >= '0' && base[i-1] <= '9' {
				continue // the "p" of a version such as 2p1
			}
			add(string(c))
		case c >= '0' && c <= '9':
			// version number: skipped
		default:
			return nil, fmt.Errorf("cpuinfo: riscv64 \"isa\" %q has an unexpected %q", short(isa), c)
		}
	}
	for _, p := range parts[1:] {
		p = trimVersion(strings.TrimSpace(p))
		if p != "" {
			add(p)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// trimVersion drops a trailing extension version: "zicbom1p0" -> "zicbom", "zba2" -> "zba"; a
// name ending in a letter ("zicbop") is kept whole.
func trimVersion(s string) string {
	isDigit := func(r rune) bool { return r >= '0' && r <= '9' }
	t := strings.TrimRightFunc(s, isDigit)
	if t == s {
		return s
	}
	if u, ok := strings.CutSuffix(t, "p"); ok && u != strings.TrimRightFunc(u, isDigit) {
		t = strings.TrimRightFunc(u, isDigit)
	}
	if t == "" {
		return s
	}
	return t
}
