package author

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"cuelang.org/go/cue"

	"github.com/compatkit/compatkit/pkg/spec"
)

// whenRulePrefix starts the name of the rule a `when` case's condition compiles to (cue/sugar.cue:
// the case named N gives each of its sets the rule "when N" whose matchFeatures are the
// condition); decide.WhenRulePrefix reads it back from results.
const whenRulePrefix = "when "

// whenRecipe says how to make a fallback exclude a condition, with what the sugar and NFD support.
const whenRecipe = "to refuse such hosts, add to otherwise's required a rule that negates the condition on the same element (In -> NotIn, Exists -> DoesNotExist, Ge M -> Lt M); NFD cannot negate an instance feature such as pci.device (another device matches NotIn), so condition on an attribute instead: for NVIDIA GPUs, `condition: [nvidia.driverPresent]` and `otherwise: required: [{name: \"no NVIDIA driver\", matchFeatures: [nvidia.noDriver]}]` (domains/gpu/nvidia/README.md); if the fallback is intended, `check` notes when a host takes it"

// WhenWarnings returns what vet warns about the `when`/`otherwise` sugar of r's specs (Item is
// the file:line:col of the when case when known):
//
//   - the trap: a set without a condition (otherwise) that does not exclude a case's condition
//     and lacks the case's own requirements: a host that meets the condition but fails the case
//     ("driver >= 550 when an NVIDIA GPU is present") is still compatible through it, silently;
//   - a set without a condition that outranks a case on hosts meeting its condition: its weight
//     is higher than every set of the case that such a host would also match, so those hosts
//     score through it, not through the case.
//
// "Excludes" is decided on the terms: some term of the fallback contradicts a term of the
// condition on the same element of an attribute or flag feature (In vs NotIn or a disjoint In,
// Exists vs DoesNotExist, disjoint integer ranges). Instance features (pci.device, usb.device, ...)
// never exclude each other: another instance may match.
func (r *Result) WhenWarnings() []Warning {
	if r == nil {
		return nil
	}
	var out []Warning
	out = append(out, r.whenWarnings("", r.Default)...)
	platforms := make([]string, 0, len(r.Platforms))
	for p := range r.Platforms {
		platforms = append(platforms, p)
	}
	sort.Strings(platforms)
	for _, p := range platforms {
		out = append(out, r.whenWarnings(p, r.Platforms[p])...)
	}
	return out
}

// whenCase is one when case of a spec: its sets and its condition.
type whenCase struct {
	name   string
	rule   int   // index of the "when" rule in the first set
	sets   []int // indexes of its sets
	cond   []spec.FeatureMatcherTerm
	common map[string]string // rules (canonical JSON -> name) every set of the case has, but the condition
}

func (r *Result) whenWarnings(platform string, s *spec.Spec) []Warning {
	if s == nil {
		return nil
	}
	keys := make([][]string, len(s.Compatibilities)) // canonical JSON of each set's rules
	var cases []*whenCase
	byName := map[string]*whenCase{}
	var plain []int // sets without a condition
	for i := range s.Compatibilities {
		c := &s.Compatibilities[i]
		for j := range c.Rules {
			keys[i] = append(keys[i], ruleKey(&c.Rules[j]))
		}
		j := whenRule(c)
		if j < 0 {
			plain = append(plain, i)
			continue
		}
		name := strings.TrimPrefix(c.Rules[j].Name, whenRulePrefix)
		wc := byName[name]
		if wc == nil {
			wc = &whenCase{name: name, rule: j, cond: c.Rules[j].MatchFeatures, common: map[string]string{}}
			for k := range c.Rules {
				if k != j && !impliedBy(&c.Rules[k], c.Rules[j].MatchFeatures) {
					wc.common[keys[i][k]] = c.Rules[k].Name
				}
			}
			byName[name] = wc
			cases = append(cases, wc)
		} else {
			have := map[string]bool{}
			for _, k := range keys[i] {
				have[k] = true
			}
			for k := range wc.common {
				if !have[k] {
					delete(wc.common, k)
				}
			}
		}
		wc.sets = append(wc.sets, i)
	}
	if len(cases) == 0 || len(plain) == 0 {
		return nil
	}
	var out []Warning
	for _, wc := range cases {
		item := r.whenPos(platform, wc.name)
		if item == "" {
			item = r.RulePos(platform, wc.sets[0], wc.rule)
		}
		if item == "" {
			item = strings.TrimSpace(fmt.Sprintf("%s compatibilities[%d].rules[%d]", platform, wc.sets[0], wc.rule))
		}
		trap, outrank, outranked := -1, -1, -1
		var missing []string
		for _, u := range plain {
			fb := &s.Compatibilities[u]
			if excludes(fb, wc.cond) {
				continue
			}
			have := map[string]bool{}
			for _, k := range keys[u] {
				have[k] = true
			}
			// The trap: the fallback lacks a requirement of the case.
			var lacks []string
			for k, name := range wc.common {
				if !have[k] {
					lacks = append(lacks, strconv.Quote(name))
				}
			}
			if len(lacks) > 0 && (trap < 0 || fb.Weight > s.Compatibilities[trap].Weight) {
				trap = u
				sort.Strings(lacks)
				missing = lacks
			}
			// Outranking: no set of the case at least as heavy whose own extra rules (beyond the
			// case's requirements) the fallback has, so a host matching both scores through it.
			covered, below := false, -1
			for _, i := range wc.sets {
				c := &s.Compatibilities[i]
				if c.Weight < fb.Weight {
					if below < 0 || c.Weight > s.Compatibilities[below].Weight {
						below = i
					}
					continue
				}
				has := true
				for k, key := range keys[i] {
					if k == whenRule(c) || impliedBy(&c.Rules[k], wc.cond) {
						continue
					}
					if _, req := wc.common[key]; !req && !have[key] {
						has = false
						break
					}
				}
				if has {
					covered = true
					break
				}
			}
			if !covered && below >= 0 && (outrank < 0 || fb.Weight > s.Compatibilities[outrank].Weight) {
				outrank, outranked = u, below
			}
		}
		where := ""
		if platform != "" {
			where = " of platform " + platform
		}
		if trap >= 0 {
			fb := &s.Compatibilities[trap]
			out = append(out, Warning{Item: item, Msg: fmt.Sprintf(
				"when case %q%s: a host that meets its condition but fails the case (%s) is still compatible, through the fallback %s (weight %d), which does not exclude the condition: %s",
				wc.name, where, strings.Join(missing, ", "), specSetLabel(trap, fb.Tag), fb.Weight, whenRecipe)})
		}
		if outrank >= 0 {
			fb, c := &s.Compatibilities[outrank], &s.Compatibilities[outranked]
			out = append(out, Warning{Item: item, Msg: fmt.Sprintf(
				"when case %q%s: the %s (weight %d), which has no condition and does not exclude this one, outranks the case's %s (weight %d) on hosts that meet the condition: they score %d through it, not %d; give the case a weight above %d, or that set a lower one (otherwise is not a negation of the conditions)",
				wc.name, where, specSetLabel(outrank, fb.Tag), fb.Weight, specSetLabel(outranked, c.Tag), c.Weight, fb.Weight, c.Weight, fb.Weight)})
		}
	}
	return out
}

// specSetLabel names set i as check prints it: set "TAG", or set N (1-based).
func specSetLabel(i int, tag string) string {
	if tag != "" {
		return "set " + strconv.Quote(tag)
	}
	return fmt.Sprintf("set %d", i+1)
}

// whenRule returns the index of set c's "when NAME" rule (the sugar's condition), or -1.
func whenRule(c *spec.Compatibility) int {
	for j := range c.Rules {
		r := &c.Rules[j]
		if strings.HasPrefix(r.Name, whenRulePrefix) && len(r.Name) > len(whenRulePrefix) && len(r.MatchFeatures) > 0 && len(r.MatchAny) == 0 {
			return j
		}
	}
	return -1
}

// impliedBy reports whether rule r holds wherever cond does: each of its terms is one of cond's
// (a requirement that repeats the condition, as nvidia.#Config's "NVIDIA GPU" repeats gpuPresent).
func impliedBy(r *spec.Rule, cond []spec.FeatureMatcherTerm) bool {
	if len(r.MatchAny) > 0 || len(r.MatchFeatures) == 0 || len(r.Vars) > 0 || r.VarsTemplate != "" {
		return false
	}
	for i := range r.MatchFeatures {
		t, _ := json.Marshal(&r.MatchFeatures[i])
		found := false
		for j := range cond {
			if c, _ := json.Marshal(&cond[j]); string(c) == string(t) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// ruleKey is a rule's canonical JSON: rules compare equal when written (or generated) alike.
func ruleKey(r *spec.Rule) string {
	b, _ := json.Marshal(r)
	return string(b)
}

// whenPos returns the file:line:col of the when case named name in platform's spec ("" = the
// top level), or "".
func (r *Result) whenPos(platform, name string) string {
	if r.pm == nil {
		return ""
	}
	var base []cue.Selector
	if platform != "" {
		base = append(base, cue.Str("platforms"), cue.Str(platform))
	}
	list := r.val.LookupPath(cue.MakePath(append(base, cue.Str("when"))...))
	it, err := list.List()
	if err != nil {
		return ""
	}
	for k := 0; it.Next(); k++ {
		if n, err := it.Value().LookupPath(cue.ParsePath("name")).String(); err != nil || n != name {
			continue
		}
		path := cue.MakePath(append(append([]cue.Selector{}, base...), cue.Str("when"), cue.Index(k))...)
		for _, v := range append([]cue.Value{r.val}, r.pm.values...) {
			if p := v.LookupPath(path).Pos(); p.IsValid() && r.pm.user[p.Filename()] {
				return fmt.Sprintf("%s:%d:%d", r.pm.rel(p.Filename()), p.Line(), p.Column())
			}
		}
		return ""
	}
	return ""
}

// instanceFeatures are NFD's feature sets made of instances (features.cue): a term matches when
// one instance matches, so two terms on one never contradict each other.
var instanceFeatures = map[string]bool{
	"pci.device": true, "usb.device": true, "memory.nv": true, "network.device": true,
	"network.virtual": true, "storage.block": true,
}

// excludes reports whether set fb can never match a host that meets cond (all of its terms): a
// rule of fb requires a term that contradicts one of cond's.
func excludes(fb *spec.Compatibility, cond []spec.FeatureMatcherTerm) bool {
	contradicts := func(terms []spec.FeatureMatcherTerm) bool {
		for i := range terms {
			for j := range cond {
				if termsDisjoint(&terms[i], &cond[j]) {
					return true
				}
			}
		}
		return false
	}
	for _, r := range fb.Rules {
		if contradicts(r.MatchFeatures) {
			return true
		}
		if len(r.MatchAny) == 0 {
			continue
		}
		all := true
		for _, a := range r.MatchAny {
			if !contradicts(a.MatchFeatures) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// termsDisjoint reports whether no host matches both terms: same attribute or flag feature, and
// an element whose two expressions no value (or absence) satisfies both.
func termsDisjoint(a, b *spec.FeatureMatcherTerm) bool {
	if !strings.EqualFold(a.Feature, b.Feature) || instanceFeatures[strings.ToLower(a.Feature)] {
		return false
	}
	for el, ea := range a.MatchExpressions {
		if eb := b.MatchExpressions[el]; ea != nil && eb != nil && exprsDisjoint(ea, eb) {
			return true
		}
	}
	return false
}

// exprsDisjoint reports whether no element value (nor the element's absence) satisfies both
// expressions. Unknown combinations are not disjoint.
func exprsDisjoint(a, b *spec.MatchExpression) bool {
	absent := func(e *spec.MatchExpression) bool { return strings.EqualFold(string(e.Op), "DoesNotExist") }
	if absent(a) || absent(b) {
		// Every other operator needs the element (NotIn too: NFD fails it on a missing element).
		return absent(a) != absent(b)
	}
	sa, oka := valueSet(a)
	sb, okb := valueSet(b)
	switch {
	case oka && okb:
		for v := range sa {
			if sb[v] {
				return false
			}
		}
		return true
	case oka && strings.EqualFold(string(b.Op), "NotIn"):
		for v := range sa {
			if !slices.Contains(b.Value, v) {
				return false
			}
		}
		return true
	case okb && strings.EqualFold(string(a.Op), "NotIn"):
		return exprsDisjoint(b, a)
	}
	lo1, hi1, ok1 := intRange(a)
	lo2, hi2, ok2 := intRange(b)
	switch {
	case ok1 && ok2:
		return max(lo1, lo2) > min(hi1, hi2)
	case oka && ok2:
		return noneIn(sa, lo2, hi2)
	case okb && ok1:
		return noneIn(sb, lo1, hi1)
	}
	return false
}

// valueSet is the set of values an In, IsTrue or IsFalse expression accepts.
func valueSet(e *spec.MatchExpression) (map[string]bool, bool) {
	switch strings.ToLower(string(e.Op)) {
	case "in":
		s := map[string]bool{}
		for _, v := range e.Value {
			s[v] = true
		}
		return s, true
	case "istrue":
		return map[string]bool{"true": true}, true
	case "isfalse":
		return map[string]bool{"false": true}, true
	}
	return nil, false
}

// intRange is the integer interval [lo, hi] an integer comparison accepts (not type: version).
func intRange(e *spec.MatchExpression) (lo, hi int64, ok bool) {
	if e.Type != "" {
		return 0, 0, false
	}
	n := make([]int64, len(e.Value))
	for i, v := range e.Value {
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		n[i] = x
	}
	lo, hi = math.MinInt64, math.MaxInt64
	switch op := strings.ToLower(string(e.Op)); {
	case len(n) == 1 && op == "gt":
		lo = n[0] + 1
	case len(n) == 1 && op == "ge":
		lo = n[0]
	case len(n) == 1 && op == "lt":
		hi = n[0] - 1
	case len(n) == 1 && op == "le":
		hi = n[0]
	case len(n) == 2 && op == "gtlt":
		lo, hi = n[0]+1, n[1]-1
	case len(n) == 2 && op == "gele":
		lo, hi = n[0], n[1]
	default:
		return 0, 0, false
	}
	return lo, hi, true
}

// noneIn reports whether no value of s is an integer in [lo, hi] (a non-integer value is unknown:
// not excluded).
func noneIn(s map[string]bool, lo, hi int64) bool {
	for v := range s {
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil || (x >= lo && x <= hi) {
			return false
		}
	}
	return true
}
