package match_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"

	"github.com/compatkit/compatkit/pkg/match"
	"github.com/compatkit/compatkit/pkg/spec"
)

var (
	rndNames  = []string{"A", "B", "C", "D", "major", "full"}
	rndValues = []string{"1", "4", "6", "10", "true", "false", "x", "5.15.0", "6.1.0-18-amd64", "10de", "0302", ""}
	rndFeats  = []string{"cpu.cpuid", "kernel.version", "pci.device", "mixed.feat", "absent.feat", "CPU.CPUID"}
)

func rndExpr(r *rand.Rand) *spec.MatchExpression {
	op := spec.Ops[r.IntN(len(spec.Ops))]
	e := &spec.MatchExpression{Op: op}
	pick := func() string { return rndValues[r.IntN(len(rndValues))] }
	num := func() string { return fmt.Sprint(r.IntN(12)) }
	switch op {
	case spec.OpIn, spec.OpNotIn:
		for range 1 + r.IntN(3) {
			e.Value = append(e.Value, pick())
		}
	case spec.OpInRegexp:
		e.Value = []string{[]string{"^6\\.", "de$", "^t", "."}[r.IntN(4)]}
	case spec.OpGt, spec.OpGe, spec.OpLt, spec.OpLe:
		if r.IntN(3) == 0 {
			e.Type = "version"
			e.Value = []string{[]string{"5.4", "5.15", "6.1.0", "4"}[r.IntN(4)]}
		} else {
			e.Value = []string{num()}
		}
	case spec.OpGtLt, spec.OpGeLe:
		if r.IntN(3) == 0 {
			e.Type = "version"
			e.Value = []string{"4.0", "6.2"}
		} else {
			a := r.IntN(8)
			e.Value = []string{fmt.Sprint(a), fmt.Sprint(a + 1 + r.IntN(5))}
		}
	}
	return e
}

func rndTerms(r *rand.Rand) []spec.FeatureMatcherTerm {
	var out []spec.FeatureMatcherTerm
	for range 1 + r.IntN(2) {
		t := spec.FeatureMatcherTerm{Feature: rndFeats[r.IntN(len(rndFeats))], MatchExpressions: map[string]*spec.MatchExpression{}}
		for range 1 + r.IntN(2) {
			t.MatchExpressions[rndNames[r.IntN(len(rndNames))]] = rndExpr(r)
		}
		if r.IntN(10) == 0 {
			t.MatchName = &spec.MatchExpression{Op: spec.OpInRegexp, Value: []string{"^[A-C]"}}
		}
		out = append(out, t)
	}
	return out
}

func rndSpec(r *rand.Rand) *spec.Spec {
	s := &spec.Spec{Version: spec.Version}
	for i := range 1 + r.IntN(3) {
		c := spec.Compatibility{Weight: r.IntN(101), Tag: fmt.Sprint("s", i)}
		for j := range 1 + r.IntN(2) {
			rule := spec.Rule{Name: fmt.Sprint("r", j)}
			if r.IntN(3) > 0 {
				rule.MatchFeatures = rndTerms(r)
			}
			if len(rule.MatchFeatures) == 0 || r.IntN(4) == 0 {
				for range 1 + r.IntN(2) {
					rule.MatchAny = append(rule.MatchAny, spec.MatchAnyElem{MatchFeatures: rndTerms(r)})
				}
			}
			c.Rules = append(c.Rules, rule)
		}
		s.Compatibilities = append(s.Compatibilities, c)
	}
	return s
}

func rndHost(r *rand.Rand) *nfdv1alpha1.Features {
	f := nfdv1alpha1.NewFeatures()
	sub := func() []string {
		var out []string
		for _, n := range rndNames {
			if r.IntN(2) == 0 {
				out = append(out, n)
			}
		}
		return out
	}
	vals := func() map[string]string {
		m := map[string]string{}
		for _, n := range sub() {
			if r.IntN(10) < 7 {
				m[n] = fmt.Sprint(r.IntN(12)) // mostly numbers, so that comparisons often evaluate
			} else {
				m[n] = rndValues[r.IntN(len(rndValues))]
			}
		}
		return m
	}
	if r.IntN(5) > 0 {
		f.Flags["cpu.cpuid"] = nfdv1alpha1.NewFlagFeatures(sub()...)
	}
	if r.IntN(5) > 0 {
		f.Attributes["kernel.version"] = nfdv1alpha1.NewAttributeFeatures(vals())
	}
	if r.IntN(5) > 0 {
		var in []nfdv1alpha1.InstanceFeature
		for range r.IntN(4) {
			in = append(in, *nfdv1alpha1.NewInstanceFeature(vals()))
		}
		f.Instances["pci.device"] = nfdv1alpha1.NewInstanceFeatures(in...)
	}
	if r.IntN(2) == 0 {
		f.Flags["mixed.feat"] = nfdv1alpha1.NewFlagFeatures(sub()...)
		f.Attributes["mixed.feat"] = nfdv1alpha1.NewAttributeFeatures(vals())
		if r.IntN(2) == 0 {
			f.Instances["mixed.feat"] = nfdv1alpha1.NewInstanceFeatures(*nfdv1alpha1.NewInstanceFeature(vals()))
		}
	}
	return f
}

// TestFastAgreesWithNFD compares FastProgram with Program (NFD's engine) on random specs and
// hosts: verdicts, scores, per-rule outcomes and the first failure must be identical.
func TestFastAgreesWithNFD(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	hosts := make([]*nfdv1alpha1.Features, 60)
	for i := range hosts {
		hosts[i] = rndHost(r)
	}
	compared, compatible, errored := 0, 0, 0
	for n := 0; n < 600; n++ {
		s := rndSpec(r)
		p, err := match.Compile(s)
		if err != nil {
			continue
		}
		fp := p.Fast()
		for _, h := range hosts {
			want, err := p.Verdict(h)
			if err != nil {
				t.Fatal(err)
			}
			got, err := fp.Verdict(h)
			if err != nil {
				t.Fatal(err)
			}
			// NFD reports the first error it meets in Go's random map order: compare only that
			// a rule could not be evaluated, not which expression said so.
			normalize(want)
			normalize(got)
			if !reflect.DeepEqual(want, got) {
				y, _ := s.MarshalYAML()
				t.Fatalf("spec\n%s\nhost %+v\nNFD:  %+v\nfast: %+v", y, h, want, got)
			}
			full, _ := p.Evaluate(h)
			normalize(full)
			ws, wr, wf, wok := full.FirstFailure()
			gs, gr, gf, gok := fp.FirstFailure(h, got)
			if gf != nil && gf.Feature == "" {
				gf.Reason = "cannot evaluate"
			}
			if ws != gs || wr != gr || wok != gok || !reflect.DeepEqual(wf, gf) {
				t.Fatalf("first failure: NFD %q %q %v %v, fast %q %q %v %v", ws, wr, wf, wok, gs, gr, gf, gok)
			}
			compared++
			if want.Compatible {
				compatible++
			}
			for _, set := range want.Sets {
				for _, rr := range set.Rules {
					if len(rr.Failed) > 0 && rr.Failed[0].Feature == "" {
						errored++
					}
				}
			}
		}
	}
	t.Logf("%d comparisons, %d compatible, %d rules NFD could not evaluate", compared, compatible, errored)
	if compatible == 0 || compatible == compared || errored == 0 {
		t.Fatal("the random inputs do not exercise both verdicts and errors")
	}
}

func normalize(r *match.Result) {
	for i := range r.Sets {
		for j := range r.Sets[i].Rules {
			for k, f := range r.Sets[i].Rules[j].Failed {
				if f.Feature == "" {
					r.Sets[i].Rules[j].Failed[k].Reason = "cannot evaluate"
				}
			}
		}
	}
}
