package match_test

import (
	"testing"

	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"

	"github.com/compatkit/compatkit/pkg/host"
	"github.com/compatkit/compatkit/pkg/match"
	"github.com/compatkit/compatkit/pkg/spec"
)

// A rule on compatkit's own features gives the same verdict in its written form (compatkit.X) on
// compatkit's features, and in its compiled form (local.feature compatkit.X.E) on the features NFD
// sees once the local feature file is installed (host.MirrorCompatkit).
func TestLocalizedCompatkitRulesAgree(t *testing.T) {
	written := func() *spec.Spec {
		return &spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{{Rules: []spec.Rule{
			{Name: "driver", MatchFeatures: []spec.FeatureMatcherTerm{{Feature: "compatkit.nvidia",
				MatchExpressions: map[string]*spec.MatchExpression{"driver.major": {Op: spec.OpGe, Value: []string{"535"}}}}}},
			{Name: "runtime", MatchAny: []spec.MatchAnyElem{{MatchFeatures: []spec.FeatureMatcherTerm{{Feature: "compatkit.runtime",
				MatchExpressions: map[string]*spec.MatchExpression{"nvidia": {Op: spec.OpExists}}}}}}},
		}}}}
	}
	compiled := written()
	if n := compiled.LocalizeCompatkit(); n != 2 || compiled.Compatibilities[0].Rules[0].MatchFeatures[0].Feature != spec.LocalFeatureSet {
		t.Fatalf("localized %d terms: %+v", n, compiled)
	}
	for _, tc := range []struct {
		driver string
		want   bool
	}{{"550", true}, {"470", false}} {
		f := nfdv1alpha1.NewFeatures()
		f.Attributes["compatkit.nvidia"] = nfdv1alpha1.NewAttributeFeatures(map[string]string{"driver.major": tc.driver})
		f.Attributes["compatkit.runtime"] = nfdv1alpha1.NewAttributeFeatures(map[string]string{"nvidia": "1.17.0"})
		// What NFD sees: only local.feature, as its local source reads the file compatkit wrote.
		nfdView := nfdv1alpha1.NewFeatures()
		mirrored := f.DeepCopy()
		host.MirrorCompatkit(mirrored)
		nfdView.Attributes[spec.LocalFeatureSet] = mirrored.Attributes[spec.LocalFeatureSet]
		for name, c := range map[string]struct {
			s *spec.Spec
			f *match.Features
		}{"written on compatkit features": {written(), f}, "compiled on NFD's view": {compiled, nfdView}, "compiled on compatkit's view": {compiled, mirrored}} {
			p, err := match.Compile(c.s)
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.Evaluate(c.f)
			if err != nil {
				t.Fatal(err)
			}
			if res.Compatible != tc.want {
				t.Errorf("driver %s, %s: compatible=%v, want %v", tc.driver, name, res.Compatible, tc.want)
			}
		}
	}
}
