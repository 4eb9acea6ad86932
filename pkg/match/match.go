// Package match evaluates image-compatibility specs (pkg/spec) against host features with Node
// Feature Discovery's own rule engine (sigs.k8s.io/node-feature-discovery/pkg/apis/nfd/
// nodefeaturerule), so its verdicts are NFD's, and explains why a rule failed.
//
// Semantics, as NFD's `nfd compat validate-node` applies them: each compatibility set is an
// alternative; a set matches when all of its rules match; an image is compatible when at least one
// set matches (an image without a spec is compatible); its score is the highest weight among the
// matching sets. A rule's vars are visible to later rules as the rule.matched feature.
//
// match never talks to a registry: callers fetch the spec (pkg/oci) and the features (pkg/host).
package match

import (
	"fmt"

	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
	"sigs.k8s.io/node-feature-discovery/pkg/apis/nfd/nodefeaturerule"

	"github.com/compatkit/compatkit/pkg/spec"
)

// Features is NFD's feature collection (as pkg/host discovers it).
type Features = nfdv1alpha1.Features

// Program is a spec compiled for repeated evaluation against many hosts. It is immutable and
// safe for concurrent use.
type Program struct {
	spec    *spec.Spec
	rules   [][]*nfdv1alpha1.GroupRule // [set][rule]
	hasVars bool
	// kernelRelease: a kernel.version.full version expression now tests release (rewriteKernelFull).
	kernelRelease bool
}

// Compile validates s (spec.ValidateRead: what NFD evaluates, compatkit evaluates) and converts
// its rules to NFD's types once.
func Compile(s *spec.Spec) (*Program, error) {
	if s == nil {
		return nil, fmt.Errorf("compile: nil spec")
	}
	if err := s.ValidateRead(); err != nil {
		return nil, err
	}
	p := &Program{spec: s, rules: make([][]*nfdv1alpha1.GroupRule, len(s.Compatibilities))}
	for i := range s.Compatibilities {
		for j := range s.Compatibilities[i].Rules {
			r := &s.Compatibilities[i].Rules[j]
			g, err := r.ToNFD()
			if err != nil {
				return nil, fmt.Errorf("compatibilities[%d].rules[%d]: %w", i, j, err)
			}
			if len(r.Vars) > 0 || r.VarsTemplate != "" {
				p.hasVars = true
			}
			if rewriteKernelFull(g) {
				p.kernelRelease = true
			}
			p.rules[i] = append(p.rules[i], g)
		}
	}
	return p, nil
}

// Spec returns the spec the program was compiled from.
func (p *Program) Spec() *spec.Spec { return p.spec }

// Result is the outcome of evaluating one spec against one host.
type Result struct {
	// Compatible is true when at least one compatibility set matched.
	Compatible bool `json:"compatible"`
	// Score is the highest weight among the matching sets; 0 when none matched.
	Score int `json:"score"`
	// Best is the index of the matching set with the highest weight (the first one on ties), or
	// -1 when none matched.
	Best int `json:"best"`
	// Sets holds one entry per compatibility set, in spec order.
	Sets []SetResult `json:"sets"`
}

// SetResult is the outcome of one compatibility set.
type SetResult struct {
	Tag         string       `json:"tag,omitempty"`
	Description string       `json:"description,omitempty"`
	Weight      int          `json:"weight"`
	Matched     bool         `json:"matched"`
	Rules       []RuleResult `json:"rules"`
}

// RuleResult is the outcome of one rule; Failed explains a rule that did not match.
type RuleResult struct {
	Name    string `json:"name"`
	Matched bool   `json:"matched"`
	// Failed lists the expressions that did not hold on the host (empty when Matched).
	Failed []Failure `json:"failed,omitempty"`
}

// Failure is one expression of a rule that the host does not satisfy.
type Failure struct {
	// Feature is the feature set, e.g. cpu.cpuid.
	Feature string `json:"feature"`
	// Element is the element the expression tests (a cpuid flag, a module name); empty for a
	// matchName expression or a whole instance term.
	Element string `json:"element,omitempty"`
	// Expression is the failing expression; nil when the feature is absent altogether.
	Expression *spec.MatchExpression `json:"expression,omitempty"`
	// MatchAny is the index of the matchAny alternative holding the term, or -1 for matchFeatures.
	MatchAny int `json:"matchAny"`
	// Reason says in words why it failed.
	Reason string `json:"reason"`
}

// String renders the failure as "cpu.cpuid: AVX512F Exists (not present on the host)".
func (f Failure) String() string {
	if f.Feature == "" {
		return f.Reason
	}
	s := f.Feature
	if f.Element != "" {
		s += ": " + f.Element
	}
	if f.Expression != nil {
		if f.Element == "" {
			s += ":"
		}
		s += " " + f.Expression.String()
	}
	return s + " (" + f.Reason + ")"
}

// Evaluate runs every compatibility set against features, which it does not modify. A rule that
// NFD cannot evaluate on this host (a comparison against a non-numeric host value) does not match
// and its Failure says why; NFD's own validator would abort the whole check instead. Failing rules
// get their failing expressions in Result; use Verdict when only the outcome is needed.
func (p *Program) Evaluate(features *Features) (*Result, error) {
	return p.evaluate(features, true)
}

// Verdict is Evaluate without the explanation of failures: cheaper when evaluating many hosts.
func (p *Program) Verdict(features *Features) (*Result, error) {
	return p.evaluate(features, false)
}

func (p *Program) evaluate(features *Features, explain bool) (*Result, error) {
	if features == nil {
		features = nfdv1alpha1.NewFeatures()
	}
	if p.kernelRelease {
		features = withKernelRelease(features)
	}
	if p.hasVars {
		// NFD records each matched rule's vars as rule.matched for later rules; work on a copy.
		features = features.DeepCopy()
	}
	res := &Result{Best: -1, Sets: make([]SetResult, len(p.rules))}
	for i, rules := range p.rules {
		c := &p.spec.Compatibilities[i]
		sr := SetResult{Tag: c.Tag, Description: c.Description, Weight: c.Weight, Matched: true,
			Rules: make([]RuleResult, len(rules))}
		for j, g := range rules {
			out, err := nodefeaturerule.ExecuteGroupRule(g, features, false)
			rr := RuleResult{Name: RuleName(g.Name, j), Matched: err == nil && out.MatchStatus != nil && out.MatchStatus.IsMatch}
			switch {
			case err != nil:
				// NFD aborts on a host value its operator cannot read (Gt on "abc"); here that
				// rule does not match, and the other sets still count.
				sr.Matched = false
				rr.Failed = []Failure{{MatchAny: -1, Reason: "cannot evaluate on this host: " + err.Error()}}
			case !rr.Matched:
				sr.Matched = false
				if explain {
					rr.Failed = explainRule(g, features)
				}
			}
			if p.hasVars {
				features.InsertAttributeFeatures(nfdv1alpha1.RuleBackrefDomain, nfdv1alpha1.RuleBackrefFeature, out.Vars)
			}
			sr.Rules[j] = rr
		}
		res.record(i, sr)
	}
	return res, nil
}

// RuleName is how results name rule j of a set: its name, or "rules[j]" for a rule without one
// (NFD does not require names).
func RuleName(name string, j int) string {
	if name == "" {
		return fmt.Sprintf("rules[%d]", j)
	}
	return name
}

// FirstFailure returns the first failing rule of the set that came closest (fewest failing
// rules), for one-line reports; ok is false when the result is compatible or has no sets.
func (r *Result) FirstFailure() (set, rule string, f *Failure, ok bool) {
	if r.Compatible || len(r.Sets) == 0 {
		return "", "", nil, false
	}
	s := r.Sets[r.closestSet()]
	for _, rr := range s.Rules {
		if !rr.Matched {
			if len(rr.Failed) > 0 {
				return s.Tag, rr.Name, &rr.Failed[0], true
			}
			return s.Tag, rr.Name, nil, true
		}
	}
	return s.Tag, "", nil, true
}

// closestSet is the index of the set with the fewest failing rules (the first on ties); r has at
// least one set.
func (r *Result) closestSet() int {
	best, bestFails := -1, 0
	for i, s := range r.Sets {
		n := 0
		for _, rr := range s.Rules {
			if !rr.Matched {
				n++
			}
		}
		if best < 0 || n < bestFails {
			best, bestFails = i, n
		}
	}
	return best
}

// record stores set i's outcome and updates the verdict, the best set and the score.
func (res *Result) record(i int, sr SetResult) {
	if sr.Matched {
		res.Compatible = true
		if res.Best < 0 || sr.Weight > res.Score {
			res.Score, res.Best = sr.Weight, i
		}
	}
	res.Sets[i] = sr
}
