package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
)

func TestDiscoverThisHost(t *testing.T) {
	f, warnings, err := New().Discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		t.Logf("warning: %s", w)
	}
	if _, ok := f.Attributes["kernel.version"].Elements["full"]; !ok {
		t.Errorf("kernel.version.full missing: %v", Names(f))
	}
	if runtime.GOARCH == "amd64" {
		if _, ok := f.Flags["cpu.cpuid"].Elements["SSE2"]; !ok {
			t.Errorf("cpu.cpuid has no SSE2 on amd64: %v", f.Flags["cpu.cpuid"])
		}
	}
	if got := f.Attributes["compatkit.platform"].Elements["arch"]; got != runtime.GOARCH {
		t.Errorf("compatkit.platform arch = %q, want %q", got, runtime.GOARCH)
	}
}

type failing struct{}

func (failing) Name() string { return "broken" }
func (failing) Discover(context.Context) (*Features, error) {
	return nil, errors.New("open /sys/devices/virtual/dmi/id/sys_vendor: no such file or directory")
}

type fixed struct{}

func (fixed) Name() string { return "fixed" }
func (fixed) Discover(context.Context) (*Features, error) {
	f := nfdv1alpha1.NewFeatures()
	f.Flags["fixed.x"] = nfdv1alpha1.NewFlagFeatures("a")
	return f, nil
}

func TestFailingSourceIsAWarning(t *testing.T) {
	f, warnings, err := New(failing{}, fixed{}).Discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || warnings[0].Source != "broken" || !strings.Contains(warnings[0].String(), "sys_vendor") {
		t.Fatalf("warnings %v", warnings)
	}
	if _, ok := f.Flags["fixed.x"]; !ok {
		t.Fatal("the working source's features are lost")
	}
	if _, _, err := New(failing{}).Discover(context.Background()); err == nil {
		t.Fatal("no error when every source failed")
	}
}

func TestParseFeatures(t *testing.T) {
	nfdExport := `{"flags": {"cpu.cpuid": {"elements": {"AVX2": {}}}}, "attributes": {"kernel.version": {"elements": {"full": "6.1.0"}}}, "instances": {"pci.device": {"elements": [{"attributes": {"vendor": "10de"}}]}}}`
	nodeFeature := "apiVersion: nfd.k8s-sigs.io/v1alpha1\nkind: NodeFeature\nmetadata: {name: n1}\nspec:\n  features:\n    flags:\n      cpu.cpuid: {elements: {AVX2: {}}}\n"
	for name, in := range map[string]string{"nfd export": nfdExport, "NodeFeature": nodeFeature} {
		f, err := ParseFeatures([]byte(in), name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, ok := f.Flags["cpu.cpuid"].Elements["AVX2"]; !ok {
			t.Fatalf("%s: AVX2 missing", name)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "empty"},
		{`{"flag": {}}`, `unknown field "flag"`},
		{`{"flags": {}}`, "no flags, attributes or instances"},
		{`[1, 2]`, "want a JSON or YAML object"},
		{`{"kind": "List", "items": []}`, "select --node NAME"},
		{"kind: NodeFeature\nspec: {}\n", "without spec.features"},
	} {
		_, err := ParseFeatures([]byte(tc.in), "f.json")
		if err == nil || !errors.Is(err, ErrFeatureFile) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "f.json") {
			t.Errorf("%q: error %v, want ErrFeatureFile naming f.json and %q", tc.in, err, tc.want)
		}
	}
	p := filepath.Join(t.TempDir(), "big.json")
	if err := os.WriteFile(p, make([]byte, MaxFeatureFileBytes+2), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFeatureFile(p); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized file: %v", err)
	}
}

func FuzzParseFeatures(f *testing.F) {
	f.Add([]byte(`{"flags": {"cpu.cpuid": {"elements": {"AVX2": {}}}}}`))
	f.Add([]byte("kind: NodeFeature\nspec: {features: {attributes: {a.b: {elements: {x: y}}}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseFeatures(data, "fuzz")
	})
}
