package author

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/compatkit/compatkit/pkg/spec"
)

const baseRef = "registry.example/base@sha256:1111111111111111111111111111111111111111111111111111111111111111"

// baseSpec requires a kernel >= 4 and AVX2 and AVX512F in every set; SSE42 only in one (a
// preference on top of the other set: combining with that set adds nothing, so it is not used).
func baseSpec(t *testing.T) *spec.Spec {
	t.Helper()
	s, err := spec.Parse([]byte(`{"version": "v1alpha1", "compatibilities": [
 {"weight": 90, "rules": [
  {"name": "kernel", "matchFeatures": [{"feature": "kernel.version", "matchExpressions": {"major": {"op": "Ge", "value": ["4"]}}}]},
  {"name": "cpu", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"AVX2": {"op": "Exists"}, "AVX512F": {"op": "Exists"}}}]},
  {"name": "fast", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"SSE42": {"op": "Exists"}}}]}]},
 {"weight": 10, "rules": [
  {"name": "kernel", "matchFeatures": [{"feature": "kernel.version", "matchExpressions": {"major": {"op": "Ge", "value": ["4"]}}}]},
  {"name": "cpu", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"AVX2": {"op": "Exists"}, "AVX512F": {"op": "Exists"}}}]}]}]}`), "base")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func compileDerived(t *testing.T, src string) *Result {
	t.Helper()
	res, err := Compile(context.Background(), []string{write(t, t.TempDir(), "derived.cue", src)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func ruleNames(s *spec.Spec, set int) string {
	var n []string
	for _, r := range s.Compatibilities[set].Rules {
		n = append(n, r.Name)
	}
	return strings.Join(n, ",")
}

func TestInheritTighten(t *testing.T) {
	res := compileDerived(t, `package app
required: [{name: "kernel", matchFeatures: [{feature: "kernel.version", matchExpressions: major: {op: "Ge", value: ["5"]}}]},
	{name: "gpu", matchFeatures: [{feature: "pci.device", matchExpressions: vendor: {op: "In", value: ["10de"]}}]}]
preferred: [{weight: 80, rules: [{name: "amx", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: AMXTILE: {op: "Exists"}}]}]}]
`)
	out, rec, warns, err := res.Inherit("", baseSpec(t), baseRef)
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 || rec.BaseDigest != "sha256:1111111111111111111111111111111111111111111111111111111111111111" {
		t.Errorf("warnings %v, record %+v", warns, rec)
	}
	// cpu is inherited (kernel is tightened in place, fast is not a base requirement).
	if got := ruleNames(out, 0); got != "cpu,kernel,gpu,amx" {
		t.Errorf("set 0: %s", got)
	}
	if got := ruleNames(out, 1); got != "cpu,kernel,gpu" {
		t.Errorf("set 1: %s", got)
	}
	if strings.Join(rec.Inherited, ",") != "cpu" {
		t.Errorf("inherited %v", rec.Inherited)
	}
}

func TestInheritRelax(t *testing.T) {
	res := compileDerived(t, `package app
relax: ["cpu.cpuid.AVX512F", "kernel"]
required: [{name: "gpu", matchFeatures: [{feature: "pci.device", matchExpressions: vendor: {op: "In", value: ["10de"]}}]}]
`)
	out, rec, warns, err := res.Inherit("", baseSpec(t), baseRef)
	if err != nil {
		t.Fatal(err)
	}
	if got := ruleNames(out, 0); got != "cpu,gpu" {
		t.Errorf("got %s", got)
	}
	cpu := out.Compatibilities[0].Rules[0].MatchFeatures[0].MatchExpressions
	if _, ok := cpu["AVX512F"]; ok || cpu["AVX2"] == nil {
		t.Errorf("cpu rule: %v", cpu)
	}
	if len(warns) != 2 || strings.Join(rec.Relaxed, ",") != "cpu.cpuid.AVX512F,kernel" || warns[0].Item != "cpu.cpuid.AVX512F" || !strings.Contains(warns[0].String(), "relaxed") {
		t.Errorf("warnings %v, record %+v", warns, rec)
	}
	// A relax entry that matches nothing is an error.
	res.Relax = []string{"cpu.cpuid.AVX10"}
	if _, _, _, err := res.Inherit("", baseSpec(t), baseRef); err == nil || !strings.Contains(err.Error(), "matches no rule") {
		t.Errorf("got %v", err)
	}
}

func TestInheritConflict(t *testing.T) {
	res := compileDerived(t, `package app
required: [
	{name: "gpu", matchFeatures: [{feature: "pci.device", matchExpressions: vendor: {op: "In", value: ["10de"]}}]},
	{name: "kernel", matchFeatures: [{feature: "kernel.version", matchExpressions: major: {op: "Ge", value: ["3"]}}]},
]
`)
	_, _, _, err := res.Inherit("", baseSpec(t), baseRef)
	var ie *InheritError
	if !errors.As(err, &ie) || len(ie.Conflicts) != 1 {
		t.Fatalf("got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"derived.cue:4:2: compatibilities[0].rules[1] (kernel)", baseRef + " compatibilities[1].rules[0] (kernel)", "kernel.version major", "relax"} {
		if !strings.Contains(msg, want) {
			t.Errorf("want %q in\n%s", want, msg)
		}
	}
}

// A base with real alternatives (AVX on x86, ASIMD on arm): every derived set is combined with
// each of them, so the derived image keeps "one of the base's sets", not only what they share.
func TestInheritAlternatives(t *testing.T) {
	base, err := spec.Parse([]byte(`{"version": "v1alpha1", "compatibilities": [
 {"tag": "x86", "rules": [{"name": "avx", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"AVX": {"op": "Exists"}}}]}]},
 {"tag": "arm", "rules": [{"name": "asimd", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"ASIMD": {"op": "Exists"}}}]}]}]}`), "base")
	if err != nil {
		t.Fatal(err)
	}
	res := compileDerived(t, `package app
version: "v1alpha1"
compatibilities: [{weight: 40, rules: [{name: "kernel", matchFeatures: [{feature: "kernel.version", matchExpressions: major: {op: "In", value: ["6"]}}]}]}]
`)
	out, rec, _, err := res.Inherit("", base, baseRef)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Compatibilities) != 2 || ruleNames(out, 0) != "avx,kernel" || ruleNames(out, 1) != "asimd,kernel" ||
		out.Compatibilities[1].Weight != 40 || strings.Join(rec.Inherited, ",") != "avx,asimd" {
		t.Fatalf("got %d sets: %s | %s, inherited %v", len(out.Compatibilities), ruleNames(out, 0), ruleNames(out, 1), rec.Inherited)
	}
}

// Combined sets name the base set they come from, also once redundant base sets are pruned: with
// base sets x (core + extra), y (core) and z (other), x adds nothing to y and is dropped, and the
// two combinations are labelled y and z.
func TestInheritLabelsAfterPruning(t *testing.T) {
	core := `{"name": "core", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"AVX": {"op": "Exists"}}}]}`
	base, err := spec.Parse([]byte(`{"version": "v1alpha1", "compatibilities": [
 {"tag": "x", "rules": [`+core+`, {"name": "extra", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"AVX2": {"op": "Exists"}}}]}]},
 {"tag": "y", "rules": [`+core+`]},
 {"tag": "z", "rules": [{"name": "other", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"ASIMD": {"op": "Exists"}}}]}]}]}`), "base")
	if err != nil {
		t.Fatal(err)
	}
	res := compileDerived(t, `package app
version: "v1alpha1"
compatibilities: [{description: "app", rules: [{name: "kernel", matchFeatures: [{feature: "kernel.version", matchExpressions: major: {op: "In", value: ["6"]}}]}]}]
`)
	out, _, _, err := res.Inherit("", base, baseRef)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Compatibilities) != 2 || ruleNames(out, 0) != "core,kernel" || ruleNames(out, 1) != "other,kernel" ||
		out.Compatibilities[0].Description != "app (with base set y)" || out.Compatibilities[1].Description != "app (with base set z)" {
		t.Fatalf("got %d sets: %s %q | %s %q", len(out.Compatibilities), ruleNames(out, 0), out.Compatibilities[0].Description, ruleNames(out, 1), out.Compatibilities[1].Description)
	}
}

// A derived In or range on integers that lies within the base's bound is stricter, not a conflict.
func TestInheritStricterForms(t *testing.T) {
	base, err := spec.Parse([]byte(`{"version": "v1alpha1", "compatibilities": [{"rules": [
 {"name": "kernel", "matchFeatures": [{"feature": "kernel.version", "matchExpressions": {"major": {"op": "Gt", "value": ["4"]}}}]}]}]}`), "base")
	if err != nil {
		t.Fatal(err)
	}
	for _, expr := range []string{`{op: "In", value: ["6"]}`, `{op: "GtLt", value: ["4", "9"]}`, `{op: "GeLe", value: ["5", "9"]}`} {
		res := compileDerived(t, `package app
version: "v1alpha1"
compatibilities: [{rules: [{name: "kernel", matchFeatures: [{feature: "kernel.version", matchExpressions: major: `+expr+`}]}]}]
`)
		if _, _, _, err := res.Inherit("", base, baseRef); err != nil {
			t.Errorf("%s: %v", expr, err)
		}
	}
	res := compileDerived(t, `package app
version: "v1alpha1"
compatibilities: [{rules: [{name: "kernel", matchFeatures: [{feature: "kernel.version", matchExpressions: major: {op: "In", value: ["4", "6"]}}]}]}]
`)
	if _, _, _, err := res.Inherit("", base, baseRef); err == nil {
		t.Error("In [4, 6] is not within Gt 4: want a conflict")
	}
}
