package author

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatkit/compatkit/pkg/spec"
)

func whenWarningsOf(t *testing.T, doc string) []Warning {
	t.Helper()
	dir := t.TempDir()
	f := filepath.Join(dir, "compat.cue")
	if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Compile(context.Background(), []string{f}, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return res.WhenWarnings()
}

// Issue 16: driver >= 550 when an NVIDIA GPU is present, otherwise the CPU build.
func TestWhenFallbackTrapWarning(t *testing.T) {
	ws := whenWarningsOf(t, `package app

import "compatkit.dev/domains/gpu/nvidia"

when: [{
	name:      "NVIDIA GPU present"
	condition: [nvidia.gpuPresent]
	tag:       "gpu"
	weight:    100
	required:  (nvidia.#Config & {driver: ">=550"}).rules
}]
otherwise: {tag: "cpu", weight: 50}
`)
	if len(ws) != 1 {
		t.Fatalf("warnings: %v", ws)
	}
	w := ws[0]
	if w.Item != "compat.cue:5:8" {
		t.Errorf("item %q, want the when case's position compat.cue:5:8", w.Item)
	}
	for _, want := range []string{`when case "NVIDIA GPU present"`, `"NVIDIA driver 550 or later"`, `fallback set "cpu" (weight 50)`, "does not exclude the condition", "nvidia.noDriver", "DoesNotExist"} {
		if !strings.Contains(w.Msg, want) {
			t.Errorf("message lacks %q: %s", want, w.Msg)
		}
	}
}

func TestWhenOutrankWarning(t *testing.T) {
	ws := whenWarningsOf(t, `
when: [{name: "AMD", condition: [{feature: "cpu.model", matchExpressions: vendor_id: {op: "In", value: ["AMD"]}}], weight: 60, tag: "amd"}]
otherwise: {weight: 65, tag: "generic"}
`)
	if len(ws) != 1 || !strings.Contains(ws[0].Msg, `the set "generic" (weight 65)`) || !strings.Contains(ws[0].Msg, `outranks the case's set "amd" (weight 60)`) || !strings.HasPrefix(ws[0].Item, "compat.cue:2:") {
		t.Errorf("warnings: %v", ws)
	}
	// An otherwise's own preferred alternative above the case outranks it too.
	ws = whenWarningsOf(t, `
when: [{name: "AMD", condition: [{feature: "cpu.model", matchExpressions: vendor_id: {op: "In", value: ["AMD"]}}], weight: 60}]
otherwise: {weight: 10, preferred: [{weight: 95, tag: "avx512", rules: [{name: "AVX-512", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: AVX512F: {op: "Exists"}}]}]}]}
`)
	if len(ws) != 1 || !strings.Contains(ws[0].Msg, `set "avx512" (weight 95)`) {
		t.Errorf("warnings: %v", ws)
	}
}

func TestWhenNoWarning(t *testing.T) {
	for name, doc := range map[string]string{
		// The recipe: the condition on an attribute, negated in otherwise.
		"negated": `package app

import "compatkit.dev/domains/gpu/nvidia"

when: [{
	name:      "NVIDIA driver installed"
	condition: [nvidia.driverPresent]
	tag:       "gpu"
	weight:    100
	required:  (nvidia.#Config & {driver: ">=550"}).rules
}]
otherwise: {tag: "cpu", weight: 50, required: [{name: "no NVIDIA driver", matchFeatures: [nvidia.noDriver]}]}
`,
		// Cases that cannot fail where their condition holds, with a lower fallback, and top-level
		// preferences (every case gets them at their weight).
		"preferences": `
preferred: [{weight: 90, rules: [{name: "AVX-512", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: AVX512F: {op: "Exists"}}]}]}]
when: [{name: "Intel", condition: [{feature: "cpu.model", matchExpressions: vendor_id: {op: "In", value: ["Intel"]}}], weight: 50},
       {name: "AMD", condition: [{feature: "cpu.model", matchExpressions: vendor_id: {op: "In", value: ["AMD"]}}], weight: 50}]
otherwise: weight: 10
`,
		// A requirement negated on integers: the fallback excludes kernels of major 6 and later.
		"ranges": `
when: [{name: "kernel 6", condition: [{feature: "kernel.version", matchExpressions: major: {op: "Ge", value: ["6"]}}], weight: 80,
        required: [{name: "io_uring", matchFeatures: [{feature: "kernel.config", matchExpressions: IO_URING: {op: "In", value: ["y"]}}]}]}]
otherwise: {weight: 20, required: [{name: "kernel 5", matchFeatures: [{feature: "kernel.version", matchExpressions: major: {op: "Lt", value: ["6"]}}]}]}
`,
		"no sugar": `version: "v1alpha1"
compatibilities: [{weight: 10, rules: [{name: "kernel 6", matchFeatures: [{feature: "kernel.version", matchExpressions: major: {op: "Gt", value: ["5"]}}]}]}]
`,
	} {
		if ws := whenWarningsOf(t, doc); len(ws) != 0 {
			t.Errorf("%s: warnings %v", name, ws)
		}
	}
}

func TestWhenExprsDisjoint(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"In AMD", "In Intel", true},
		{"In AMD", "In AMD,Intel", false},
		{"In AMD", "NotIn AMD", true},
		{"In AMD,Intel", "NotIn AMD", false},
		{"Exists", "DoesNotExist", true},
		{"NotIn AMD", "DoesNotExist", true},
		{"DoesNotExist", "DoesNotExist", false},
		{"Ge 550", "Lt 550", true},
		{"Ge 550", "Le 550", false},
		{"GeLe 1,3", "GtLt 3,9", true},
		{"In 535", "Ge 550", true},
		{"In 570", "Ge 550", false},
		{"IsTrue", "IsFalse", true},
		{"Exists", "In x", false},
	} {
		if got := exprsDisjoint(expr(tc.a), expr(tc.b)); got != tc.want {
			t.Errorf("%s vs %s: %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := exprsDisjoint(expr(tc.b), expr(tc.a)); got != tc.want {
			t.Errorf("%s vs %s: %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}

// expr parses "Op v1,v2" for TestWhenExprsDisjoint.
func expr(s string) *spec.MatchExpression {
	op, vals, _ := strings.Cut(s, " ")
	e := &spec.MatchExpression{Op: spec.Op(op)}
	if vals != "" {
		e.Value = strings.Split(vals, ",")
	}
	return e
}
