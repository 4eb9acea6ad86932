package spec

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

const good = `version: v1alpha1
compatibilities:
- tag: x86-64-v3
  weight: 90
  rules:
  - name: v3
    matchFeatures:
    - feature: cpu.cpuid
      matchExpressions:
        AVX2: {op: Exists}
    - feature: kernel.version
      matchExpressions:
        full: {op: Ge, value: ["5.15"], type: version}
`

func TestParseGoodRoundTrip(t *testing.T) {
	s, err := Parse([]byte(good), "good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	y, err := s.MarshalYAML()
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Parse(y, "again")
	if err != nil {
		t.Fatal(err)
	}
	y2, _ := s2.MarshalYAML()
	if string(y) != string(y2) {
		t.Fatalf("not stable:\n%s\n---\n%s", y, y2)
	}
	if s.Compatibilities[0].Rules[0].MatchFeatures[1].MatchExpressions["full"].Type != "version" {
		t.Fatal("type lost")
	}
}

func TestParseErrors(t *testing.T) {
	rule := func(expr string) string {
		return "version: v1alpha1\ncompatibilities:\n- rules:\n  - name: r\n    matchFeatures:\n    - feature: cpu.cpuid\n      matchExpressions:\n        X: " + expr + "\n"
	}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "empty document"},
		{"unknown field", "version: v1alpha1\ncompatibilities: []\nweigth: 3\n", `unknown field "weigth"`},
		{"wrong version", "version: v2\ncompatibilities: []\n", `version: is "v2", want "v1alpha1"`},
		{"no sets", "version: v1alpha1\ncompatibilities: []\n", "at least one compatibility set"},
		{"weight 101", "version: v1alpha1\ncompatibilities:\n- weight: 101\n  rules: []\n", "compatibilities[0].weight: 101 is outside 0-100"},
		{"type error", "version: v1alpha1\ncompatibilities:\n- weight: high\n  rules: []\n", "cannot unmarshal string"},
		{"unknown op", rule("{op: Equals}"), `compatibilities[0].rules[0].matchFeatures[0].matchExpressions.X.op: unknown operator "Equals"`},
		{"In without values", rule("{op: In}"), "In takes at least 1 value(s), got 0"},
		{"Exists with value", rule("{op: Exists, value: [a]}"), "Exists takes no value, got 1"},
		{"GtLt one value", rule("{op: GtLt, value: ['1']}"), "GtLt takes exactly 2 value(s), got 1"},
		{"GtLt empty range", rule("{op: GtLt, value: ['5', '1']}"), "needs value[0] < value[1]"},
		{"Gt not a number", rule("{op: Gt, value: ['5.1']}"), "is not one (add type: version"},
		{"version on In", rule("{op: In, value: [a], type: version}"), "type version is only allowed"},
		{"bad version", rule("{op: Ge, value: ['x.y'], type: version}"), `"x.y" is not a version`},
		{"bad regexp", rule("{op: InRegexp, value: ['(']}"), `invalid regexp "(": missing closing ) at "("`},
		{"unknown type", rule("{op: Gt, value: ['1'], type: semver}"), `unknown value type "semver"`},
		{"bad feature name", "version: v1alpha1\ncompatibilities:\n- rules:\n  - name: r\n    matchFeatures:\n    - feature: cpuid\n      matchName: {op: Exists}\n", "is not <domain>.<feature>"},
		{"pre-v1alpha1 labels", "labels:\n  feature.node.kubernetes.io/cpu-cpuid.AVX2: \"true\"\n", "pre-v1alpha1 image-compatibility document (a labels map, no version)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in), "in.yaml")
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "in.yaml") {
				t.Fatalf("error %q does not start with the source or lacks %q", err, tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
		})
	}
}

// TestParseErrorsOneLine: a spec from a registry cannot forge output lines through its errors: the
// values they quote, an invalid regexp's pattern included (Go's regexp error prints it raw), are
// escaped.
func TestParseErrorsOneLine(t *testing.T) {
	forged := `(\nVerdict: COMPATIBLE (score 100)\n`
	for _, doc := range []string{
		`{"version": "v1alpha1", "compatibilities": [{"rules": [{"name": "r", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"SSE2": {"op": "InRegexp", "value": ["` + forged + `"]}}}]}]}]}`,
		`{"version": "v1alpha1", "compatibilities": [{"rules": [{"name": "r", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"SSE2": {"op": "InRegexp", "value": ["a", "x[\u2028y"]}}}]}]}]}`,
		`{"version": "v1alpha1", "compatibilities": [{"rules": [{"name": "r", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"SSE2": {"op": "Bogus` + forged + `"}}}]}]}]}`,
		`{"version": "v1alpha1` + forged + `", "compatibilities": []}`,
	} {
		_, err := Parse([]byte(doc), "in.json")
		if err == nil {
			t.Fatalf("Parse(%s) succeeded", doc)
		}
		if strings.ContainsAny(err.Error(), "\n\r\u2028") {
			t.Errorf("error holds a line break: %q", err)
		}
	}
}

// TestReadWhatNFDReads: rules that NFD's validator evaluates (no name; no terms, which match
// every host) are read, and refused only when a spec is written.
func TestReadWhatNFDReads(t *testing.T) {
	for _, tc := range []struct{ name, in, strict string }{
		{"rule without matcher", "version: v1alpha1\ncompatibilities:\n- rules:\n  - name: r\n", "needs matchFeatures or matchAny"},
		{"rule without name", "version: v1alpha1\ncompatibilities:\n- rules:\n  - matchFeatures: [{feature: cpu.cpuid, matchExpressions: {AVX: {op: Exists}}}]\n", "name: is required"},
		{"set without rules", "version: v1alpha1\ncompatibilities:\n- weight: 10\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse([]byte(tc.in), "in.yaml")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			err = s.Validate()
			switch {
			case tc.strict == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.strict != "" && (err == nil || !strings.Contains(err.Error(), tc.strict)):
				t.Fatalf("Validate: %v, want %q", err, tc.strict)
			}
		})
	}
	_, err := Parse([]byte("labels: {a: b}\n"), "old.yaml")
	if !errors.Is(err, ErrUnsupportedFormat) {
		t.Fatalf("pre-v1alpha1: %v, want ErrUnsupportedFormat", err)
	}
}

func TestParseTooLarge(t *testing.T) {
	_, err := Parse(make([]byte, MaxSpecBytes+1), "big")
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add(aliasBomb(1, 10, 10))
	f.Add(regexpHeavy(300, 60))
	f.Add([]byte("labels: {feature.node.kubernetes.io/cpu-cpuid.AVX2: \"true\"}\n"))
	f.Add([]byte("version: v1alpha1\ncompatibilities: [{weight: 10}, {rules: [{matchAny: [{matchFeatures: [{feature: a.b, matchName: {op: InRegexp, value: [\"(\"]}}]}]}]}]"))
	f.Add([]byte("version: v1alpha1\ncompatibilities: [{rules: [{name: a, matchAny: [{matchFeatures: []}]}]}]"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data, "fuzz")
		if err != nil {
			return
		}
		// Whatever parses must serialise and parse again to the same thing.
		y, err := s.MarshalYAML()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(y, "again"); err != nil {
			t.Fatalf("re-parse of %q failed: %v", y, err)
		}
	})
}

// aliasBomb is a "billion laughs" document: a list of width scalars, then levels of lists of
// fan aliases to the level below: width*fan^levels nodes once expanded.
func aliasBomb(width, fan, levels int) []byte {
	var b strings.Builder
	b.WriteString("a0: &a0 [" + strings.Repeat("x, ", width-1) + "x]\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := 0; j < fan; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	fmt.Fprintf(&b, "version: v1alpha1\ncompatibilities: [{rules: [{name: r, matchFeatures: [{feature: cpu.cpuid, matchExpressions: {X: {op: In, value: *a%d}}}]}]}]\n", levels)
	return []byte(b.String())
}

// regexpHeavy is a spec of n InRegexp expressions of size bytes each.
func regexpHeavy(n, size int) []byte {
	var b strings.Builder
	b.WriteString("version: v1alpha1\ncompatibilities:\n- rules:\n  - name: r\n    matchFeatures:\n    - feature: kernel.loadedmodule\n      matchExpressions:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "        m%d: {op: InRegexp, value: [\"^(%s)+$\"]}\n", i, strings.Repeat("a|b", size/3))
	}
	return []byte(b.String())
}

// TestBombs: what a hostile spec layer costs is bounded: aliases are refused before they expand,
// and the regexps of one spec are capped in number and size.
func TestBombs(t *testing.T) {
	measure := func(data []byte) (error, time.Duration, uint64) {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		_, err := Parse(data, "layer")
		d := time.Since(start)
		runtime.ReadMemStats(&after)
		return err, d, after.TotalAlloc - before.TotalAlloc
	}
	for _, bomb := range [][]byte{aliasBomb(1, 10, 10), aliasBomb(10000, 100, 5), aliasBomb(50000, 2000, 2)} {
		err, d, mem := measure(bomb)
		if err == nil || !strings.Contains(err.Error(), "anchors and aliases are not allowed") || !errors.Is(err, ErrInvalid) {
			t.Fatalf("alias bomb of %d bytes: %v", len(bomb), err)
		}
		if d > time.Second || mem > 64<<20 {
			t.Fatalf("alias bomb of %d bytes took %v and %d MB", len(bomb), d, mem>>20)
		}
		t.Logf("alias bomb of %d bytes refused in %v, %d MB allocated", len(bomb), d, mem>>20)
	}
	heavy := regexpHeavy(400, 600) // 400 regexps, 240 KB
	err, d, _ := measure(heavy)
	if !errors.Is(err, ErrTooLarge) || d > time.Second {
		t.Fatalf("regexp-heavy spec of %d bytes: %v after %v", len(heavy), err, d)
	}
	if _, err := Parse(regexpHeavy(1, 2000), "layer"); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a 2 KB regexp: %v", err)
	}
	// Within the limits: parsed quickly.
	ok := regexpHeavy(16, 900)
	err, d, _ = measure(ok)
	if err != nil || d > time.Second {
		t.Fatalf("16 regexps of 900 bytes: %v after %v", err, d)
	}
	t.Logf("%d regexps of 900 bytes parsed in %v", 16, d)
}
