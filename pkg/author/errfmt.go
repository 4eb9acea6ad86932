package author

// Error formatting for users: what CUE reports is rewritten into one plain message per mistake,
// at the user's line. problems (errors.go) calls formatMsgs on the messages of one value;
// validate and loadInputs call refine on the whole list, which drops follow-on errors (a
// consequence of another problem at the same path or in the same field), moves positions inside
// compatkit's embedded module to the user's line and names types plainly.

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"
)

var (
	// conflicting values "3" and 1 (mismatched types string and int)
	reMismatch = regexp.MustCompile(`^conflicting values (.+) and (.+) \(mismatched types (\w+) and (\w+)\)$`)
	// Gt takes exactly one value, got 0 (the schema's arity checks)
	reArity = regexp.MustCompile(`^\w+ takes (exactly|at least|no) .*`)
	// field not found: 0 (indexing a list that an error left empty)
	reNotFound = regexp.MustCompile(`^field not found: \S+$`)
	// a position in a user's file that compatkit's domains generated a rule from
	reBadVersion = regexp.MustCompile(`: version "([^"]*)" is not "major" or "major.minor"`)
	reIndex      = regexp.MustCompile(`^\d+$`)
	// 5 is not allowed (did you mean 1?); want one of 1, 2, 3, 4
	reNumAlts = regexp.MustCompile(`^(-?\d+) is not allowed(?: \(did you mean [^)]*\))?; want one of ([-\d, ]+)$`)
	// conflicting values 20 and 10 (weight: 10 & 20, a YAML key given twice)
	reNumConflict = regexp.MustCompile(`^conflicting values (-?[\d.]+) and (-?[\d.]+)$`)
)

// docFieldNames are the field names of compat.#Document and its parts, for did-you-mean on a
// "field not allowed".
var docFieldNames = []string{
	"version", "compatibilities", "platforms", "relax", "required", "preferred", "when", "otherwise",
	"baseWeight", "tag", "description", "rules", "weight", "name", "vars", "varsTemplate",
	"matchFeatures", "matchAny", "feature", "matchExpressions", "matchName", "op", "value", "type",
	"condition",
}

// lastFieldName returns the last path element that is not a list index ("value" for
// "a.value.0"), unquoted.
func lastFieldName(path string) string {
	els := strings.Split(path, ".")
	for i := len(els) - 1; i >= 0; i-- {
		if !reIndex.MatchString(els[i]) {
			if u, err := strconv.Unquote(els[i]); err == nil {
				return u
			}
			return els[i]
		}
	}
	return "the value"
}

// describeGotValue names a value the user wrote: the string "3", the number 550, a list.
func describeGotValue(lit, typ string) string {
	switch typ {
	case "string":
		return "the string " + lit
	case "int", "float", "number":
		return "the number " + lit
	case "bool":
		return "the boolean " + lit
	case "list":
		return "a list"
	case "struct":
		return "a mapping"
	case "null":
		return "null"
	}
	return lit
}

// describeWantValue names what the schema wants, given its side of a conflict.
func describeWantValue(lit, typ string) string {
	switch {
	case strings.HasPrefix(lit, "=~"):
		return "a string matching " + strings.TrimPrefix(lit, "=~")
	case lit == "int":
		return "an integer"
	case lit == "string":
		return "a string"
	case lit == "bool":
		return "true or false"
	case typ == "list" || strings.HasPrefix(lit, "["):
		return "a list"
	case typ == "struct" || strings.HasPrefix(lit, "{"):
		return "a mapping"
	}
	return lit
}

// formatMsgs rewrites the messages CUE reports for the value at path: conflicts of mismatched
// types name the types plainly ("level must be an integer 1-4, got the string \"3\""), the
// conflicts of one value with every alternative of a disjunction become one message
// (mergeConflicts).
func formatMsgs(path string, msgs []string) []string {
	name := lastFieldName(path)
	var got, gotType string
	var alts []string
	var rest []string
	for _, msg := range msgs {
		sm := reMismatch.FindStringSubmatch(msg)
		if sm == nil {
			rest = append(rest, msg)
			continue
		}
		if got != "" && sm[1] != got {
			rest = append(rest, msg)
			continue
		}
		got, gotType = sm[1], sm[3]
		alts = append(alts, describeWantValue(sm[2], sm[4]))
	}
	if got == "" {
		return mergeConflicts(msgs)
	}
	var want string
	switch {
	case len(alts) == 1:
		want = alts[0]
	case consecutiveInts(alts) != "":
		want = "an integer " + consecutiveInts(alts)
	default:
		want = "one of " + strings.Join(alts, ", ")
	}
	msg := fmt.Sprintf("%s must be %s, got %s", name, want, describeGotValue(got, gotType))
	switch {
	case name == "value" && gotType != "string" && gotType != "list" && gotType != "struct":
		// An NFD operand: strings, also for numbers.
		msg = fmt.Sprintf("value holds strings, also for numbers: write %q", strings.Trim(got, `"`))
	case name == "value" && gotType == "string" && strings.HasPrefix(want, "a list"):
		msg = fmt.Sprintf("value must be a list, got %s; write value: [%s]", describeGotValue(got, gotType), got)
	case gotType == "string" && strings.HasPrefix(want, "an integer"):
		if u, err := strconv.Unquote(got); err == nil {
			if _, err := strconv.Atoi(u); err == nil {
				msg += fmt.Sprintf(" (write %s: %s, without quotes)", name, u)
			}
		}
	case (gotType == "int" || gotType == "float") && strings.HasPrefix(want, "a string"):
		msg += fmt.Sprintf(" (quote it: %s: %q)", name, got)
	}
	return append(mergeConflicts(rest), msg)
}

// consecutiveInts returns "1-4" when alts are the integers 1, 2, 3, 4 (at least three, consecutive).
func consecutiveInts(alts []string) string {
	if len(alts) < 3 {
		return ""
	}
	var ns []int
	for _, a := range alts {
		n, err := strconv.Atoi(a)
		if err != nil {
			return ""
		}
		ns = append(ns, n)
	}
	slices.Sort(ns)
	for i := 1; i < len(ns); i++ {
		if ns[i] != ns[i-1]+1 {
			return ""
		}
	}
	return fmt.Sprintf("%d-%d", ns[0], ns[len(ns)-1])
}

// underPath reports whether path is inside (or is) parent.
func underPath(path, parent string) bool {
	return path == parent || parent == "" || strings.HasPrefix(path, parent+".")
}

// refine turns the problems of one Compile into one message per mistake; files are the user's
// parsed inputs (to find the literal a domain's rule was generated from).
func (m *pathMapper) refine(ps []Problem, files []ast.Node) []Problem {
	if len(ps) == 0 {
		return ps
	}
	// Positions inside the embedded module: the user's field that holds the bad literal.
	for i, p := range ps {
		if !strings.HasPrefix(p.File, embeddedPrefix) {
			continue
		}
		if sm := reBadVersion.FindStringSubmatch(p.Msg); sm != nil {
			if label, pos := findSettingLiteral(files, sm[1]); pos.IsValid() {
				ps[i].File, ps[i].Line, ps[i].Column = m.rel(pos.Filename()), pos.Line(), pos.Column()
				ps[i].Path = label
				if _, after, ok := strings.Cut(p.Msg, ": version "); ok {
					ps[i].Msg = "version " + after
				}
			}
		}
	}
	var out []Problem
	for i, p := range ps {
		if isFollowOn(p, i, ps) {
			continue
		}
		out = append(out, plainProblem(p, m))
	}
	// Several wrongly typed operands of one value list are one mistake.
	out = slices.CompactFunc(out, func(a, b Problem) bool {
		return strings.HasPrefix(a.Msg, "value holds strings") && strings.HasPrefix(b.Msg, "value holds strings") &&
			parentOfPath(a.Path) == parentOfPath(b.Path)
	})
	for i, p := range out {
		if strings.HasPrefix(p.Msg, "value holds strings") {
			out[i].Msg = m.operandHint(p)
		}
	}
	sortProblems(out)
	return slices.CompactFunc(out, func(a, b Problem) bool { return a.String() == b.String() })
}

// parentOfPath drops the last element of a dotted path.
func parentOfPath(p string) string {
	if i := strings.LastIndex(p, "."); i >= 0 {
		return p[:i]
	}
	return ""
}

// isFollowOn reports whether ps[i] is a consequence of another problem of ps: an arity check or
// a missing list element of a value whose parts have errors of their own, a field not allowed
// inside a field already not allowed, a failed import or list call beside its cause.
func isFollowOn(p Problem, i int, ps []Problem) bool {
	others := func(f func(q Problem) bool) bool {
		for j, q := range ps {
			if j != i && f(q) {
				return true
			}
		}
		return false
	}
	switch {
	case reArity.MatchString(p.Msg) || strings.HasSuffix(p.Msg, "needs matchFeatures or matchAny") || strings.HasSuffix(p.Msg, "needs matchExpressions or matchName"):
		return others(func(q Problem) bool { return q.Path != p.Path && underPath(q.Path, p.Path) })
	case reNotFound.MatchString(p.Msg):
		// required: (x.#Config & {driver: 550}).rules: the rules are gone because of driver.
		return others(func(q Problem) bool {
			return q.File == p.File && (q.Line == p.Line && q.Column > p.Column || q.Path != p.Path && underPath(q.Path, p.Path))
		})
	case p.Msg == "field not allowed":
		return others(func(q Problem) bool {
			return q.Msg == "field not allowed" && q.Path != p.Path && underPath(p.Path, q.Path)
		})
	case p.Msg == "import failed":
		return others(func(q Problem) bool { return q.File == p.File && q.Line == p.Line })
	case strings.Contains(p.Msg, "error in call to list."):
		return others(func(q Problem) bool { return !strings.Contains(q.Msg, "error in call to list.") })
	}
	return false
}

// plainProblem rewrites one problem's message: a field not allowed gets a did-you-mean or, under
// platforms, says what a platform key is; bounds and list lengths are named plainly.
func plainProblem(p Problem, m *pathMapper) Problem {
	name := lastFieldName(p.Path)
	switch {
	case p.Msg == "field not allowed":
		if strings.HasPrefix(p.Path, "platforms.") && strings.Count(p.Path, ".") == 1 {
			p.Msg = fmt.Sprintf("field not allowed: %q is not a platform; the keys of platforms are \"os/arch\" or \"os/arch/variant\", e.g. \"linux/amd64\", \"linux/arm64/v8\"", name)
		} else if s := suggest(name, docFieldNames); s != "" && s != name {
			p.Msg = fmt.Sprintf("field not allowed (did you mean %s?)", s)
		}
	case reNumAlts.MatchString(p.Msg) && consecutiveInts(strings.Split(reNumAlts.FindStringSubmatch(p.Msg)[2], ", ")) != "":
		sm := reNumAlts.FindStringSubmatch(p.Msg)
		p.Msg = fmt.Sprintf("%s must be an integer %s, got %s", name, consecutiveInts(strings.Split(sm[2], ", ")), sm[1])
	case name == "version" && reConflict.MatchString(p.Msg):
		sm := reConflict.FindStringSubmatch(p.Msg)
		got := sm[1]
		if got == `"v1alpha1"` {
			got = sm[2]
		}
		p.Msg = fmt.Sprintf(`version must be "v1alpha1", got %s`, got)
	case reNumConflict.MatchString(p.Msg):
		sm := reNumConflict.FindStringSubmatch(p.Msg)
		p.Msg = fmt.Sprintf("%s is set to both %s and %s; give one value", name, sm[2], sm[1])
	case reOutOfBound.MatchString(p.Msg) && (name == "weight" || name == "baseWeight"):
		sm := reOutOfBound.FindStringSubmatch(p.Msg)
		p.Msg = fmt.Sprintf("%s must be 0-100, got %s", name, sm[1])
	case p.Msg == "field is required but not present" && name == "version":
		p.Msg = `field is required but not present: compatibilities needs version: "v1alpha1"`
		if pos := m.locate([]string{"compatibilities"}); pos.IsValid() {
			p.Line, p.Column = pos.Line(), pos.Column()
		}
	case strings.HasPrefix(p.Msg, "incompatible list lengths (0 and") && name == "compatibilities":
		p.Msg = "compatibilities needs at least one compatibility set"
	case strings.HasPrefix(p.Msg, `non-concrete value !="" in operand to !=`) && strings.Contains(p.Path, "rules."):
		p.Msg = "the rule has no name: every rule needs name: \"...\""
	}
	return p
}

// operandHint says how to write the operands of the value list at p's parent: value: ["5"].
func (m *pathMapper) operandHint(p Problem) string {
	list := parentOfPath(p.Path)
	var els []string
	for _, v := range m.values {
		w := v.LookupPath(dottedCuePath(list))
		if !w.Exists() {
			continue
		}
		it, err := w.List()
		if err != nil {
			continue
		}
		for it.Next() {
			b, err := it.Value().MarshalJSON()
			if err != nil {
				return p.Msg
			}
			els = append(els, strconv.Quote(strings.Trim(string(b), `"`)))
		}
		break
	}
	if len(els) == 0 {
		return p.Msg
	}
	return fmt.Sprintf("value holds strings, also for numbers: write value: [%s]", strings.Join(els, ", "))
}

// findSettingLiteral returns the label and position of the user's field whose string value is s, or
// ">=" s (a domain setting a rule was generated from), or NoPos.
func findSettingLiteral(files []ast.Node, s string) (string, token.Pos) {
	for _, f := range files {
		var label string
		found := token.NoPos
		ast.Walk(f, func(n ast.Node) bool {
			if found.IsValid() {
				return false
			}
			fd, ok := n.(*ast.Field)
			if !ok {
				return true
			}
			lit, ok := fd.Value.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			u, err := strconv.Unquote(lit.Value)
			if err != nil || (u != s && u != ">="+s) {
				return true
			}
			if p := fd.Pos(); p.IsValid() {
				found = p
				label, _, _ = ast.LabelName(fd.Label)
			}
			return false
		}, nil)
		if found.IsValid() {
			return label, found
		}
	}
	return "", token.NoPos
}

// userFiles are the user's parsed inputs, for refine.
func (in *inputs) userFiles() []ast.Node {
	var files []ast.Node
	if in.user != nil {
		for _, f := range in.user.Files {
			files = append(files, f)
		}
	}
	for _, d := range in.data {
		files = append(files, d.expr)
	}
	return files
}

// dottedCuePath turns a problem's dotted path (compatibilities.0.rules) into a cue.Path.
func dottedCuePath(p string) cue.Path {
	var sels []cue.Selector
	for _, el := range strings.Split(p, ".") {
		if n, err := strconv.Atoi(el); err == nil && n >= 0 {
			sels = append(sels, cue.Index(n))
		} else if u, err := strconv.Unquote(el); err == nil {
			sels = append(sels, cue.Str(u))
		} else {
			sels = append(sels, cue.Str(el))
		}
	}
	return cue.MakePath(sels...)
}
