package microarch

import (
	"bytes"
	"os"
	"slices"
	"testing"
)

// TestEmbeddedCopy: the embedded JSON is the vendored canonical copy, byte for byte (run `go
// generate ./pkg/microarch` after updating third_party/archspec).
func TestEmbeddedCopy(t *testing.T) {
	canon, err := os.ReadFile("../../third_party/archspec/cpu/microarchitectures.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(canon, JSON) {
		t.Fatal("pkg/microarch/microarchitectures.json differs from third_party/archspec/cpu/microarchitectures.json: run go generate ./pkg/microarch")
	}
}

func TestGraph(t *testing.T) {
	g := Default()
	if n := len(g.Targets()); n < 70 {
		t.Fatalf("only %d targets", n)
	}
	zen4, _ := Lookup("zen4")
	if zen4.Vendor != "AuthenticAMD" || zen4.Family() != "x86_64" || !slices.Contains(zen4.Features, "avx512f") {
		t.Errorf("zen4 = %+v", zen4)
	}
	// ssse3 implies sse3, as archspec adds it.
	if !slices.Contains(zen4.Features, "sse3") || !zen4.HasFeature("sse4.1") || !zen4.HasFeature("avx512") {
		t.Errorf("zen4 features: %v", zen4.Features)
	}
	var names []string
	for _, a := range zen4.Ancestors() {
		names = append(names, a.Name)
	}
	// archspec: [zen3, x86_64_v4, zen2, zen, x86_64_v3, x86_64_v2, x86_64]
	if want := []string{"zen3", "x86_64_v4", "zen2", "zen", "x86_64_v3", "x86_64_v2", "x86_64"}; !slices.Equal(names, want) {
		t.Errorf("zen4 ancestors = %v, want %v", names, want)
	}
	for _, c := range []struct {
		a, b string
		le   bool
	}{
		{"zen4", "zen4", true}, {"zen3", "zen4", true}, {"x86_64_v3", "zen4", true}, {"zen4", "zen3", false},
		{"haswell", "zen4", false}, {"haswell", "icelake", true}, {"neoverse_n1", "neoverse_v2", true},
		{"power8le", "power10le", true}, {"aarch64", "a64fx", true}, {"x86_64", "a64fx", false},
	} {
		if got := Supports(c.b, c.a); got != c.le {
			t.Errorf("%s <= %s = %v, want %v", c.a, c.b, got, c.le)
		}
	}
	if Supports("zen4", "nosuch") || Supports("nosuch", "zen4") {
		t.Error("unknown names are supported")
	}
	p9, _ := Lookup("power9le")
	if p9.Generation != 9 || p9.Family() != "ppc64le" || p9.Vendor != "IBM" {
		t.Errorf("power9le = %+v", p9)
	}
	n1, _ := Lookup("neoverse_n1")
	if n1.CPUPart != "0xd0c" || n1.Generic() || !n1.HasFeature("neon") || len(n1.Compilers["gcc"]) == 0 {
		t.Errorf("neoverse_n1 = %+v", n1)
	}
	if g.ARMVendors["0x41"] != "ARM" {
		t.Errorf("arm vendors: %v", g.ARMVendors)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, s := range []string{`{`, `{}`, `{"microarchitectures": {"a": {"from": ["b"], "vendor": "x", "features": []}}}`,
		`{"microarchitectures": {"a": {"from": ["b"], "vendor": "x", "features": []}, "b": {"from": ["a"], "vendor": "x", "features": []}}}`,
		`{"microarchitectures": {"r1": {"from": [], "vendor": "generic", "features": []}, "r2": {"from": [], "vendor": "generic", "features": []}, "c": {"from": ["r1", "r2"], "vendor": "x", "features": []}}}`} {
		if _, err := Load([]byte(s)); err == nil {
			t.Errorf("Load(%s): no error", s)
		}
	}
}

func TestNFDFlag(t *testing.T) {
	for _, c := range []struct{ arch, in, want string }{
		{"amd64", "sse4_1", "SSE4"}, {"amd64", "sse4_2", "SSE42"}, {"amd64", "pni", "SSE3"}, {"x86_64", "sse3", "SSE3"},
		{"amd64", "lahf_lm", "LAHF"}, {"amd64", "abm", "LZCNT"}, {"amd64", "fma", "FMA3"}, {"amd64", "sha_ni", "SHA"},
		{"amd64", "aes", "AESNI"}, {"amd64", "avx512_vnni", "AVX512VNNI"}, {"arm64", "asimddp", "ASIMDDP"},
		{"aarch64", "sve2", "SVE2"}, {"arm64", "smei16i64", "SMEI16I64"},
	} {
		if got, ok := NFDFlag(c.arch, c.in); !ok || got != c.want {
			t.Errorf("NFDFlag(%s, %s) = %q, %v; want %q", c.arch, c.in, got, ok, c.want)
		}
	}
	for _, c := range []struct{ arch, in string }{{"amd64", "clwb"}, {"amd64", "pku"}, {"arm64", "sme2"}, {"ppc64le", "altivec"}} {
		if got, ok := NFDFlag(c.arch, c.in); ok {
			t.Errorf("NFDFlag(%s, %s) = %q, want none", c.arch, c.in, got)
		}
	}
	if v, ok := NFDVendor("AuthenticAMD"); !ok || v != "AMD" {
		t.Errorf("NFDVendor(AuthenticAMD) = %q", v)
	}
	if _, ok := NFDVendor(Generic); ok {
		t.Error("NFDVendor(generic) reported")
	}
}
