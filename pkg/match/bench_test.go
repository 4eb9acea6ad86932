package match

import (
	"testing"

	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"

	"github.com/compatkit/compatkit/pkg/spec"
)

// benchSpec is shaped like the example's x86-64-v3 spec: one set of 23 cpuid flags plus a kernel
// rule with two matchAny alternatives, and a fallback set.
func benchSpec() *spec.Spec {
	flags := map[string]*spec.MatchExpression{}
	for _, f := range []string{"AVX", "AVX2", "BMI1", "BMI2", "CMOV", "CMPXCHG8", "CX16", "F16C", "FMA3", "FXSR", "LAHF", "LZCNT",
		"MMX", "MOVBE", "OSXSAVE", "POPCNT", "SSE", "SSE2", "SSE3", "SSE4", "SSE42", "SSSE3", "X87"} {
		flags[f] = &spec.MatchExpression{Op: spec.OpExists}
	}
	kernel := spec.Rule{Name: "kernel", MatchAny: []spec.MatchAnyElem{
		{MatchFeatures: []spec.FeatureMatcherTerm{{Feature: "kernel.version", MatchExpressions: map[string]*spec.MatchExpression{"major": {Op: spec.OpGt, Value: []string{"3"}}}}}},
		{MatchFeatures: []spec.FeatureMatcherTerm{{Feature: "kernel.version", MatchExpressions: map[string]*spec.MatchExpression{"major": {Op: spec.OpIn, Value: []string{"3"}}, "minor": {Op: spec.OpGe, Value: []string{"2"}}}}}},
	}}
	return &spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{
		{Weight: 90, Rules: []spec.Rule{{Name: "v3", MatchFeatures: []spec.FeatureMatcherTerm{{Feature: "cpu.cpuid", MatchExpressions: flags}}}, kernel}},
		{Weight: 10, Rules: []spec.Rule{kernel}},
	}}
}

func benchHost(flags ...string) *Features {
	f := nfdv1alpha1.NewFeatures()
	f.Flags["cpu.cpuid"] = nfdv1alpha1.NewFlagFeatures(flags...)
	f.Attributes["kernel.version"] = nfdv1alpha1.NewAttributeFeatures(map[string]string{"major": "6", "minor": "1"})
	return f
}

// BenchmarkEvaluate measures one spec against one host: NFD's engine with explanations
// (Evaluate, what check prints), the verdict alone (Verdict), and the fast path report uses.
func BenchmarkEvaluate(b *testing.B) {
	p, err := Compile(benchSpec())
	if err != nil {
		b.Fatal(err)
	}
	v2 := benchHost("SSE2", "SSE42", "POPCNT", "CX16")
	b.Run("Evaluate-incompatible", func(b *testing.B) {
		for b.Loop() {
			_, _ = p.Evaluate(v2)
		}
	})
	b.Run("Verdict-incompatible", func(b *testing.B) {
		for b.Loop() {
			_, _ = p.Verdict(v2)
		}
	})
	fp := p.Fast()
	b.Run("Fast-incompatible", func(b *testing.B) {
		for b.Loop() {
			_, _ = fp.Verdict(v2)
		}
	})
}
