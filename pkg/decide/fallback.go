package decide

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/compatkit/compatkit/pkg/match"
)

// WhenRulePrefix starts the name of the rule that a `when` case's condition compiles to
// (cue/sugar.cue): the case named N gives every one of its sets the rule "when N", whose terms are
// the condition. A set without such a rule has no condition (an `otherwise` fallback, or a spec
// written without the sugar).
const WhenRulePrefix = "when "

// FallbackNote says that the host meets the condition of a `when` case, that every set of the
// case failed on it, and that the host is compatible only through a set outside the case (the
// `otherwise` fallback, typically with a lower weight): "require driver >= 550 when an NVIDIA GPU
// is present, otherwise the CPU build" lets a GPU host with driver 535 through that way. The
// verdict does not change (NFD gives the same one); the note says what happened.
type FallbackNote struct {
	// Case is the name of the when case (its rule is "when " + Case).
	Case string `json:"case"`
	// Set is the index of the case's set that came closest (fewest failing rules; the one with
	// the lowest weight on ties: the case without its preferred alternatives); SetTag its tag.
	Set    int    `json:"set"`
	SetTag string `json:"setTag,omitempty"`
	// Failed lists the rules of that set that failed, each with its failing expressions.
	Failed []string `json:"failed"`
	// Fallback is the index of the set that made the host compatible (match.Result.Best),
	// FallbackTag its tag and Weight its weight (the spec's score).
	Fallback    int    `json:"fallback"`
	FallbackTag string `json:"fallbackTag,omitempty"`
	Weight      int    `json:"weight"`
}

// String says it on one line: set "gpu" (when: NVIDIA GPU present) applies to this host but failed
// (...); the host is compatible only through the fallback set "cpu" (weight 50).
func (n FallbackNote) String() string {
	return fmt.Sprintf("%s (when: %s) applies to this host but failed (%s); the host is compatible only through the fallback %s (weight %d)",
		setLabel(n.Set, n.SetTag), n.Case, strings.Join(n.Failed, "; "), setLabel(n.Fallback, n.FallbackTag), n.Weight)
}

// setLabel names set i as check prints it: set "TAG", or set N (1-based) without a tag.
func setLabel(i int, tag string) string {
	if tag != "" {
		return "set " + strconv.Quote(tag)
	}
	return fmt.Sprintf("set %d", i+1)
}

// WhenCase returns the name of the when case set s belongs to (its rule "when NAME"), and whether
// that condition held on the host; "" for a set without a condition.
func WhenCase(s *match.SetResult) (name string, met bool) {
	for _, rr := range s.Rules {
		if n, ok := strings.CutPrefix(rr.Name, WhenRulePrefix); ok && n != "" {
			return n, rr.Matched
		}
	}
	return "", false
}

// Fallbacks returns a note for every when case whose condition the host meets but none of whose
// sets matched, when res is compatible through a set of no such case: the host passes only
// through a fallback. nil when res is not compatible, or its best set is one of the cases that
// apply.
func Fallbacks(res *match.Result) []FallbackNote {
	if res == nil || !res.Compatible || res.Best < 0 || res.Best >= len(res.Sets) {
		return nil
	}
	best := &res.Sets[res.Best]
	bestCase, _ := WhenCase(best)
	type caseState struct {
		matched bool
		closest int // index of the closest failing set, -1 if none
		fails   int
	}
	var order []string
	cases := map[string]*caseState{}
	for i := range res.Sets {
		s := &res.Sets[i]
		name, met := WhenCase(s)
		if name == "" || !met || name == bestCase {
			continue
		}
		cs := cases[name]
		if cs == nil {
			cs = &caseState{closest: -1}
			cases[name] = cs
			order = append(order, name)
		}
		if s.Matched {
			cs.matched = true
			continue
		}
		n := 0
		for _, rr := range s.Rules {
			if !rr.Matched {
				n++
			}
		}
		// Fewest failures; on ties the later set (sets are sorted by weight, highest first, so
		// the case's own set, without preferred alternatives, comes last).
		if cs.closest < 0 || n <= cs.fails {
			cs.closest, cs.fails = i, n
		}
	}
	var out []FallbackNote
	for _, name := range order {
		cs := cases[name]
		if cs.matched || cs.closest < 0 {
			continue
		}
		s := &res.Sets[cs.closest]
		n := FallbackNote{Case: name, Set: cs.closest, SetTag: s.Tag, Failed: []string{},
			Fallback: res.Best, FallbackTag: best.Tag, Weight: best.Weight}
		for _, rr := range s.Rules {
			if rr.Matched {
				continue
			}
			what := strconv.Quote(rr.Name)
			if len(rr.Failed) > 0 {
				fs := make([]string, len(rr.Failed))
				for k, f := range rr.Failed {
					fs[k] = f.String()
				}
				what += ": " + strings.Join(fs, ", ")
			}
			n.Failed = append(n.Failed, what)
		}
		out = append(out, n)
	}
	return out
}

// Fallbacks returns the fallback notes of every spec evaluated for the candidate (Fallbacks of
// each AppliedSpec's Result, the manifest's spec first).
func (c *Candidate) Fallbacks() []FallbackNote {
	var out []FallbackNote
	for _, a := range c.Specs {
		out = append(out, Fallbacks(a.Result)...)
	}
	return out
}
