package cpuinfo

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// dumpsDir holds archspec's real /proc/cpuinfo dumps (linux-<distro>-<target>), vendored by
// another change; the tests skip when it is absent.
const dumpsDir = "../../third_party/archspec/tests/targets"

func dumps(t testing.TB) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dumpsDir)
	if err != nil {
		t.Skipf("archspec dumps not available: %v", err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "linux-") {
			continue // darwin-*, windows-*: not /proc/cpuinfo
		}
		b, err := os.ReadFile(filepath.Join(dumpsDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	if len(out) == 0 {
		t.Skip("no linux-* dumps")
	}
	return out
}

// target is the archspec target a dump name ends with.
func target(name string) string { return name[strings.LastIndex(name, "-")+1:] }

func wantArch(tgt string) string {
	switch {
	case strings.HasPrefix(tgt, "power"):
		return "ppc64le"
	case tgt == "u74mc" || tgt == "x60":
		return "riscv64"
	case strings.HasPrefix(tgt, "neoverse") || strings.HasPrefix(tgt, "cortex") || strings.HasPrefix(tgt, "ampere") ||
		tgt == "m1" || tgt == "m2" || tgt == "thunderx2" || tgt == "a64fx":
		return "arm64"
	}
	return "amd64"
}

func TestDumps(t *testing.T) {
	for name, data := range dumps(t) {
		t.Run(name, func(t *testing.T) {
			tgt := target(name)
			info, err := Parse(data, "")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if want := wantArch(tgt); info.Arch != want {
				t.Fatalf("Arch = %q, want %q", info.Arch, want)
			}
			// Given the right arch it parses the same; given a wrong one it refuses.
			if _, err := Parse(data, info.Arch); err != nil {
				t.Errorf("Parse(%s): %v", info.Arch, err)
			}
			wrong := "s390x"
			if _, err := Parse(data, wrong); err == nil || !strings.Contains(err.Error(), info.Arch) || !strings.Contains(err.Error(), wrong) {
				t.Errorf("Parse(%s) error = %v, want one naming %s and %s", wrong, err, wrong, info.Arch)
			}
			f := info.Features()
			flags := f.Flags[CpuidKey].Elements
			if info.Arch != "ppc64le" && len(flags) == 0 {
				t.Errorf("no %s flags", CpuidKey)
			}
			model := f.Attributes[ModelKey].Elements
			for _, k := range []string{"vendor_id", "family", "id"} {
				if model[k] == "" {
					t.Errorf("%s.%s missing: %v", ModelKey, k, model)
				}
			}
			if info.Processors < 1 || info.Fields == nil {
				t.Errorf("Processors = %d, Fields = %v", info.Processors, info.Fields)
			}
			if len(info.Unknown()) == 0 && info.Arch != "arm64" {
				t.Errorf("Unknown() is empty")
			}
			if !slices.IsSorted(info.Flags) {
				t.Errorf("Flags not sorted")
			}
		})
	}
}

func TestDumpKeyFlags(t *testing.T) {
	all := dumps(t)
	cases := []struct {
		target   string
		has, not []string
	}{
		{"haswell", []string{"AVX", "AVX2", "FMA3", "BMI1", "BMI2", "OSXSAVE", "AESNI", "X86_64_V1", "X86_64_V2", "X86_64_V3", "SSE3", "SSE4", "SSE42", "SSSE3", "LAHF", "LZCNT", "POPCNT", "X87", "CX16", "MOVBE", "F16C", "CLMUL", "RDRAND", "SYSEE", "SYSCALL"}, []string{"AVX512F", "X86_64_V4", "AVXSLOW", "HYPERVISOR", "HTT"}}, // siblings == cpu cores: SMT off
		{"x86_64_v3", []string{"AVX2", "X86_64_V3"}, []string{"AESNI", "X86_64_V4"}},
		// Ivy Bridge-EP is model 62: klauspost's AVXSLOW test is family 6 model < 60.
		{"ivybridge", []string{"AVX", "X86_64_V2"}, []string{"AVX2", "X86_64_V3", "AVXSLOW"}},
		{"broadwell", []string{"AVX2", "ADX", "RDSEED", "X86_64_V3"}, []string{"AVX512F"}},
		{"skylake_avx512", []string{"AVX512F", "AVX512BW", "AVX512CD", "AVX512DQ", "AVX512VL", "X86_64_V4"}, nil},
		{"cascadelake", []string{"AVX512F", "AVX512VNNI", "X86_64_V4"}, nil},
		{"sapphirerapids", []string{"AVX512F", "AMXTILE", "AMXBF16", "AMXINT8", "AVX512FP16", "X86_64_V4"}, nil},
		{"alderlake", []string{"AVXVNNI", "X86_64_V3", "SHA"}, []string{"AVX512F", "X86_64_V4"}},
		{"piledriver", []string{"AVX", "AVXSLOW", "FMA3", "FMA4", "XOP", "X86_64_V2", "SSE4A"}, []string{"AVX2", "X86_64_V3"}},
		{"bulldozer", []string{"AVX", "FMA4", "XOP", "X86_64_V2"}, []string{"AVX2", "FMA3", "X86_64_V3"}},
		{"k10", []string{"X86_64_V1", "SSE4A", "AMD3DNOW"}, []string{"SSSE3", "X86_64_V2"}},
		{"zen", []string{"AVX2", "SHA", "X86_64_V3", "CLZERO", "TSA_L1_NO", "TSA_SQ_NO"}, []string{"AVX512F", "X86_64_V4"}},
		{"zen3", []string{"AVX2", "VAES", "X86_64_V3"}, []string{"AVX512F"}},
		{"zen4", []string{"AVX512F", "AVX512BF16", "X86_64_V4"}, nil},
		{"zen5", []string{"AVX512F", "AVX512VP2INTERSECT", "X86_64_V4"}, nil},
		{"neoverse_v1", []string{"SVE", "ASIMD", "FP", "I8MM", "BF16", "CPUID"}, []string{"SVE2"}},
		{"neoverse_n2", []string{"SVE", "SVE2"}, nil},
		{"neoverse_v2", []string{"SVE", "SVE2"}, nil},
		{"a64fx", []string{"SVE"}, []string{"SVE2"}},
		{"thunderx2", []string{"ATOMICS", "CPUID"}, []string{"SVE"}},
		{"cortex_a72", []string{"ASIMD", "CRC32"}, []string{"ATOMICS", "SVE"}},
		{"m1", []string{"ATOMICS", "SHA3"}, []string{"SVE"}},
		{"power9", []string{"ARCH_3_00", "VSX", "ALTIVEC", "DARN"}, []string{"ARCH_3_1", "MMA"}},
		{"power10", []string{"ARCH_3_1", "MMA", "ARCH_3_00"}, nil},
		{"power8le", []string{"ARCH_2_07", "VCRYPTO"}, []string{"ARCH_3_00"}},
		{"u74mc", []string{"RV_IMA", "RV_C", "RV_F", "RV_D"}, []string{"RV_V", "RV_ZBA"}},
		{"x60", []string{"RV_IMA", "RV_C", "RV_F", "RV_D", "RV_V", "RV_ZBA", "RV_ZBB", "RV_ZBS", "RV_ZICOND", "RV_ZICBOM", "RV_ZFH", "RV_ZKT", "RV_ZVFH"}, []string{"RV_ZKN"}},
	}
	seen := map[string]int{}
	for name, data := range all {
		for _, c := range cases {
			if target(name) != c.target {
				continue
			}
			seen[c.target]++
			info, err := Parse(data, "")
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			flags := info.Features().Flags[CpuidKey].Elements
			for _, f := range c.has {
				if _, ok := flags[f]; !ok {
					t.Errorf("%s: no %s in %v", name, f, info.CpuidFlags())
				}
			}
			for _, f := range c.not {
				if _, ok := flags[f]; ok {
					t.Errorf("%s: unexpected %s", name, f)
				}
			}
		}
	}
	for _, c := range cases {
		if seen[c.target] == 0 {
			t.Errorf("no dump for %s", c.target)
		}
	}
}

func parseFile(t *testing.T, path, arch string) *Info {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := Parse(b, arch)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return info
}

func TestModel(t *testing.T) {
	all := dumps(t)
	cases := map[string]map[string]string{
		"linux-rhel7-haswell":              {"vendor_id": "Intel", "family": "6", "id": "63", "hypervisor": "none"},
		"linux-centos7-thunderx2":          {"vendor_id": "Cavium", "family": "31", "id": "2801", "hypervisor": "none", "implementer": "Cavium"},
		"linux-asahi-m1":                   {"vendor_id": "VendorUnknown", "family": "31", "id": "545", "implementer": "Apple"},
		"linux-rhel8-neoverse_v1":          {"vendor_id": "ARM", "implementer": "ARM"},
		"linux-rhel8-power9":               {"vendor_id": "VendorUnknown", "family": "0", "id": "0", "hypervisor": "none"},
		"linux-spacemit-x60":               {"vendor_id": "SpacemiT"},
		"linux-sifive-u74mc":               {"vendor_id": "VendorUnknown", "family": "0", "id": "0"},
		"linux-ubuntu22.04-ampere1":        {"vendor_id": "Ampere", "implementer": "Ampere"},
		"linux-scientific7-k10":            {"vendor_id": "AMD", "family": "16"},
		"linux-scientificfermi6-bulldozer": {"vendor_id": "AMD", "family": "21"},
	}
	for name, want := range cases {
		data, ok := all[name]
		if !ok {
			t.Errorf("no dump %s", name)
			continue
		}
		info, err := Parse(data, "")
		if err != nil {
			t.Fatal(err)
		}
		got := info.Features().Attributes[ModelKey].Elements
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s.%s = %q, want %q (all: %v)", name, ModelKey, k, got[k], v, got)
			}
		}
	}
}

func TestS390x(t *testing.T) {
	info := parseFile(t, "testdata/s390x-z15", "")
	if info.Arch != "s390x" || info.Vendor != "IBM/S390" || info.Processors != 2 {
		t.Fatalf("Arch %q Vendor %q Processors %d", info.Arch, info.Vendor, info.Processors)
	}
	want := strings.Fields("DFLT DFP EDAT EIMM ESAN3 ETF3EH GS HIGHGPRS LDISP MSA SIE SORT STFLE TE VX VXD VXE VXE2 VXP ZARCH")
	if got := info.CpuidFlags(); !slices.Equal(got, want) {
		t.Errorf("flags = %v\nwant %v", got, want)
	}
	m := info.Model()
	if m["vendor_id"] != "IBM_S390" || m["family"] != "0133E8" || m["id"] != "8561" {
		t.Errorf("model = %v", m)
	}
	if _, ok := m["hypervisor"]; ok {
		t.Errorf("hypervisor should be unknown: %v", m)
	}
	if info.Fields["cpu number"] != "0" || info.Fields["features"] == "" {
		t.Errorf("Fields = %v", info.Fields)
	}
	if _, err := Parse([]byte("vendor_id : IBM/S390\n# processors : 1\n"), "s390x"); err == nil || !strings.Contains(err.Error(), `"features"`) {
		t.Errorf("missing features: %v", err)
	}
}

func TestRISCV(t *testing.T) {
	info := parseFile(t, "testdata/riscv64-rv64gc", "riscv64")
	want := []string{"a", "c", "d", "f", "i", "m", "zicsr", "zifencei"}
	if !slices.Equal(info.Flags, want) {
		t.Errorf("Flags = %v, want %v", info.Flags, want)
	}
	if info.Processors != 2 || info.ModelName != "sifive,u54-mc" {
		t.Errorf("Processors %d ModelName %q", info.Processors, info.ModelName)
	}
	fl := info.CpuidFlags()
	for _, f := range []string{"RV_IMA", "RV_C", "RV_F", "RV_D", "RV_ZICSR"} {
		if !slices.Contains(fl, f) {
			t.Errorf("no %s in %v", f, fl)
		}
	}
	info = parseFile(t, "testdata/riscv64-hart-isa", "")
	if info.Arch != "riscv64" || !info.has("v") || !info.has("zvfh") || info.Model()["vendor_id"] != "SpacemiT" {
		t.Errorf("hart isa file: %+v", info)
	}
	for isa, want := range map[string][]string{
		"rv64imac":                {"a", "c", "i", "m"},
		"rv64i2p1m2p0a2p1_zicbop": {"a", "i", "m", "zicbop"},
		"RV64IMAFDC_Zba_Zbb1p0":   {"a", "c", "d", "f", "i", "m", "zba", "zbb"},
		"rv64gcv_zve64d":          {"a", "c", "d", "f", "i", "m", "v", "zicsr", "zifencei", "zve64d"},
	} {
		got, err := parseISA(isa)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("parseISA(%q) = %v, %v; want %v", isa, got, err, want)
		}
	}
}

func TestErrors(t *testing.T) {
	haswell := []byte("processor : 0\nvendor_id : GenuineIntel\ncpu family : 6\nmodel : 63\nflags : fpu sse\n")
	for _, c := range []struct {
		data []byte
		arch string
		want string
	}{
		{nil, "", "empty"},
		{[]byte(" \n\n"), "", "empty"},
		{[]byte("\x7fELF\x02\x01\x01\x00\x00"), "", "NUL"},
		{[]byte("just some text\nwithout fields\n"), "", "no \"key : value\""},
		{bytes.Repeat([]byte("a"), MaxSize+1), "", "4 MiB"},
		{haswell, "mips", "unsupported arch"},
		{haswell, "arm64", "arm64 was given but the file is amd64"},
		{[]byte("processor : 0\nvendor_id : GenuineIntel\n"), "amd64", `no "flags" line in the first processor block (x86)`},
		{[]byte("processor : 0\nvendor_id : GenuineIntel\n\nprocessor : 1\nflags : fpu\n"), "amd64", `no "flags" line`},
		{[]byte("processor : 0\nfoo : bar\n"), "", "cannot tell the architecture"},
		{[]byte("processor : 0\nisa : rv32imac\n"), "", "32-bit RISC-V"},
		{[]byte("processor : 0\nisa : rv64im?c\n"), "riscv64", "unexpected"},
		{[]byte("processor : 0\nfoo : bar\n"), "ppc64le", `no "cpu" line`},
	} {
		_, err := Parse(c.data, c.arch)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "cpuinfo: ") {
			t.Errorf("Parse(%.30q, %q) error = %v, want one containing %q", c.data, c.arch, err, c.want)
		}
	}
	b, _ := os.ReadFile("testdata/arm-v7")
	if _, err := Parse(b, ""); err == nil || !strings.Contains(err.Error(), "32-bit arm") {
		t.Errorf("arm v7: %v", err)
	}
}

func TestARMUnknownImplementer(t *testing.T) {
	data := []byte("processor : 0\nFeatures : fp asimd cpuid newcap\nCPU implementer : 0x99\nCPU architecture: 8\nCPU variant : 0x0\nCPU part : 0x123\nCPU revision : 0\n")
	info, err := Parse(data, "")
	if err != nil {
		t.Fatal(err)
	}
	m := info.Model()
	if m["implementer"] != "unknown" || m["vendor_id"] != "VendorUnknown" || m["id"] != "4656" {
		t.Errorf("model = %v", m)
	}
	if got := info.CpuidFlags(); !slices.Equal(got, []string{"ASIMD", "CPUID", "FP"}) {
		t.Errorf("flags = %v", got)
	}
	if os, arch, v := Platform(info); os != "linux" || arch != "arm64" || v != "v8" {
		t.Errorf("Platform = %s %s %s", os, arch, v)
	}
}

func TestPlatform(t *testing.T) {
	for name, data := range dumps(t) {
		info, err := Parse(data, "")
		if err != nil {
			t.Fatal(err)
		}
		os, arch, variant := Platform(info)
		want := ""
		if arch == "arm64" {
			want = "v8"
		}
		if os != "linux" || arch != info.Arch || variant != want {
			t.Errorf("%s: Platform = %s/%s/%s", name, os, arch, variant)
		}
	}
	if os, arch, v := Platform(nil); os != "linux" || arch != "" || v != "" {
		t.Errorf("Platform(nil) = %s %s %s", os, arch, v)
	}
}

func TestX86Unknown(t *testing.T) {
	data := []byte("processor : 0\nvendor_id : GenuineIntel\ncpu family : 6\nmodel : 85\nsiblings : 2\ncpu cores : 2\nflags : fpu cx8 sep cmov mmx fxsr sse sse2 ht syscall hypervisor\n")
	info, err := Parse(data, "")
	if err != nil {
		t.Fatal(err)
	}
	u := strings.Join(info.Unknown(), "\n")
	for _, w := range []string{"KEYLOCKER", "hypervisor", "HTT", "VMX"} {
		if !strings.Contains(u, w) {
			t.Errorf("Unknown() lacks %s:\n%s", w, u)
		}
	}
	if strings.Contains(u, "SEV_64BIT") {
		t.Errorf("AMD-only name listed for Intel:\n%s", u)
	}
	m := info.Model()
	if _, ok := m["hypervisor"]; ok {
		t.Errorf("hypervisor should be absent under a VM: %v", m)
	}
	fl := info.CpuidFlags()
	if !slices.Contains(fl, "X86_64_V1") || slices.Contains(fl, "X86_64_V2") || slices.Contains(fl, "HTT") || !slices.Contains(fl, "HYPERVISOR") {
		t.Errorf("flags = %v", fl)
	}
	var nilInfo *Info
	if nilInfo.Unknown() != nil || nilInfo.Features() == nil {
		t.Error("nil Info")
	}
}

func FuzzParse(f *testing.F) {
	if ents, err := os.ReadDir(dumpsDir); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "linux-") {
				if b, err := os.ReadFile(filepath.Join(dumpsDir, e.Name())); err == nil {
					f.Add(b, "")
				}
			}
		}
	}
	for _, n := range []string{"s390x-z15", "riscv64-rv64gc", "riscv64-hart-isa", "arm-v7"} {
		if b, err := os.ReadFile(filepath.Join("testdata", n)); err == nil {
			f.Add(b, "")
		}
	}
	f.Add([]byte("processor : 0\nisa : rv64g_zba1p0\n"), "riscv64")
	f.Add([]byte("processor : 0\nFeatures : fp\nCPU implementer : zz\n"), "arm64")
	f.Fuzz(func(t *testing.T, data []byte, arch string) {
		info, err := Parse(data, arch)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "cpuinfo: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		if info.Arch == "" || info.Processors < 1 {
			t.Fatalf("Arch %q Processors %d", info.Arch, info.Processors)
		}
		if info.Features() == nil {
			t.Fatal("nil Features")
		}
		_ = info.Unknown()
		_, _, _ = Platform(info)
	})
}
