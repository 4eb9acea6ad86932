package match_test

import (
	"strings"
	"testing"

	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"

	"github.com/compatkit/compatkit/pkg/host"
	"github.com/compatkit/compatkit/pkg/match"
	"github.com/compatkit/compatkit/pkg/spec"
)

func kernelFullSpec(op spec.Op, v string) *spec.Spec {
	return &spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{{Rules: []spec.Rule{
		{Name: "kernel", MatchFeatures: []spec.FeatureMatcherTerm{{Feature: "kernel.version",
			MatchExpressions: map[string]*spec.MatchExpression{"full": {Op: op, Value: []string{v}, Type: "version"}}}}},
	}}}}
}

// `type: version` over kernel.version.full compares the numeric release on distribution kernels
// NFD cannot read as semantic versions, with and without the release element in the profile.
func TestKernelFullVersionRule(t *testing.T) {
	for _, tc := range []struct {
		full string
		want bool
	}{
		{"4.18.0-553.el8_10.x86_64", true},
		{"3.10.0-1160.el7.x86_64", false},
		{"5.15.90.1-microsoft-standard-WSL2", true},
		{"6.12.95_deb13-amd64", true},
		{"4.0-19041-Microsoft", false},
		{"6.8.0-45-generic", true},
		{"4.18.0", true},
	} {
		p, err := match.Compile(kernelFullSpec(spec.OpGe, "4.18.0"))
		if err != nil {
			t.Fatal(err)
		}
		bare := nfdv1alpha1.NewFeatures()
		bare.Attributes["kernel.version"] = nfdv1alpha1.NewAttributeFeatures(map[string]string{"full": tc.full})
		normalized := bare.DeepCopy()
		host.NormalizeKernelVersion(normalized)
		for name, f := range map[string]*nfdv1alpha1.Features{"nfd export": bare, "compatkit": normalized} {
			r, err := p.Evaluate(f)
			if err != nil {
				t.Fatal(err)
			}
			fr, _ := p.Fast().Verdict(f)
			if r.Compatible != tc.want || fr.Compatible != tc.want {
				t.Errorf("%s %s Ge 4.18.0: %v (fast %v), want %v: %+v", name, tc.full, r.Compatible, fr.Compatible, tc.want, r.Sets)
			}
		}
		if _, ok := bare.Attributes["kernel.version"].Elements["release"]; ok {
			t.Fatal("Evaluate modified the features")
		}
	}
}

// A failing rule over a feature set the profile marks unknown says so.
func TestUnknownFeatureExplained(t *testing.T) {
	s := &spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{{Rules: []spec.Rule{
		{Name: "config", MatchFeatures: []spec.FeatureMatcherTerm{{Feature: "kernel.config",
			MatchExpressions: map[string]*spec.MatchExpression{"BPF_SYSCALL": {Op: spec.OpIn, Value: []string{"y"}}}}}},
		{Name: "modules", MatchFeatures: []spec.FeatureMatcherTerm{{Feature: "kernel.loadedmodule",
			MatchExpressions: map[string]*spec.MatchExpression{"overlay": {Op: spec.OpExists}}}}},
	}}}}
	p, err := match.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	f := nfdv1alpha1.NewFeatures()
	f.Flags["kernel.loadedmodule"] = nfdv1alpha1.NewFlagFeatures("xfs")
	f.Attributes[host.UnknownFeature] = nfdv1alpha1.NewAttributeFeatures(map[string]string{"kernel.config": "no boot/config-3.10.0 in the root"})
	r, _ := p.Evaluate(f)
	got := r.Sets[0].Rules
	if len(got[0].Failed) != 1 || !strings.HasPrefix(got[0].Failed[0].Reason, "unknown on this host (no boot/config") {
		t.Errorf("unknown set: %+v", got[0].Failed)
	}
	if len(got[1].Failed) != 1 || got[1].Failed[0].Reason != "not present on the host" {
		t.Errorf("known set: %+v", got[1].Failed)
	}
	// A live profile (no compatkit.unknown) is unchanged.
	delete(f.Attributes, host.UnknownFeature)
	r, _ = p.Evaluate(f)
	if reason := r.Sets[0].Rules[0].Failed[0].Reason; reason != "feature not discovered on the host" {
		t.Errorf("live: %q", reason)
	}
}
