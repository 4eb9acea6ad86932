package match

import (
	"fmt"
	"sort"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/compatkit/compatkit/pkg/spec"
)

// RuntimeFeature is the feature set naming container runtimes (element = runtime handler name,
// e.g. runc, crun, nvidia); a compatibility set that tests it names the runtimes it needs.
const RuntimeFeature = "compatkit.runtime"

// Candidate is one manifest of an image index, with the specs that apply to it: its own newest
// spec and the index's (nil when absent).
type Candidate struct {
	// Descriptor of the manifest, as the index lists it (with its platform).
	Descriptor ocispec.Descriptor
	// Position of the manifest in the index, for ties.
	Position int
	// Spec attached to the manifest itself, or nil.
	Spec *spec.Spec
	// IndexSpec attached to the index, applying to every manifest, or nil.
	IndexSpec *spec.Spec
}

// RankOptions tunes Rank.
type RankOptions struct {
	// AllowedRuntimes lists the runtime handlers the administrator allows. When set, a
	// compatibility set that needs a runtime outside the list does not count as matching, and
	// Ranked.Runtime names the allowed runtime the best set needs. Empty: runtimes are not
	// considered and Ranked.Runtime stays empty (never taken from the spec alone).
	AllowedRuntimes []string
}

// Ranked is a Candidate with its outcome on one host.
type Ranked struct {
	Descriptor ocispec.Descriptor `json:"descriptor"`
	Position   int                `json:"position"`
	// Compatible is true when every spec that applies matches (or none applies).
	Compatible bool `json:"compatible"`
	// HasSpec is false when neither the manifest nor the index has a spec.
	HasSpec bool `json:"hasSpec"`
	// Score is the manifest spec's score (the index spec's when the manifest has none).
	Score int `json:"score"`
	// Runtime is the allowed runtime handler the best matching set needs, if any.
	Runtime string `json:"runtime,omitempty"`
	// Reason explains an incompatible candidate in one line.
	Reason string `json:"reason,omitempty"`
	// Result and IndexResult are the evaluations (nil when that spec is absent).
	Result      *Result `json:"result,omitempty"`
	IndexResult *Result `json:"indexResult,omitempty"`
}

// Rank evaluates every candidate against features and orders them: compatible candidates with a
// spec by score (highest first; ties keep index order), then compatible candidates without any
// spec (index order), then the incompatible ones (index order). The first entry is the best
// choice when it is Compatible.
func Rank(cands []Candidate, features *Features, opts RankOptions) ([]Ranked, error) {
	compiled := map[*spec.Spec]*Program{}
	eval := func(s *spec.Spec) (*Result, error) {
		if s == nil {
			return nil, nil
		}
		p, ok := compiled[s]
		if !ok {
			var err error
			if p, err = Compile(s); err != nil {
				return nil, err
			}
			compiled[s] = p
		}
		res, err := p.Evaluate(features)
		if err != nil {
			return nil, err
		}
		if len(opts.AllowedRuntimes) > 0 {
			applyRuntimePolicy(s, res, opts.AllowedRuntimes)
		}
		return res, nil
	}
	out := make([]Ranked, 0, len(cands))
	for _, c := range cands {
		r := Ranked{Descriptor: c.Descriptor, Position: c.Position, Compatible: true}
		var err error
		if r.Result, err = eval(c.Spec); err != nil {
			return nil, fmt.Errorf("manifest %s: %w", c.Descriptor.Digest, err)
		}
		if r.IndexResult, err = eval(c.IndexSpec); err != nil {
			return nil, fmt.Errorf("index spec: %w", err)
		}
		for _, res := range []*Result{r.Result, r.IndexResult} {
			if res == nil {
				continue
			}
			r.HasSpec = true
			if !res.Compatible {
				r.Compatible = false
				if r.Reason == "" {
					r.Reason = oneLine(res)
				}
			}
		}
		switch {
		case r.Result != nil:
			r.Score = r.Result.Score
		case r.IndexResult != nil:
			r.Score = r.IndexResult.Score
		}
		if !r.Compatible {
			r.Score = 0
		} else if len(opts.AllowedRuntimes) > 0 {
			r.Runtime = bestRuntime(c, r)
		}
		out = append(out, r)
	}
	class := func(r Ranked) int {
		switch {
		case r.Compatible && r.HasSpec:
			return 0
		case r.Compatible:
			return 1
		}
		return 2
	}
	sort.SliceStable(out, func(i, j int) bool {
		ci, cj := class(out[i]), class(out[j])
		if ci != cj {
			return ci < cj
		}
		if ci == 0 && out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].Position < out[j].Position
	})
	return out, nil
}

// oneLine summarises why res is incompatible: the first failure of the closest set.
func oneLine(res *Result) string {
	set, rule, f, ok := res.FirstFailure()
	if !ok {
		return "no compatibility set matches"
	}
	s := "rule " + fmt.Sprintf("%q", rule)
	if set != "" {
		s = "set " + fmt.Sprintf("%q", set) + ", " + s
	}
	if f != nil {
		s += ": " + f.String()
	}
	return s
}

// runtimesOf lists the runtime handlers the rules of a compatibility set name (elements of
// expressions on RuntimeFeature in matchFeatures), in order of appearance.
func runtimesOf(c *spec.Compatibility) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range c.Rules {
		for _, t := range r.MatchFeatures {
			if t.Feature != RuntimeFeature && t.Feature != spec.LocalFeatureSet {
				continue
			}
			names := make([]string, 0, len(t.MatchExpressions))
			for k, e := range t.MatchExpressions {
				if t.Feature == spec.LocalFeatureSet {
					// compiled specs test compatkit.runtime.<name> on local.feature
					var ok bool
					if k, ok = strings.CutPrefix(k, RuntimeFeature+"."); !ok || strings.Contains(k, ".") {
						continue
					}
				}
				if e != nil && e.Op != spec.OpDoesNotExist {
					names = append(names, k)
				}
			}
			sort.Strings(names)
			for _, n := range names {
				if !seen[n] {
					seen[n] = true
					out = append(out, n)
				}
			}
		}
	}
	return out
}

// applyRuntimePolicy marks as not matching every set that needs a runtime outside allowed, and
// recomputes the result's verdict and score.
func applyRuntimePolicy(s *spec.Spec, res *Result, allowed []string) {
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	res.Compatible, res.Score, res.Best = false, 0, -1
	for i := range res.Sets {
		set := &res.Sets[i]
		if set.Matched {
			for _, rt := range runtimesOf(&s.Compatibilities[i]) {
				if !ok[rt] {
					set.Matched = false
					set.Rules = append(set.Rules, RuleResult{Name: "runtime allowed by the administrator", Failed: []Failure{{
						Feature: RuntimeFeature, Element: rt, MatchAny: -1,
						Reason: fmt.Sprintf("runtime %q is not in --allowed-runtimes %v", rt, allowed)}}})
					break
				}
			}
		}
		if set.Matched {
			res.Compatible = true
			if res.Best < 0 || set.Weight > res.Score {
				res.Score, res.Best = set.Weight, i
			}
		}
	}
}

// bestRuntime is the first runtime the best matching set of the manifest's spec (or else the
// index's) needs; all of them are allowed by then.
func bestRuntime(c Candidate, r Ranked) string {
	for _, p := range []struct {
		s   *spec.Spec
		res *Result
	}{{c.Spec, r.Result}, {c.IndexSpec, r.IndexResult}} {
		if p.res == nil || p.res.Best < 0 {
			continue
		}
		if rts := runtimesOf(&p.s.Compatibilities[p.res.Best]); len(rts) > 0 {
			return rts[0]
		}
	}
	return ""
}
