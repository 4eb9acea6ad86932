package match

import (
	"testing"

	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"

	"github.com/compatkit/compatkit/pkg/spec"
)

func flagSpec(weight int, flags ...string) *spec.Spec {
	exprs := map[string]*spec.MatchExpression{}
	for _, f := range flags {
		exprs[f] = &spec.MatchExpression{Op: spec.OpExists}
	}
	return &spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{{Weight: weight, Rules: []spec.Rule{{
		Name: "flags", MatchFeatures: []spec.FeatureMatcherTerm{{Feature: "cpu.cpuid", MatchExpressions: exprs}}}}}}}
}

func hostWith(flags ...string) *Features {
	f := nfdv1alpha1.NewFeatures()
	f.Flags["cpu.cpuid"] = nfdv1alpha1.NewFlagFeatures(flags...)
	return f
}

func TestRestrictRuntimes(t *testing.T) {
	gpu := &spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{
		{Weight: 90, Tag: "nvidia", Rules: []spec.Rule{{Name: "nvidia runtime", MatchFeatures: []spec.FeatureMatcherTerm{{
			Feature: RuntimeFeature, MatchExpressions: map[string]*spec.MatchExpression{"nvidia": {Op: spec.OpExists}}}}}}},
		{Weight: 10, Tag: "cpu", Rules: []spec.Rule{{Name: "any", MatchFeatures: []spec.FeatureMatcherTerm{{
			Feature: "cpu.cpuid", MatchExpressions: map[string]*spec.MatchExpression{"SSE2": {Op: spec.OpExists}}}}}}},
	}}
	host := hostWith("SSE2")
	host.Attributes[RuntimeFeature] = nfdv1alpha1.AttributeFeatureSet{Elements: map[string]string{"nvidia": "1.17.0", "runc": "1.1.12"}}
	eval := func(s *spec.Spec) *Result {
		p, err := Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.Evaluate(host)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	res := eval(gpu)
	got := RestrictRuntimes(gpu, res, []string{"runc", "nvidia"})
	if Runtime(gpu, got) != "nvidia" || got.Score != 90 {
		t.Fatalf("allowed nvidia: %+v", got)
	}
	got = RestrictRuntimes(gpu, res, []string{"runc"})
	if Runtime(gpu, got) != "" || got.Score != 10 || !got.Compatible {
		t.Fatalf("nvidia not allowed: want the cpu set (score 10) and no runtime, got %+v", got)
	}
	if !res.Sets[0].Matched || res.Score != 90 || len(res.Sets[0].Rules) != 1 {
		t.Fatalf("RestrictRuntimes modified its input: %+v", res)
	}
	if got := RestrictRuntimes(gpu, res, nil); got != res {
		t.Fatalf("no allowed list: the result is unchanged")
	}

	// The compiled form (local.feature compatkit.runtime.nvidia) names the same runtime.
	gpu.LocalizeCompatkit()
	host.Attributes[spec.LocalFeatureSet] = nfdv1alpha1.AttributeFeatureSet{Elements: map[string]string{"compatkit.runtime.nvidia": "1.17.0"}}
	res = eval(gpu)
	got = RestrictRuntimes(gpu, res, []string{"runc", "nvidia"})
	if Runtime(gpu, got) != "nvidia" || got.Score != 90 {
		t.Fatalf("compiled form, nvidia allowed: %+v", got)
	}
}
