package author

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/compatkit/compatkit/pkg/spec"
)

// Inheritance: a derived image (FROM base) keeps what its base image requires and may only tighten
// it.
//
//   - Each base compatibility set is an alternative the base accepts, so the derived image must
//     satisfy one of its own sets and one of the base's: every derived set is combined with every
//     minimal base set (a base set whose rules include all of another's adds nothing and is
//     skipped, so a base whose sets only add preferences to a common core gives one combination).
//     Weights, tags and descriptions come from the derived sets. At most MaxInheritedSets sets.
//   - A combination holds the base set's rules plus the derived set's, unless the derived set
//     already has a rule of the same name. Such a rule must be at least as strict: for every
//     expression of the base rule's matchFeatures terms, the derived rule has an expression on the
//     same feature and element that implies it (same expression; In with a subset of the values,
//     or integers within the base's bound; Ge/Gt with a higher or equal integer bound; Le/Lt with
//     a lower or equal one; a GtLt/GeLe range inside the bound; any operator but DoesNotExist in
//     place of Exists). Otherwise it is a conflict naming both sides. matchAny parts must be equal.
//   - relax (in the derived document) names what the derived image no longer requires: a base
//     rule name ("kernel new enough") drops that rule; "feature.element" ("cpu.cpuid.AVX512F")
//     drops that expression from the base rules. Every relaxation yields a Warning and is
//     recorded in Inheritance.Relaxed (for the provenance layer). A relax entry that matches
//     nothing in the base is a *RelaxError.

// Warning is something the author should know but that does not stop compilation.
type Warning struct {
	// Item is what it is about (a relaxed rule name or feature.element).
	Item string `json:"item"`
	// Msg says what happened.
	Msg string `json:"message"`
}

// String prints "item: message".
func (w Warning) String() string { return w.Item + ": " + w.Msg }

// Inheritance records where a derived spec's inherited requirements come from, for the
// provenance layer.
type Inheritance struct {
	// BaseRef is the base image reference as given.
	BaseRef string `json:"baseRef"`
	// BaseDigest is the digest part of BaseRef ("sha256:..."), "" when BaseRef has none.
	BaseDigest string `json:"baseDigest,omitempty"`
	// Inherited lists the names of the base rules added to the derived spec.
	Inherited []string `json:"inherited,omitempty"`
	// Relaxed lists the relax entries applied.
	Relaxed []string `json:"relaxed,omitempty"`
}

// Conflict is a derived rule that weakens the base rule of the same name.
type Conflict struct {
	// Base names the base side: "<base ref> compatibilities[i].rules[j] (rule name)".
	Base string
	// Derived names the derived side: file:line:col when known, else its path in the spec.
	Derived string
	// Msg says what is weaker.
	Msg string
}

// InheritError lists every conflict.
type InheritError struct{ Conflicts []Conflict }

// Error prints one line per conflict, derived side first, with what to do.
func (e *InheritError) Error() string {
	lines := make([]string, len(e.Conflicts))
	for i, c := range e.Conflicts {
		lines[i] = fmt.Sprintf("%s: %s (base: %s); tighten it or add the rule's name to relax", c.Derived, c.Msg, c.Base)
	}
	return strings.Join(lines, "\n")
}

// Inherit returns derived with what base requires added to every set (see above). pos, when not
// nil, gives the file:line:col of the derived spec's rule j of set i (Result.RulePos).
func Inherit(base *spec.Spec, baseRef string, derived *spec.Spec, relax []string, pos func(set, rule int) string) (*spec.Spec, *Inheritance, []Warning, error) {
	if base == nil || derived == nil {
		return nil, nil, nil, fmt.Errorf("author: Inherit needs a base and a derived spec")
	}
	rec := &Inheritance{BaseRef: baseRef}
	if i := strings.LastIndex(baseRef, "@"); i >= 0 {
		rec.BaseDigest = baseRef[i+1:]
	}
	// Each base set is an alternative the base image accepts; the derived image must satisfy its
	// own set and one of the base's: every derived set is combined with every base set (its
	// rules, with where they come from).
	type baseRule struct {
		rule spec.Rule
		at   string
	}
	baseSets := make([][]baseRule, len(base.Compatibilities))
	for j, c := range base.Compatibilities {
		for r, rule := range c.Rules {
			baseSets[j] = append(baseSets[j], baseRule{rule: cloneRule(rule), at: fmt.Sprintf("%s compatibilities[%d].rules[%d] (%s)", baseRef, j, r, rule.Name)})
		}
	}
	if len(baseSets) == 0 {
		baseSets = [][]baseRule{nil}
	}
	// A base set whose rules include all of another's adds nothing once combined (a host matching
	// it matches the smaller one too, and weights come from the derived sets): keep the minimal
	// ones. A base whose sets only add preferences to a common core thus gives one combination.
	// origin[m] is the index in base.Compatibilities of minimal set m (for its tag).
	var minimal [][]baseRule
	var origin []int
	for j, set := range baseSets {
		redundant := false
		for k, other := range baseSets {
			if k != j && containsRules(set, other, func(b baseRule) spec.Rule { return b.rule }) && (len(other) < len(set) || k < j) {
				redundant = true
				break
			}
		}
		if !redundant {
			minimal = append(minimal, set)
			origin = append(origin, j)
		}
	}
	baseSets = minimal
	if n := len(derived.Compatibilities) * len(baseSets); n > MaxInheritedSets {
		return nil, nil, nil, fmt.Errorf("inheriting from %s gives %d compatibility sets (%d derived x %d base), more than %d: relax base rules or merge sets", baseRef, n, len(derived.Compatibilities), len(baseSets), MaxInheritedSets)
	}
	// Relaxations apply to every base set.
	var warnings []Warning
	for _, item := range relax {
		used := false
		for j, set := range baseSets {
			kept := set[:0]
			for _, br := range set {
				if br.rule.Name == item {
					used = true
					continue
				}
				for ti := range br.rule.MatchFeatures {
					t := &br.rule.MatchFeatures[ti]
					el, ok := strings.CutPrefix(item, t.Feature+".")
					if !ok && t.Feature == spec.LocalFeatureSet {
						// compatkit.X.E names the local.feature element of a compatkit feature.
						el, ok = item, true
					}
					if ok {
						if _, has := t.MatchExpressions[el]; has {
							delete(t.MatchExpressions, el)
							used = true
						}
					}
				}
				br.rule.MatchFeatures = slices.DeleteFunc(br.rule.MatchFeatures, func(t spec.FeatureMatcherTerm) bool {
					return len(t.MatchExpressions) == 0 && t.MatchName == nil
				})
				if len(br.rule.MatchFeatures) == 0 && len(br.rule.MatchAny) == 0 {
					continue
				}
				kept = append(kept, br)
			}
			baseSets[j] = kept
		}
		if !used {
			return nil, nil, nil, &RelaxError{Item: item, BaseRef: baseRef}
		}
		rec.Relaxed = append(rec.Relaxed, item)
		warnings = append(warnings, Warning{Item: item, Msg: "relaxed: no longer required although the base image requires it"})
	}
	out := &spec.Spec{Version: derived.Version}
	var conflicts []Conflict
	for i, c := range derived.Compatibilities {
		for j, required := range baseSets {
			nc := c
			if len(baseSets) > 1 && origin[j] < len(base.Compatibilities) && base.Compatibilities[origin[j]].Tag != "" {
				nc.Description = strings.TrimSpace(c.Description + " (with base set " + base.Compatibilities[origin[j]].Tag + ")")
			}
			var added []spec.Rule
			for _, br := range required {
				k := slices.IndexFunc(c.Rules, func(r spec.Rule) bool { return r.Name == br.rule.Name })
				if k < 0 {
					added = append(added, cloneRule(br.rule))
					if !slices.Contains(rec.Inherited, br.rule.Name) {
						rec.Inherited = append(rec.Inherited, br.rule.Name)
					}
					continue
				}
				if msg := weaker(br.rule, c.Rules[k]); msg != "" {
					where := fmt.Sprintf("compatibilities[%d].rules[%d] (%s)", i, k, c.Rules[k].Name)
					if pos != nil {
						if p := pos(i, k); p != "" {
							where = p + ": " + where
						}
					}
					if !slices.ContainsFunc(conflicts, func(o Conflict) bool { return o.Base == br.at && o.Derived == where }) {
						conflicts = append(conflicts, Conflict{Base: br.at, Derived: where, Msg: msg})
					}
				}
			}
			nc.Rules = append(added, c.Rules...)
			out.Compatibilities = append(out.Compatibilities, nc)
		}
	}
	if len(conflicts) > 0 {
		return nil, nil, warnings, &InheritError{Conflicts: conflicts}
	}
	if err := out.Validate(); err != nil {
		return nil, nil, warnings, err
	}
	return out, rec, warnings, nil
}

// MaxInheritedSets bounds the sets Inherit produces (derived sets x base sets).
const MaxInheritedSets = 64

// RelaxError is a relax entry that names nothing the base requires.
type RelaxError struct {
	// Item is the relax entry; BaseRef the base image.
	Item, BaseRef string
}

// Error says what the entry should name.
func (e *RelaxError) Error() string {
	return fmt.Sprintf("relax %q matches no rule name or feature.element of what %s requires: name a base rule (e.g. \"kernel\") or feature.element (e.g. \"cpu.cpuid.AVX512F\"), or remove it", e.Item, e.BaseRef)
}

func cloneRule(r spec.Rule) spec.Rule {
	b, _ := json.Marshal(r)
	var c spec.Rule
	_ = json.Unmarshal(b, &c)
	return c
}

// weaker says how derived is weaker than base (same name), or "".
func weaker(base, derived spec.Rule) string {
	if !reflect.DeepEqual(base.MatchAny, derived.MatchAny) {
		return fmt.Sprintf("rule %q changes the base rule's matchAny", base.Name)
	}
	for _, bt := range base.MatchFeatures {
		if bt.MatchName != nil && !slices.ContainsFunc(derived.MatchFeatures, func(dt spec.FeatureMatcherTerm) bool {
			return dt.Feature == bt.Feature && reflect.DeepEqual(dt.MatchName, bt.MatchName)
		}) {
			return fmt.Sprintf("rule %q drops the base's matchName on %s", base.Name, bt.Feature)
		}
		for el, be := range bt.MatchExpressions {
			ok := slices.ContainsFunc(derived.MatchFeatures, func(dt spec.FeatureMatcherTerm) bool {
				de, has := dt.MatchExpressions[el]
				return dt.Feature == bt.Feature && has && implies(de, be)
			})
			if !ok {
				return fmt.Sprintf("rule %q: %s %s is weaker than or missing the base's %s", base.Name, bt.Feature, el, be)
			}
		}
	}
	return ""
}

// implies reports whether d is at least as strict as b.
func implies(d, b *spec.MatchExpression) bool {
	if reflect.DeepEqual(d, b) {
		return true
	}
	if d.Type != b.Type {
		return false
	}
	num := func(e *spec.MatchExpression) (int, bool) {
		if len(e.Value) != 1 || e.Type != "" {
			return 0, false
		}
		n, err := strconv.Atoi(e.Value[0])
		return n, err == nil
	}
	// A derived In on integers implies a base bound when every value satisfies it.
	if d.Op == "In" && d.Type == "" && (b.Op == "Gt" || b.Op == "Ge" || b.Op == "Lt" || b.Op == "Le") {
		for _, v := range d.Value {
			if !implies(&spec.MatchExpression{Op: "Ge", Value: []string{v}}, b) && !implies(&spec.MatchExpression{Op: "Le", Value: []string{v}}, b) {
				return false
			}
		}
		return len(d.Value) > 0
	}
	// A derived range implies a base bound on the side the base bounds.
	if (d.Op == "GtLt" || d.Op == "GeLe") && len(d.Value) == 2 {
		lo, hi := map[bool]string{true: "Gt", false: "Ge"}[d.Op == "GtLt"], map[bool]string{true: "Lt", false: "Le"}[d.Op == "GtLt"]
		return implies(&spec.MatchExpression{Op: spec.Op(lo), Value: d.Value[:1], Type: d.Type}, b) ||
			implies(&spec.MatchExpression{Op: spec.Op(hi), Value: d.Value[1:], Type: d.Type}, b)
	}
	switch b.Op {
	case "Exists":
		return d.Op != "DoesNotExist"
	case "In":
		if d.Op != "In" {
			return false
		}
		for _, v := range d.Value {
			if !slices.Contains(b.Value, v) {
				return false
			}
		}
		return true
	case "Ge", "Gt":
		bn, ok1 := num(b)
		dn, ok2 := num(d)
		if !ok1 || !ok2 {
			return false
		}
		if b.Op == "Gt" {
			bn++ // x > n  <=>  x >= n+1 on integers
		}
		if d.Op == "Gt" {
			dn++
		} else if d.Op != "Ge" {
			return false
		}
		return dn >= bn
	case "Le", "Lt":
		bn, ok1 := num(b)
		dn, ok2 := num(d)
		if !ok1 || !ok2 {
			return false
		}
		if b.Op == "Lt" {
			bn--
		}
		if d.Op == "Lt" {
			dn--
		} else if d.Op != "Le" {
			return false
		}
		return dn <= bn
	}
	return false
}

// containsRules reports whether every rule of sub is (deeply equal to) a rule of set.
func containsRules[T any](set, sub []T, rule func(T) spec.Rule) bool {
	for _, r := range sub {
		if !slices.ContainsFunc(set, func(o T) bool { return reflect.DeepEqual(rule(o), rule(r)) }) {
			return false
		}
	}
	return true
}
