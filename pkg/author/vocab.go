package author

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"

	"github.com/compatkit/compatkit/pkg/cpuinfo"
	"github.com/compatkit/compatkit/pkg/spec"
)

// AllowFlagsEnv names the environment variable that lists cpu.cpuid names vet accepts although
// NFD v0.19 does not report them (comma- or space-separated), when Options.AllowFlags is nil:
// the escape hatch for flags of a newer NFD.
const AllowFlagsEnv = "COMPATKIT_ALLOW_FLAGS"

func (o Options) allowFlags() map[string]bool {
	names := o.AllowFlags
	if names == nil {
		names = strings.FieldsFunc(os.Getenv(AllowFlagsEnv), func(r rune) bool {
			return r == ',' || r == ' ' || r == '\t' || r == '\n'
		})
	}
	allow := map[string]bool{}
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" {
			allow[n] = true
		}
	}
	return allow
}

// checkCpuid reports every cpu.cpuid element name of s (matchExpressions keys, matchName In and
// NotIn operands) that NFD v0.19 never reports (cpuinfo.IsKnownFlag) and Options.AllowFlags does
// not allow: a typo that would otherwise only fail on hosts. name names the spec ("default spec",
// "platform linux/amd64"), at is the CUE path of its document ("platforms", "\"linux/amd64\"").
func (in *inputs) checkCpuid(s *spec.Spec, name string, at []string) []Problem {
	var problems []Problem
	seen := map[string]bool{}
	check := func(flag string, path []string, rule string) {
		if cpuinfo.IsKnownFlag(flag) || in.allow[flag] || seen[flag] {
			return
		}
		seen[flag] = true
		msg := fmt.Sprintf("cpu.cpuid: unknown flag %q", flag)
		switch s := suggestFlag(flag); {
		case strings.EqualFold(s, flag):
			msg += fmt.Sprintf(" (did you mean %q?): NFD's names are case-sensitive", s)
		case s != "":
			msg += fmt.Sprintf(" (did you mean %q?)", s)
			fallthrough
		default:
			msg += fmt.Sprintf(": NFD v0.19 never reports it; if a newer NFD does, set %s=%s", AllowFlagsEnv, flag)
		}
		p := Problem{Msg: msg}
		pos := in.pm.locate(append(slices.Clone(at), path...))
		if !pos.IsValid() {
			pos = in.findName(flag)
		}
		if !pos.IsValid() && rule != "" {
			for _, u := range in.pm.values {
				if pos = findRule(u, rule, in.pm.user, 0); pos.IsValid() {
					break
				}
			}
		}
		if pos.IsValid() && in.pm.user[pos.Filename()] {
			p.File, p.Line, p.Column = in.pm.rel(pos.Filename()), pos.Line(), pos.Column()
		} else {
			p.Msg = name + ": " + p.Msg
		}
		problems = append(problems, p)
	}
	term := func(t spec.FeatureMatcherTerm, path []string, rule string) {
		if t.Feature != cpuinfo.CpuidKey {
			return
		}
		keys := make([]string, 0, len(t.MatchExpressions))
		for k := range t.MatchExpressions {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			check(k, append(slices.Clone(path), "matchExpressions", k), rule)
		}
		if m := t.MatchName; m != nil && (m.Op == spec.OpIn || m.Op == spec.OpNotIn) {
			for i, v := range m.Value {
				check(v, append(slices.Clone(path), "matchName", "value", strconv.Itoa(i)), rule)
			}
		}
	}
	for i, c := range s.Compatibilities {
		for j, r := range c.Rules {
			base := []string{"compatibilities", strconv.Itoa(i), "rules", strconv.Itoa(j)}
			for k, t := range r.MatchFeatures {
				term(t, append(slices.Clone(base), "matchFeatures", strconv.Itoa(k)), r.Name)
			}
			for a, alt := range r.MatchAny {
				for k, t := range alt.MatchFeatures {
					term(t, append(slices.Clone(base), "matchAny", strconv.Itoa(a), "matchFeatures", strconv.Itoa(k)), r.Name)
				}
			}
		}
	}
	return problems
}

// flagBound is the bound of domains/cpu/x86's flags, as CUE prints it in an out-of-bound error.
const flagBound = `=~"^[A-Z0-9_]+$"`

// hintFlags adds a did-you-mean to an out-of-bound error of a cpuid flag list (x86.#Config flags:
// ["avx2"] gets "did you mean "AVX2"?").
func hintFlags(ps []Problem) []Problem {
	for i, p := range ps {
		sm := reOutOfBound.FindStringSubmatch(p.Msg)
		if sm == nil || sm[2] != flagBound {
			continue
		}
		got, err := strconv.Unquote(sm[1])
		if err != nil {
			continue
		}
		if s := suggestFlag(got); s != "" {
			ps[i].Msg = fmt.Sprintf("cpu.cpuid: unknown flag %q (did you mean %q?): flags are NFD's upper-case names", got, s)
		}
	}
	return ps
}

// findName returns the position of the first label or string literal spelling name in the user's
// files (a flag that a domain's #Config turned into a rule: flags: ["AVX512VNIN"]), or NoPos.
func (in *inputs) findName(name string) token.Pos {
	var files []ast.Node
	if in.user != nil {
		for _, f := range in.user.Files {
			files = append(files, f)
		}
	}
	for _, d := range in.data {
		files = append(files, d.expr)
	}
	for _, f := range files {
		found := token.NoPos
		ast.Walk(f, func(n ast.Node) bool {
			if found.IsValid() {
				return false
			}
			var lit string
			switch x := n.(type) {
			case *ast.BasicLit:
				if x.Kind != token.STRING {
					return true
				}
				lit = x.Value
				if u, err := strconv.Unquote(lit); err == nil {
					lit = u
				} else if len(lit) >= 2 {
					lit = lit[1 : len(lit)-1]
				}
			case *ast.Ident:
				lit = x.Name
			default:
				return true
			}
			if p := n.Pos(); lit == name && p.IsValid() && in.pm.user[p.Filename()] {
				found = p
			}
			return true
		}, nil)
		if found.IsValid() {
			return found
		}
	}
	return token.NoPos
}

// suggestFlag returns the known cpu.cpuid name closest to got, or "" when none is close: the
// same name in other case ("avx2": "AVX2"), else one at most 2 edits away (1 for names of 4
// characters or fewer), a swap of two adjacent characters counting as one edit.
func suggestFlag(got string) string {
	best, bestD := "", 3
	if len(got) <= 4 {
		bestD = 2
	}
	g := strings.ToUpper(got)
	for _, k := range cpuinfo.KnownFlags() {
		if d := swapDistance(g, strings.ToUpper(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// swapDistance is the optimal string alignment distance of a and b: insertions, deletions,
// substitutions and transpositions of adjacent characters, each counting 1.
func swapDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
