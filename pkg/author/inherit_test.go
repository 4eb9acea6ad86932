package author

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/compatkit/compatkit/pkg/spec"
)

const baseRef = "registry.example/base@sha256:1111111111111111111111111111111111111111111111111111111111111111"

// baseSpec requires a kernel >= 4 and AVX2 and AVX512F in every set; SSE42 only in one (an
// alternative, not a requirement).
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
	if len(warns) != 2 || strings.Join(rec.Relaxed, ",") != "cpu.cpuid.AVX512F,kernel" || !strings.Contains(warns[0].String(), baseRef) {
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
	for _, want := range []string{"derived.cue:4:2: compatibilities[0].rules[1] (kernel)", baseRef + " compatibilities[0].rules[0] (kernel)", "kernel.version major", "relax"} {
		if !strings.Contains(msg, want) {
			t.Errorf("want %q in\n%s", want, msg)
		}
	}
}
