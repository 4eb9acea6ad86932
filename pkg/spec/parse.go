package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"sort"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"
)

// Parse decodes a spec read from a registry, a layout or a file, from YAML or JSON: unknown fields,
// a wrong version, an unknown operator, a wrong number of values, a weight outside 0-100 or an
// operand the operator cannot use are errors that name source and the JSON path (*FieldError,
// wrapping ErrInvalid). Documents over MaxSpecBytes are refused with ErrTooLarge before decoding;
// a pre-v1alpha1 document (a labels map and no version) with ErrUnsupportedFormat. What NFD's
// validator evaluates is accepted as NFD evaluates it (ValidateRead): a rule without a name, or
// without any matchFeatures or matchAny term (it matches every host).
func Parse(data []byte, source string) (*Spec, error) {
	if len(data) > MaxSpecBytes {
		return nil, fmt.Errorf("%s: %w: %d bytes, the limit is %d", source, ErrTooLarge, len(data), MaxSpecBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%s: %w: empty document", source, ErrInvalid)
	}
	if err := noAliases(data); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	var s Spec
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		if old := preV1Alpha1(data); old != "" {
			return nil, fmt.Errorf("%s: %w: %s; compatkit and NFD read only image-compatibility %s specs (version: %s, compatibilities: [...]): attach one in that format", source, ErrUnsupportedFormat, old, Version, Version)
		}
		return nil, fmt.Errorf("%s: %w: %v", source, ErrInvalid, err)
	}
	if err := s.ValidateRead(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fe.Source = source
			return nil, fe
		}
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return &s, nil
}

// noAliases refuses YAML anchors and aliases: a spec needs none (NFD and compatkit write none),
// and a few kilobytes of nested aliases expand to gigabytes when decoded ("billion laughs"). The
// document is parsed into nodes, which keeps aliases as references, before it is decoded.
func noAliases(data []byte) error {
	if !bytes.ContainsAny(data, "&*") {
		return nil
	}
	var root yamlv3.Node
	if err := yamlv3.Unmarshal(data, &root); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var walk func(n *yamlv3.Node, depth int) error
	walk = func(n *yamlv3.Node, depth int) error {
		if depth > MaxDepth {
			return fmt.Errorf("%w: nested more than %d levels deep", ErrTooLarge, MaxDepth)
		}
		if n.Kind == yamlv3.AliasNode || n.Anchor != "" {
			return fmt.Errorf("%w: YAML anchors and aliases are not allowed in a spec (line %d: %q): write the values out", ErrInvalid, n.Line, "&"+n.Anchor)
		}
		for _, c := range n.Content {
			if err := walk(c, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(&root, 0)
}

// preV1Alpha1 describes data when it is an image-compatibility document older than v1alpha1 (a
// top-level labels map and no version), and returns "" otherwise.
func preV1Alpha1(data []byte) string {
	var probe map[string]any
	if yaml.Unmarshal(data, &probe) != nil {
		return ""
	}
	_, hasVersion := probe["version"]
	if _, hasLabels := probe["labels"]; hasLabels && !hasVersion {
		return "a pre-v1alpha1 image-compatibility document (a labels map, no version)"
	}
	return ""
}

// Validate checks a spec to be written (attached, exported): everything ValidateRead checks, and
// that every rule has a name and at least one matchFeatures or matchAny term. It returns the first
// problem as a *FieldError (or ErrTooLarge).
func (s *Spec) Validate() error {
	return s.validate(true)
}

// ValidateRead checks a spec that was read, as NFD's validator would evaluate it: version, limits,
// weights, operators, their arity and value types. A rule without a name or without terms is
// accepted (NFD evaluates a rule without terms as matching).
func (s *Spec) ValidateRead() error {
	return s.validate(false)
}

// regexpBudget checks the regexps of s (InRegexp values and matchName's) against MaxRegexps,
// MaxRegexpBytes and MaxRegexpLen before any is compiled.
func (s *Spec) regexpBudget() error {
	n, size := 0, 0
	check := func(e *MatchExpression, p string) error {
		if e == nil || e.Op != OpInRegexp {
			return nil
		}
		for _, v := range e.Value {
			n++
			size += len(v)
			if len(v) > MaxRegexpLen {
				return fmt.Errorf("%w: %s: a regexp of %d bytes, the limit is %d", ErrTooLarge, p, len(v), MaxRegexpLen)
			}
		}
		if n > MaxRegexps || size > MaxRegexpBytes {
			return fmt.Errorf("%w: %d regexps of %d bytes in all, the limits are %d regexps and %d bytes", ErrTooLarge, n, size, MaxRegexps, MaxRegexpBytes)
		}
		return nil
	}
	terms := func(ts []FeatureMatcherTerm, p string) error {
		for i, t := range ts {
			tp := fmt.Sprintf("%s[%d]", p, i)
			if err := check(t.MatchName, tp+".matchName"); err != nil {
				return err
			}
			for k, e := range t.MatchExpressions {
				if err := check(e, tp+".matchExpressions."+k); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for i, c := range s.Compatibilities {
		for j, r := range c.Rules {
			p := fmt.Sprintf("compatibilities[%d].rules[%d]", i, j)
			if err := terms(r.MatchFeatures, p+".matchFeatures"); err != nil {
				return err
			}
			for k, a := range r.MatchAny {
				if err := terms(a.MatchFeatures, fmt.Sprintf("%s.matchAny[%d].matchFeatures", p, k)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (s *Spec) validate(strict bool) error {
	if s.Version != Version {
		return &FieldError{Path: "version", Msg: fmt.Sprintf("is %q, want %q", s.Version, Version)}
	}
	if len(s.Compatibilities) == 0 {
		return &FieldError{Path: "compatibilities", Msg: "must list at least one compatibility set"}
	}
	if len(s.Compatibilities) > MaxCompatibilities {
		return fmt.Errorf("%w: %d compatibility sets, the limit is %d", ErrTooLarge, len(s.Compatibilities), MaxCompatibilities)
	}
	if err := s.regexpBudget(); err != nil {
		return err
	}
	for i, c := range s.Compatibilities {
		p := fmt.Sprintf("compatibilities[%d]", i)
		if c.Weight < 0 || c.Weight > 100 {
			return &FieldError{Path: p + ".weight", Msg: fmt.Sprintf("%d is outside 0-100", c.Weight)}
		}
		if len(c.Rules) > MaxRules {
			return fmt.Errorf("%w: %s has %d rules, the limit is %d", ErrTooLarge, p, len(c.Rules), MaxRules)
		}
		for j, r := range c.Rules {
			if err := r.validate(fmt.Sprintf("%s.rules[%d]", p, j), strict); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Rule) validate(p string, strict bool) error {
	if strict && r.Name == "" {
		return &FieldError{Path: p + ".name", Msg: "is required"}
	}
	if strict && len(r.MatchFeatures) == 0 && len(r.MatchAny) == 0 {
		return &FieldError{Path: p, Msg: "needs matchFeatures or matchAny"}
	}
	n := len(r.MatchFeatures)
	for _, a := range r.MatchAny {
		n += len(a.MatchFeatures)
	}
	if n > MaxTerms {
		return fmt.Errorf("%w: %s has %d feature terms, the limit is %d", ErrTooLarge, p, n, MaxTerms)
	}
	if err := validateTerms(p+".matchFeatures", r.MatchFeatures); err != nil {
		return err
	}
	for i, a := range r.MatchAny {
		ap := fmt.Sprintf("%s.matchAny[%d].matchFeatures", p, i)
		if len(a.MatchFeatures) == 0 {
			return &FieldError{Path: ap, Msg: "must list at least one term"}
		}
		if err := validateTerms(ap, a.MatchFeatures); err != nil {
			return err
		}
	}
	return nil
}

func validateTerms(p string, terms []FeatureMatcherTerm) error {
	for i, t := range terms {
		tp := fmt.Sprintf("%s[%d]", p, i)
		if dom, name, ok := strings.Cut(t.Feature, "."); !ok || dom == "" || name == "" {
			return &FieldError{Path: tp + ".feature", Msg: fmt.Sprintf("%q is not <domain>.<feature> (e.g. cpu.cpuid)", t.Feature)}
		}
		if t.MatchExpressions == nil && t.MatchName == nil {
			return &FieldError{Path: tp, Msg: "needs matchExpressions or matchName"}
		}
		names := make([]string, 0, len(t.MatchExpressions))
		for k := range t.MatchExpressions {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if err := t.MatchExpressions[k].validate(tp + ".matchExpressions." + k); err != nil {
				return err
			}
		}
		if t.MatchName != nil {
			if err := t.MatchName.validate(tp + ".matchName"); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *MatchExpression) validate(p string) error {
	if e == nil {
		return &FieldError{Path: p, Msg: "is null; give an expression such as {op: Exists}"}
	}
	min, max, ok := e.Op.Arity()
	if !ok {
		return &FieldError{Path: p + ".op", Msg: fmt.Sprintf("unknown operator %q; one of %v", e.Op, Ops)}
	}
	n := len(e.Value)
	switch {
	case n > MaxValues:
		return fmt.Errorf("%w: %s has %d values, the limit is %d", ErrTooLarge, p, n, MaxValues)
	case max == 0 && n != 0:
		return &FieldError{Path: p + ".value", Msg: fmt.Sprintf("%s takes no value, got %d", e.Op, n)}
	case max > 0 && (n < min || n > max):
		return &FieldError{Path: p + ".value", Msg: fmt.Sprintf("%s takes exactly %d value(s), got %d", e.Op, max, n)}
	case n < min:
		return &FieldError{Path: p + ".value", Msg: fmt.Sprintf("%s takes at least %d value(s), got %d", e.Op, min, n)}
	}
	switch e.Type {
	case "":
	case "version":
		if !e.Op.AllowsVersion() {
			return &FieldError{Path: p + ".type", Msg: fmt.Sprintf("type version is only allowed with Gt, Ge, Lt, Le, GtLt and GeLe, not %s", e.Op)}
		}
	default:
		return &FieldError{Path: p + ".type", Msg: fmt.Sprintf("unknown value type %q; the only type is \"version\"", e.Type)}
	}
	return e.validateValues(p)
}

// regexpProblem says what regexp.Compile found wrong, with the offending part of the pattern
// quoted: Go's error (*syntax.Error) prints it raw between backquotes, and a pattern from a
// registry may hold newlines that would forge output lines.
func regexpProblem(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at %q", se.Code, se.Expr)
	}
	return strconv.Quote(err.Error())
}

// validateValues checks operands the way NFD's evaluator would reject them at run time
// (pkg/apis/nfd/nodefeaturerule/expression.go): regexps compile, comparison operands are integers
// (or versions with type: version), and a GtLt/GeLe integer range is not empty.
func (e *MatchExpression) validateValues(p string) error {
	switch {
	case e.Op == OpInRegexp:
		for i, v := range e.Value {
			if _, err := regexp.Compile(v); err != nil {
				return &FieldError{Path: fmt.Sprintf("%s.value[%d]", p, i), Msg: fmt.Sprintf("invalid regexp %q: %s", v, regexpProblem(err))}
			}
		}
	case e.Op.AllowsVersion() && e.Type == "version":
		for i, v := range e.Value {
			if _, err := semver.NewVersion(v); err != nil {
				return &FieldError{Path: fmt.Sprintf("%s.value[%d]", p, i), Msg: fmt.Sprintf("%q is not a version (want e.g. 5.15 or 5.15.0)", v)}
			}
		}
	case e.Op.AllowsVersion():
		n := make([]int, len(e.Value))
		for i, v := range e.Value {
			x, err := strconv.Atoi(v)
			if err != nil {
				return &FieldError{Path: fmt.Sprintf("%s.value[%d]", p, i), Msg: fmt.Sprintf("%s compares integers: %q is not one (add type: version to compare versions)", e.Op, v)}
			}
			n[i] = x
		}
		if len(n) == 2 && n[0] >= n[1] {
			return &FieldError{Path: p + ".value", Msg: fmt.Sprintf("%s needs value[0] < value[1], got %v", e.Op, e.Value)}
		}
	}
	return nil
}

// MarshalYAML returns the spec as YAML, the content of the artifact's layer. Output is
// deterministic (map keys sorted), so equal specs give equal digests.
func (s *Spec) MarshalYAML() ([]byte, error) {
	j, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(j)
}
