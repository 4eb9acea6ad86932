package match

import (
	"fmt"
	"sort"
	"strings"

	"github.com/compatkit/compatkit/pkg/spec"
)

// RuntimeFeature is the feature set naming container runtimes (element = runtime handler name,
// e.g. runc, crun, nvidia); a compatibility set that tests it names the runtimes it needs.
const RuntimeFeature = "compatkit.runtime"

// Why summarises on one line why res is incompatible: the first failure of the closest set
// (FirstFailure), as `set "x86-64-v3", rule "x86-64-v3 instruction set": cpu.cpuid: AVX2 Exists
// (not present on the host)`; "" when res is compatible.
func (res *Result) Why() string {
	if res.Compatible {
		return ""
	}
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

// RestrictRuntimes returns a copy of res, the evaluation of s, in which every matching set that
// needs a runtime outside allowed (runtime handler names, e.g. runc, nvidia) no longer matches,
// with a failed rule that says so, and the verdict, score and best set recomputed. res is not
// modified (results may be shared). With an empty allowed list, res is returned as it is: a runtime
// is never taken from the spec alone.
func RestrictRuntimes(s *spec.Spec, res *Result, allowed []string) *Result {
	if res == nil || len(allowed) == 0 || s == nil {
		return res
	}
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	out := &Result{Best: -1, Sets: append([]SetResult(nil), res.Sets...)}
	for i := range out.Sets {
		set := &out.Sets[i]
		if set.Matched && i < len(s.Compatibilities) {
			for _, rt := range runtimesOf(&s.Compatibilities[i]) {
				if !ok[rt] {
					set.Matched = false
					set.Rules = append(append([]RuleResult(nil), set.Rules...), RuleResult{Name: "runtime allowed by the administrator", Failed: []Failure{{
						Feature: RuntimeFeature, Element: rt, MatchAny: -1,
						Reason: fmt.Sprintf("runtime %q is not in the allowed runtimes %v", rt, allowed)}}})
					break
				}
			}
		}
		if set.Matched {
			out.Compatible = true
			if out.Best < 0 || set.Weight > out.Score {
				out.Score, out.Best = set.Weight, i
			}
		}
	}
	return out
}

// Runtime returns the first runtime handler that the best matching set of res (the evaluation of
// s) needs, "" when it needs none or nothing matches.
func Runtime(s *spec.Spec, res *Result) string {
	if s == nil || res == nil || res.Best < 0 || res.Best >= len(s.Compatibilities) {
		return ""
	}
	if rts := runtimesOf(&s.Compatibilities[res.Best]); len(rts) > 0 {
		return rts[0]
	}
	return ""
}
