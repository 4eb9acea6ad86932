package match

import (
	"regexp"
	"strconv"
	"strings"

	semver "github.com/Masterminds/semver/v3"
	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
	"sigs.k8s.io/node-feature-discovery/pkg/apis/nfd/nodefeaturerule"
)

// FastProgram evaluates a Program many times faster than NFD's engine, for reports over many
// hosts. It gives the same verdicts as Program.Verdict (a test compares both on random specs and
// hosts): it re-implements nodefeaturerule's matching of matchFeatures, matchAny and
// matchExpressions, with regular expressions, numbers and versions parsed once, no allocation
// per expression and short-circuits where no expression can fail with an error. It falls back to
// NFD's engine for what it does not re-implement: rules with matchName (per rule), programs with
// vars (whole program), and rules whose values NFD would reject. It is immutable and safe for
// concurrent use.
type FastProgram struct {
	p    *Program
	sets [][]fastRule
}

type fastRule struct {
	g   *nfdv1alpha1.GroupRule
	nfd bool // evaluate with nodefeaturerule
	// mayErr: an expression can fail with an error on some host value (a number or version
	// comparison); NFD then fails the whole rule, so every expression must be evaluated.
	mayErr bool
	all    []fastTerm
	any    [][]fastTerm
}

type fastTerm struct {
	feature string // lower-cased, as NFD looks it up
	exprs   []fastExpr
	hasSet  bool // matchExpressions is set (NFD distinguishes nil from empty)
}

type fastExpr struct {
	name    string
	op      nfdv1alpha1.MatchOp
	values  []string
	res     []*regexp.Regexp
	version bool
	n       [2]int
	v       [2]*semver.Version
}

// Fast compiles p for FastProgram's evaluator.
func (p *Program) Fast() *FastProgram {
	fp := &FastProgram{p: p}
	if p.hasVars {
		return fp
	}
	fp.sets = make([][]fastRule, len(p.rules))
	for i, rules := range p.rules {
		for _, g := range rules {
			fp.sets[i] = append(fp.sets[i], compileFastRule(g))
		}
	}
	return fp
}

func compileFastRule(g *nfdv1alpha1.GroupRule) fastRule {
	r := fastRule{g: g}
	terms := func(m nfdv1alpha1.FeatureMatcher) []fastTerm {
		var out []fastTerm
		for _, t := range m {
			if t.MatchName != nil {
				r.nfd = true
				return nil
			}
			ft := fastTerm{feature: strings.ToLower(t.Feature), hasSet: t.MatchExpressions != nil}
			if t.MatchExpressions != nil {
				for name, e := range *t.MatchExpressions {
					fe, ok, mayErr := compileFastExpr(name, e)
					if !ok {
						r.nfd = true
						return nil
					}
					r.mayErr = r.mayErr || mayErr
					ft.exprs = append(ft.exprs, fe)
				}
			}
			out = append(out, ft)
		}
		return out
	}
	r.all = terms(g.MatchFeatures)
	for _, a := range g.MatchAny {
		r.any = append(r.any, terms(a.MatchFeatures))
	}
	return r
}

// compileFastExpr parses e's values; ok is false when NFD would reject them (the rule is then
// left to NFD, which says why), mayErr when a host value can make NFD fail.
func compileFastExpr(name string, e *nfdv1alpha1.MatchExpression) (fe fastExpr, ok, mayErr bool) {
	if e == nil {
		return fe, false, false
	}
	fe = fastExpr{name: name, op: e.Op, values: e.Value}
	switch e.Op {
	case nfdv1alpha1.MatchExists, nfdv1alpha1.MatchDoesNotExist, nfdv1alpha1.MatchIsTrue, nfdv1alpha1.MatchIsFalse:
		return fe, len(e.Value) == 0, false
	case nfdv1alpha1.MatchIn, nfdv1alpha1.MatchNotIn:
		return fe, len(e.Value) > 0, false
	case nfdv1alpha1.MatchInRegexp:
		if len(e.Value) == 0 {
			return fe, false, false
		}
		for _, v := range e.Value {
			re, err := regexp.Compile(v)
			if err != nil {
				return fe, false, false
			}
			fe.res = append(fe.res, re)
		}
		return fe, true, false
	case nfdv1alpha1.MatchGt, nfdv1alpha1.MatchGe, nfdv1alpha1.MatchLt, nfdv1alpha1.MatchLe,
		nfdv1alpha1.MatchGtLt, nfdv1alpha1.MatchGeLe:
		want := 1
		if e.Op == nfdv1alpha1.MatchGtLt || e.Op == nfdv1alpha1.MatchGeLe {
			want = 2
		}
		if len(e.Value) != want {
			return fe, false, false
		}
		switch e.Type {
		case nfdv1alpha1.TypeVersion:
			fe.version = true
			for i, v := range e.Value {
				sv, err := extractVersion(v)
				if err != nil {
					return fe, false, false
				}
				fe.v[i] = sv
			}
		case nfdv1alpha1.TypeEmpty:
			for i, v := range e.Value {
				n, err := strconv.Atoi(v)
				if err != nil {
					return fe, false, false
				}
				fe.n[i] = n
			}
			if want == 2 && fe.n[0] >= fe.n[1] {
				return fe, false, false
			}
		default:
			return fe, false, false
		}
		return fe, true, true
	}
	return fe, false, false
}

// extractVersion is nodefeaturerule's: a semantic version without its pre-release part.
func extractVersion(v string) (*semver.Version, error) {
	version, err := semver.NewVersion(v)
	if err != nil {
		return nil, err
	}
	*version, err = version.SetPrerelease("")
	if err != nil {
		return nil, err
	}
	return version, nil
}

// eval is nodefeaturerule's evaluateMatchExpression: valid says whether the element exists, key
// that it is a flag (no value). bad reports an expression NFD fails with an error.
func (e *fastExpr) eval(valid bool, value string, key bool) (match, bad bool) {
	switch e.op {
	case nfdv1alpha1.MatchExists:
		return valid, false
	case nfdv1alpha1.MatchDoesNotExist:
		return !valid, false
	}
	if !valid || key {
		return false, false
	}
	switch e.op {
	case nfdv1alpha1.MatchIn:
		for _, v := range e.values {
			if v == value {
				return true, false
			}
		}
		return false, false
	case nfdv1alpha1.MatchNotIn:
		for _, v := range e.values {
			if v == value {
				return false, false
			}
		}
		return true, false
	case nfdv1alpha1.MatchInRegexp:
		for _, re := range e.res {
			if re.MatchString(value) {
				return true, false
			}
		}
		return false, false
	case nfdv1alpha1.MatchIsTrue:
		return value == "true", false
	case nfdv1alpha1.MatchIsFalse:
		return value == "false", false
	}
	if e.version {
		l, err := extractVersion(value)
		if err != nil {
			return false, true
		}
		switch e.op {
		case nfdv1alpha1.MatchLt:
			return l.LessThan(e.v[0]), false
		case nfdv1alpha1.MatchLe:
			return l.LessThanEqual(e.v[0]), false
		case nfdv1alpha1.MatchGt:
			return l.GreaterThan(e.v[0]), false
		case nfdv1alpha1.MatchGe:
			return l.GreaterThanEqual(e.v[0]), false
		case nfdv1alpha1.MatchGtLt:
			return l.GreaterThan(e.v[0]) && l.LessThan(e.v[1]), false
		case nfdv1alpha1.MatchGeLe:
			return l.GreaterThanEqual(e.v[0]) && l.LessThanEqual(e.v[1]), false
		}
		return false, false
	}
	l, err := strconv.Atoi(value)
	if err != nil {
		return false, true
	}
	switch e.op {
	case nfdv1alpha1.MatchLt:
		return l < e.n[0], false
	case nfdv1alpha1.MatchLe:
		return l <= e.n[0], false
	case nfdv1alpha1.MatchGt:
		return l > e.n[0], false
	case nfdv1alpha1.MatchGe:
		return l >= e.n[0], false
	case nfdv1alpha1.MatchGtLt:
		return l > e.n[0] && l < e.n[1], false
	case nfdv1alpha1.MatchGeLe:
		return l >= e.n[0] && l <= e.n[1], false
	}
	return false, false
}

// multi is nodefeaturerule.MatchMulti: flags and attributes as a union, then instances, each of
// which must satisfy every expression. full evaluates everything (to find errors).
func (t *fastTerm) multi(keys map[string]nfdv1alpha1.Nil, values map[string]string, instances []nfdv1alpha1.InstanceFeature, full bool) (match, bad bool) {
	isMatch := keys != nil || values != nil
	for i := range t.exprs {
		if !isMatch && !full {
			break
		}
		e := &t.exprs[i]
		var mk, mv bool
		if keys != nil {
			_, ok := keys[e.name]
			mk, _ = e.eval(ok, "", true)
			if !mk && e.op == nfdv1alpha1.MatchDoesNotExist {
				isMatch = false
				continue
			}
		}
		if values != nil {
			v, ok := values[e.name]
			var b bool
			mv, b = e.eval(ok, v, false)
			if b {
				return false, true
			}
			if !mv && e.op == nfdv1alpha1.MatchDoesNotExist {
				isMatch = false
				continue
			}
		}
		if !mk && !mv {
			isMatch = false
		}
	}
	if isMatch && !full {
		return true, false
	}
	for _, in := range instances {
		all := true
		for i := range t.exprs {
			e := &t.exprs[i]
			v, ok := in.Attributes[e.name]
			m, b := e.eval(ok, v, false)
			if b {
				return false, true
			}
			if !m {
				all = false
				if !full {
					break
				}
			}
		}
		if all {
			isMatch = true
			if !full {
				return true, false
			}
		}
	}
	return isMatch, false
}

// terms is nodefeaturerule's evaluateFeatureMatcher: every term must match.
func fastTerms(ts []fastTerm, f *Features, full bool) (match, bad bool) {
	match = true
	for i := range ts {
		t := &ts[i]
		fF, okF := f.Flags[t.feature]
		fA, okA := f.Attributes[t.feature]
		fI, okI := f.Instances[t.feature]
		if !okF && !okA && !okI {
			match = false
			if !full {
				return false, false
			}
			continue
		}
		if !t.hasSet {
			continue
		}
		m, b := t.multi(fF.Elements, fA.Elements, fI.Elements, full)
		if b {
			return false, true
		}
		if !m {
			match = false
			if !full {
				return false, false
			}
		}
	}
	return match, false
}

// rule is nodefeaturerule.ExecuteGroupRule's IsMatch; bad when NFD fails with an error.
func (r *fastRule) eval(f *Features) (match, bad bool) {
	anyOK := len(r.any) == 0
	for _, a := range r.any {
		m, b := fastTerms(a, f, r.mayErr)
		if b {
			return false, true
		}
		if m {
			anyOK = true
			if !r.mayErr {
				break
			}
		}
	}
	if !anyOK && !r.mayErr {
		return false, false
	}
	allOK := true
	if len(r.all) > 0 {
		m, b := fastTerms(r.all, f, r.mayErr)
		if b {
			return false, true
		}
		allOK = m
	}
	return anyOK && allOK, false
}

// Verdict returns what Program.Verdict returns for features, faster.
func (fp *FastProgram) Verdict(features *Features) (*Result, error) {
	p := fp.p
	if fp.sets == nil {
		return p.Verdict(features)
	}
	if features == nil {
		features = nfdv1alpha1.NewFeatures()
	}
	if p.kernelRelease {
		features = withKernelRelease(features)
	}
	res := &Result{Best: -1, Sets: make([]SetResult, len(fp.sets))}
	for i, rules := range fp.sets {
		c := &p.spec.Compatibilities[i]
		sr := SetResult{Tag: c.Tag, Description: c.Description, Weight: c.Weight, Matched: true, Rules: make([]RuleResult, len(rules))}
		for j := range rules {
			r := &rules[j]
			rr := RuleResult{Name: RuleName(r.g.Name, j)}
			var bad bool
			if r.nfd {
				out, err := nodefeaturerule.ExecuteGroupRule(r.g, features, false)
				rr.Matched = err == nil && out.MatchStatus != nil && out.MatchStatus.IsMatch
				bad = err != nil
			} else {
				rr.Matched, bad = r.eval(features)
			}
			if bad {
				// Ask NFD for its exact words.
				_, err := nodefeaturerule.ExecuteGroupRule(r.g, features, false)
				msg := "cannot evaluate on this host"
				if err != nil {
					msg += ": " + err.Error()
				}
				rr.Matched = false
				rr.Failed = []Failure{{MatchAny: -1, Reason: msg}}
			}
			if !rr.Matched {
				sr.Matched = false
			}
			sr.Rules[j] = rr
		}
		res.record(i, sr)
	}
	return res, nil
}

// FirstFailure returns what Program.Evaluate(features) followed by Result.FirstFailure returns,
// given r, the Verdict of the same features; it explains only the rule it reports.
func (fp *FastProgram) FirstFailure(features *Features, r *Result) (set, rule string, f *Failure, ok bool) {
	if fp.sets == nil {
		full, err := fp.p.Evaluate(features)
		if err != nil {
			return r.FirstFailure()
		}
		return full.FirstFailure()
	}
	if r.Compatible || len(r.Sets) == 0 {
		return "", "", nil, false
	}
	if features == nil {
		features = nfdv1alpha1.NewFeatures()
	}
	if fp.p.kernelRelease {
		features = withKernelRelease(features)
	}
	best := r.closestSet()
	s := r.Sets[best]
	for j, rr := range s.Rules {
		if rr.Matched {
			continue
		}
		if len(rr.Failed) > 0 {
			return s.Tag, rr.Name, &rr.Failed[0], true
		}
		if fs := explainRule(fp.p.rules[best][j], features); len(fs) > 0 {
			return s.Tag, rr.Name, &fs[0], true
		}
		return s.Tag, rr.Name, nil, true
	}
	return s.Tag, "", nil, true
}
