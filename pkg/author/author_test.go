package author

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatkit/compatkit/pkg/spec"
)

// write writes name (relative to dir) with content and returns its path.
func write(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const validCUE = `package app

import "compatkit.dev/cue:compat"

version: "v1alpha1"
compatibilities: [...compat.#Compatibility] & [{
	description: "kernel 5.15 or newer with the nvidia module"
	weight:      80
	tag:         "gpu"
	rules: [{
		name: "kernel"
		matchFeatures: [{
			feature: "kernel.version"
			matchExpressions: full: {op: "Ge", value: ["5.15"], type: "version"}
		}, {
			feature: "kernel.loadedmodule"
			matchExpressions: nvidia: {op: "Exists"}
		}]
	}, {
		name: "os"
		matchAny: [{matchFeatures: [{feature: "system.osrelease", matchExpressions: ID: {op: "In", value: ["ubuntu", "debian"]}}]}]
	}]
}]
`

func TestCompileValid(t *testing.T) {
	tests := []struct {
		name, file, content string
	}{
		{"cue", "compat.cue", validCUE},
		{"yaml", "compat.yaml", `version: v1alpha1
compatibilities:
  - weight: 10
    rules:
      - name: avx2
        matchFeatures:
          - feature: cpu.cpuid
            matchExpressions:
              AVX2: {op: Exists}
`},
		{"json", "compat.json", `{"version": "v1alpha1", "compatibilities": [{"rules": [{"name": "x", "matchFeatures": [{"feature": "compatkit.gpu.driver", "matchName": {"op": "InRegexp", "value": ["^nvidia"]}}]}]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := write(t, dir, tt.file, tt.content)
			var outs [][]byte
			for range 2 {
				res, err := Compile(context.Background(), []string{p}, Options{Dir: dir})
				if err != nil {
					t.Fatalf("Compile: %v", err)
				}
				s, err := res.For("")
				if err != nil {
					t.Fatal(err)
				}
				y, err := s.MarshalYAML()
				if err != nil {
					t.Fatal(err)
				}
				outs = append(outs, y)
				if len(res.Sources) != 1 || res.Sources[0].Path != p || !strings.HasPrefix(res.Sources[0].Digest, "sha256:") || len(res.Sources[0].Digest) != 71 {
					t.Errorf("Sources = %+v", res.Sources)
				}
			}
			if !bytes.Equal(outs[0], outs[1]) {
				t.Errorf("two compilations differ:\n%s\n---\n%s", outs[0], outs[1])
			}
		})
	}
	// The CUE case keeps every field.
	dir := t.TempDir()
	res, err := Compile(context.Background(), []string{write(t, dir, "c.cue", validCUE)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Default.Compatibilities[0]
	if c.Weight != 80 || c.Tag != "gpu" || len(c.Rules) != 2 || c.Rules[0].MatchFeatures[0].MatchExpressions["full"].Type != "version" || len(c.Rules[1].MatchAny) != 1 {
		t.Errorf("unexpected spec: %+v", c)
	}
}

func TestTemplateLevels(t *testing.T) {
	dir := t.TempDir() // outside the repository
	p := write(t, dir, "app.cue", `package app

import "compatkit.dev/templates/x86-64-levels:levels"

version: "v1alpha1"
compatibilities: [{rules: [{name: "x86-64-v3", matchFeatures: [levels.v3]}]}]
`)
	res, err := Compile(context.Background(), []string{p}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	term := res.Default.Compatibilities[0].Rules[0].MatchFeatures[0]
	if term.Feature != "cpu.cpuid" {
		t.Errorf("feature = %q", term.Feature)
	}
	for _, f := range []string{"AVX", "AVX2", "BMI1", "BMI2", "F16C", "FMA3", "LZCNT", "MOVBE", "OSXSAVE", "CX16", "LAHF", "POPCNT", "SSE3", "SSE4", "SSE42", "SSSE3", "SSE2"} {
		e, ok := term.MatchExpressions[f]
		if !ok || e.Op != "Exists" {
			t.Errorf("flag %s: %v, %v", f, e, ok)
		}
	}
	for _, f := range []string{"AVX512F", "AVX512VL"} {
		if _, ok := term.MatchExpressions[f]; ok {
			t.Errorf("v3 has v4 flag %s", f)
		}
	}
}

func TestPlatforms(t *testing.T) {
	term := `{feature: "cpu.cpuid", matchExpressions: AVX2: {op: "Exists"}}`
	dir := t.TempDir()
	both := write(t, dir, "both.cue", `
version: "v1alpha1"
compatibilities: [{tag: "default", rules: [{name: "any", matchFeatures: [{feature: "kernel.version", matchExpressions: major: {op: "Ge", value: ["4"]}}]}]}]
platforms: "linux/amd64/v3": {version: "v1alpha1", compatibilities: [{tag: "v3", rules: [{name: "avx2", matchFeatures: [`+term+`]}]}]}
`)
	only := write(t, dir, "only.yaml", `
platforms:
  linux/arm64:
    version: v1alpha1
    compatibilities: [{tag: arm, rules: [{name: r, matchFeatures: [{feature: cpu.cpuid, matchName: {op: Exists}}]}]}]
`)
	res, err := Compile(context.Background(), []string{both}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for platform, want := range map[string]string{"linux/amd64/v3": "v3", "linux/arm64": "default", "": "default", "linux/amd64": "default"} {
		s, err := res.For(platform)
		if err != nil {
			t.Fatalf("For(%q): %v", platform, err)
		}
		if got := s.Compatibilities[0].Tag; got != want {
			t.Errorf("For(%q) tag = %q, want %q", platform, got, want)
		}
	}
	res, err = Compile(context.Background(), []string{only}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Default != nil {
		t.Errorf("Default = %+v, want nil", res.Default)
	}
	if s, err := res.For("linux/arm64"); err != nil || s.Compatibilities[0].Tag != "arm" {
		t.Errorf("For(linux/arm64) = %v, %v", s, err)
	}
	if _, err := res.For("linux/amd64"); err == nil || !strings.Contains(err.Error(), "linux/arm64") {
		t.Errorf("For(linux/amd64) error = %v, want one naming linux/arm64", err)
	}
}

func TestCompileErrors(t *testing.T) {
	const head = "version: \"v1alpha1\"\ncompatibilities: [{\n"
	rule := func(expr string) string {
		return head + "\trules: [{\n\t\tname: \"r\"\n\t\tmatchFeatures: [{\n\t\t\tfeature: \"cpu.cpuid\"\n\t\t\tmatchExpressions: AVX2: " + expr + "\n\t\t}]\n\t}]\n}]\n"
	}
	ok := "\trules: [{name: \"r\", matchFeatures: [{feature: \"cpu.cpuid\", matchName: {op: \"Exists\"}}]}]\n"
	tests := []struct {
		name, file, content string
		wantPos, wantMsg    string
	}{
		{"unknown field", "a.cue", head + "\tweigth: 10\n" + ok + "}]\n",
			"a.cue:3:2", "compatibilities.0.weigth: field not allowed"},
		{"unknown operator", "a.cue", rule(`{op: "Equals"}`),
			"a.cue:7:33", `"Equals" is not allowed; want one of "DoesNotExist", "Exists", "Ge", "GeLe", "Gt", "GtLt", "In", "InRegexp", "IsFalse", "IsTrue", "Le", "Lt", "NotIn"`},
		{"In without values", "a.cue", rule(`{op: "In"}`),
			"a.cue:7:22", "matchExpressions.AVX2: In takes at least one value"},
		{"In with an empty list", "a.cue", rule(`{op: "In", value: []}`),
			"a.cue:7:22", "matchExpressions.AVX2: In takes at least one value"},
		{"Exists with a value", "a.cue", rule(`{op: "Exists", value: ["1"]}`),
			"a.cue:7:22", "Exists takes no value, got 1"},
		{"GtLt with one value", "a.cue", rule(`{op: "GtLt", value: ["1"]}`),
			"a.cue:7:22", "GtLt takes exactly two values (the bounds of the range), got 1"},
		{"version type with In", "a.cue", rule(`{op: "In", value: ["1"], type: "version"}`),
			"a.cue:7:53", `"version" is only allowed with Gt, Ge, Lt, Le, GtLt and GeLe, not In`},
		{"weight over 100", "a.cue", head + "\tweight: 101\n" + ok + "}]\n",
			"a.cue:3:10", "compatibilities.0.weight: weight must be 0-100, got 101"},
		{"unknown feature", "a.cue", strings.Replace(rule(`{op: "Exists"}`), `"cpu.cpuid"`, `"cpu.cpuids"`, 1),
			"a.cue:6:13", `matchFeatures.0.feature: "cpu.cpuids" is not allowed (did you mean "cpu.cpuid"?)`},
		{"rule without matchers", "a.cue", head + "\trules: [{name: \"r\"}]\n}]\n",
			"a.cue:3:10", "compatibilities.0.rules.0: rule r needs matchFeatures or matchAny"},
		{"bad platform key", "a.cue", "platforms: linux: {}\n",
			"a.cue:1:12", "platforms.linux: field not allowed"},
		{"YAML type error", "a.yaml", "version: v1alpha1\ncompatibilities:\n  - weight: high\n    rules: []\n",
			"a.yaml:3:13", `compatibilities.0.weight: weight must be an integer, got the string "high"`},
		{"JSON type error", "a.json", "{\"version\": \"v1alpha1\",\n \"compatibilities\": [{\"weight\": \"high\", \"rules\": []}]}\n",
			"a.json:2:33", `compatibilities.0.weight: weight must be an integer, got the string "high"`},
		{"CUE syntax error", "a.cue", "version: \"v1alpha1\"\ncompatibilities: [{\n",
			"a.cue:2:21", "expected '}', found 'EOF'"},
		{"YAML syntax error", "a.yaml", "version: v1alpha1\ncompatibilities: [\n",
			"a.yaml:2", "did not find expected node content"},
		{"missing version", "a.yaml", "compatibilities:\n  - rules: []\n",
			"a.yaml:1:1", "version: field is required but not present"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := write(t, dir, tt.file, tt.content)
			_, err := Compile(context.Background(), []string{p}, Options{Dir: dir})
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("error = %v (%T), want *Error", err, err)
			}
			t.Logf("%s", err)
			found := false
			for _, pr := range ae.Errors() {
				if pr.Pos() == tt.wantPos && strings.Contains(pr.String(), tt.wantMsg) {
					found = true
				}
			}
			if !found {
				t.Errorf("got:\n%v\nwant a problem at %s containing %q", err, tt.wantPos, tt.wantMsg)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.Contains(line, "empty disjunction") || strings.Contains(line, "compatkit.input") {
					t.Errorf("unreadable line: %s", line)
				}
			}
		})
	}
}

// TestVetReportsAll: problems in different places are all reported, with the path given as is
// when Options.Dir is empty.
func TestVetReportsAll(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "a.cue", `version: "v1alpha1"
compatibilities: [{
	weight: 101
	rules: [{name: "r", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: {A: {op: "Equals"}, B: {op: "In"}}}]}]
}, {rules: [{name: "s"}]}]
`)
	err := Vet(context.Background(), []string{p}, Options{})
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("Vet = %v", err)
	}
	want := []string{p + ":3:10:", p + ":4:88:", p + ":4:99:", p + ":5:13:"}
	if len(ae.Problems) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(ae.Problems), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("no problem at %s in:\n%v", w, err)
		}
	}
}

func TestMixedInputs(t *testing.T) {
	dir := t.TempDir()
	c := write(t, dir, "default.cue", `version: "v1alpha1"
compatibilities: [{rules: [{name: "r", matchFeatures: [{feature: "cpu.cpuid", matchName: {op: "Exists"}}]}]}]
`)
	y := write(t, dir, "platforms.yaml", "platforms:\n  linux/arm64:\n    version: v1alpha1\n    compatibilities: [{rules: [{name: a, matchFeatures: [{feature: cpu.model, matchExpressions: {vendor_id: {op: In, value: [ARM]}}}]}]}]\n")
	res, err := Compile(context.Background(), []string{c, y}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Default == nil || res.Platforms["linux/arm64"] == nil || len(res.Sources) != 2 {
		t.Errorf("result = %+v", res)
	}
	if _, err := Compile(context.Background(), []string{write(t, dir, "x.txt", "")}, Options{}); err == nil {
		t.Error("a .txt input compiled")
	}
	if _, err := Compile(context.Background(), []string{filepath.Join(dir, "missing.cue")}, Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzCompileYAML(f *testing.F) {
	f.Add([]byte("version: v1alpha1\ncompatibilities:\n  - rules:\n      - name: r\n        matchFeatures:\n          - feature: cpu.cpuid\n            matchExpressions: {AVX2: {op: Exists}}\n"))
	f.Add([]byte("platforms: {linux/amd64: {version: v1alpha1, compatibilities: []}}"))
	f.Add([]byte("---\na: 1\n---\nb: 2\n"))
	f.Add([]byte("[1, 2]"))
	f.Add([]byte("&a [*a]"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "f.yaml")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := Compile(context.Background(), []string{p}, Options{Dir: dir})
		if err == nil && res.Default == nil && len(res.Platforms) == 0 {
			t.Fatal("no error and no spec")
		}
	})
}

// FuzzCompileCUE: the CUE loader on any document an author may write, seeded with the shipped
// example and templates; it returns a spec or an error, never panics, and a spec it returns is
// valid.
func FuzzCompileCUE(f *testing.F) {
	for _, glob := range []string{"../../examples/hello/compat.cue", "../../templates/*/*.cue"} {
		paths, _ := filepath.Glob(glob)
		for _, p := range paths {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte(`import "compatkit.dev/domains/cpu/x86"` + "\nx86.#Level & {level: 3}\n"))
	f.Add([]byte("version: \"v1alpha1\"\ncompatibilities: [{rules: [{name: \"r\", matchFeatures: [{feature: \"cpu.cpuid\", matchExpressions: AVX2: {op: \"Exists\"}}]}]}]\n"))
	f.Add([]byte("a: b\nb: a\n"))
	f.Add([]byte("x: [for i in list.Range(0, 100000, 1) {i}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "compat.cue")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := Compile(context.Background(), []string{p}, Options{Dir: dir})
		if err != nil {
			return
		}
		if res.Default == nil && len(res.Platforms) == 0 {
			t.Fatal("no error and no spec")
		}
		all := []*spec.Spec{res.Default}
		for _, s := range res.Platforms {
			all = append(all, s)
		}
		for _, s := range all {
			if s != nil {
				if err := s.Validate(); err != nil {
					t.Fatalf("compiled an invalid spec: %v", err)
				}
			}
		}
	})
}
