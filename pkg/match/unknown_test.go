package match_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/compatkit/compatkit/pkg/host"
	"github.com/compatkit/compatkit/pkg/match"
	"github.com/compatkit/compatkit/pkg/spec"
)

// On a profile made from a dump, a rule on a cpuid flag the dump cannot tell (AMXFP8: Linux does
// not print it) fails as "unknown on this host", one on a flag the dump shows absent (AVX512F on a
// Haswell) as "not present", and one on a feature set the dump cannot tell at all (cpu.rdt) as
// unknown too.
func TestExplainUnknownOnDump(t *testing.T) {
	d, err := host.HostRoot("../host/testdata/hostroot", host.HostRootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := d.Discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := &spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{{Rules: []spec.Rule{
		{Name: "amx", MatchFeatures: []spec.FeatureMatcherTerm{{Feature: "cpu.cpuid", MatchExpressions: map[string]*spec.MatchExpression{"AMXFP8": {Op: spec.OpExists}, "AVX512F": {Op: spec.OpExists}}}}},
		{Name: "rdt", MatchFeatures: []spec.FeatureMatcherTerm{{Feature: "cpu.rdt", MatchExpressions: map[string]*spec.MatchExpression{"RDTMON": {Op: spec.OpExists}}}}},
	}}}}
	p, err := match.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Evaluate(f)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(res.Sets[0].Rules)
	for _, want := range []string{
		"cpu.cpuid: AMXFP8 Exists (unknown on this host (Linux does not print it in /proc/cpuinfo))",
		"cpu.cpuid: AVX512F Exists (not present on the host)",
		"cpu.rdt (unknown on this host",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("explanation lacks %q:\n%s", want, got)
		}
	}
}

// A compatkit feature a live host lacks says how NFD gets it.
func TestExplainCompatkitHint(t *testing.T) {
	s := &spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{{Rules: []spec.Rule{
		{Name: "driver", MatchFeatures: []spec.FeatureMatcherTerm{{Feature: "compatkit.nvidia", MatchExpressions: map[string]*spec.MatchExpression{"driver.major": {Op: spec.OpGt, Value: []string{"549"}}}}}},
	}}}}
	s.LocalizeCompatkit()
	p, err := match.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	f := host.FeaturesFromLabels(map[string]string{"kubernetes.io/arch": "amd64"})
	res, err := p.Evaluate(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(res.Sets[0].Rules); !strings.Contains(got, "--nfd-local-file") {
		t.Errorf("no hint: %s", got)
	}
}
