package author

import (
	stderrors "errors"
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"
)

// Problem is one problem found in the input: where it is and what is wrong.
type Problem struct {
	// File is the input file, relative to Options.Dir when it was set; "" when the problem has no
	// position. A position inside compatkit's embedded CUE module names "compatkit.dev@v0/<path>".
	File string `json:"file,omitempty"`
	// Line and Column are 1-based; 0 when unknown.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
	// Path is the CUE path of the offending value (compatibilities.0.weight), "" when unknown.
	Path string `json:"path,omitempty"`
	// Msg says what is wrong.
	Msg string `json:"message"`

	weak bool // an "at least one of" check that an error below the same path may explain
}

// Pos returns the position as file:line:col (file:line when the column is unknown, "" when there is
// no file).
func (p Problem) Pos() string {
	switch {
	case p.File == "":
		return ""
	case p.Line == 0:
		return p.File
	case p.Column == 0:
		return p.File + ":" + strconv.Itoa(p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// String returns the problem as one line: "file:line:col: path: message".
func (p Problem) String() string {
	var b strings.Builder
	if pos := p.Pos(); pos != "" {
		b.WriteString(pos)
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error is returned by Compile and Vet when the input is invalid: every problem found, sorted by
// file and position, without duplicates.
type Error struct {
	// Problems lists every problem, in order.
	Problems []Problem
}

// Error prints one line per problem, "file:line:col: path: message".
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Errors returns the problems (for example to print them as JSON).
func (e *Error) Errors() []Problem { return e.Problems }

// pathMapper turns file names as CUE reports them into the names users see.
type pathMapper struct {
	dir     string            // Options.Dir, absolute, "" if unset
	virtual map[string]string // virtual path of a user .cue file in the loader's FS -> path as given
	user    map[string]bool
	values  []cue.Value // the user's values, to find a position in them by path
}

func (m *pathMapper) rel(file string) string {
	if m.dir == "" || file == "" || strings.HasPrefix(file, embeddedPrefix) {
		return file
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return file
	}
	// Inside Dir: relative, as `go vet` prints; elsewhere: absolute, never "../../tmp/...".
	if r, err := filepath.Rel(m.dir, abs); err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return r
	}
	return abs
}

var (
	reDisjunctionHeader = regexp.MustCompile(`^\d+ errors in empty disjunction:?$`)
	reConflict          = regexp.MustCompile(`^conflicting values (.+) and (.+)$`)
	reFileLine          = regexp.MustCompile(`^(.+?):(\d+): (.*)$`)
	reOutOfBound        = regexp.MustCompile(`^invalid value (.+) \(out of bound (.+)\)$`)
)

// problems converts a CUE error (possibly a list) to problems: positions in the user's files are
// preferred over positions in the embedded schema, disjunction headers are dropped, the conflicts
// of one value with every alternative of a disjunction are merged into one message, duplicates
// are removed.
func (m *pathMapper) problems(err error) []Problem {
	type key struct {
		file      string
		line, col int
		path      string
	}
	type group struct {
		key
		msgs []string
		weak bool
	}
	var groups []*group
	var causes []Problem
	byKey := map[key]*group{}
	list := cueerrors.Errors(err)
	if len(list) == 0 && err != nil {
		// Not a CUE error (a YAML decoder's, for example): keep its text, which names the file.
		return m.devirtualize([]Problem{{Msg: err.Error()}})
	}
	for _, e := range list {
		format, args := e.Msg()
		if s := strings.TrimSpace(fmt.Sprintf(format, args...)); s == "" || strings.Contains(s, "%!") {
			// A wrapped foreign error (the YAML decoder's "file:line: message").
			msg := e.Error()
			p := Problem{Msg: msg}
			if sm := reFileLine.FindStringSubmatch(msg); sm != nil && m.user[sm[1]] {
				p.File, p.Msg = m.rel(sm[1]), sm[3]
				p.Line, _ = strconv.Atoi(sm[2])
			}
			k := key{file: p.File, line: p.Line, path: "\x00" + p.Msg}
			if byKey[k] == nil {
				byKey[k] = &group{key: key{file: p.File, line: p.Line}, msgs: []string{p.Msg}}
				groups = append(groups, byKey[k])
			}
			continue
		}
		msg := strings.TrimSpace(fmt.Sprintf(format, args...))
		if reDisjunctionHeader.MatchString(msg) {
			continue
		}
		if msg == "import failed" {
			// Say why: the imported package's own problems (a domain's syntax error, ...).
			if cause := stderrors.Unwrap(e); cause != nil {
				for _, c := range m.problems(cause) {
					if c.Msg != "" {
						causes = append(causes, c)
					}
				}
			}
		}
		pos := m.pickPos(e)
		path := e.Path()
		weak := len(path) > 0 && path[len(path)-1] == "_needsMatch"
		// A schema check that reports through a hidden field (_arity, _needsMatch) is about the
		// value that holds it.
		for len(path) > 0 && strings.HasPrefix(path[len(path)-1], "_") {
			path = path[:len(path)-1]
		}
		k := key{path: strings.TrimPrefix(strings.Join(path, "."), "#Document.")}
		if k.path == "#Document" {
			k.path = ""
		}
		if pos.IsValid() {
			k.file, k.line, k.col = m.rel(pos.Filename()), pos.Line(), pos.Column()
		}
		g := byKey[k]
		if g == nil {
			g = &group{key: k, weak: weak}
			byKey[k] = g
			groups = append(groups, g)
		}
		if !slices.Contains(g.msgs, msg) {
			g.msgs = append(g.msgs, msg)
		}
	}
	out := causes
	for _, g := range groups {
		for _, msg := range formatMsgs(g.path, g.msgs) {
			out = append(out, Problem{File: g.file, Line: g.line, Column: g.col, Path: g.path, Msg: msg, weak: g.weak})
		}
	}
	sortProblems(out)
	return m.devirtualize(out)
}

func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

// mergeConflicts folds "conflicting values A and X", "conflicting values B and X", ... (one value X
// against each alternative of a disjunction) into "X is not allowed; want one of A, B, ...".
func mergeConflicts(msgs []string) []string {
	if len(msgs) < 2 {
		return msgs
	}
	count := map[string]int{}
	for _, msg := range msgs {
		if sm := reConflict.FindStringSubmatch(msg); sm != nil {
			count[sm[1]]++
			if sm[1] != sm[2] {
				count[sm[2]]++
			}
		}
	}
	var common string
	for v, n := range count {
		if n > 1 && (common == "" || n > count[common] || n == count[common] && v < common) {
			common = v
		}
	}
	if common == "" {
		return msgs
	}
	var alts, rest []string
	for _, msg := range msgs {
		sm := reConflict.FindStringSubmatch(msg)
		switch {
		case sm != nil && sm[2] == common:
			alts = append(alts, sm[1])
		case sm != nil && sm[1] == common:
			alts = append(alts, sm[2])
		default:
			if ob := reOutOfBound.FindStringSubmatch(msg); ob != nil && ob[1] == common {
				alts = append(alts, "a value matching "+strings.TrimPrefix(ob[2], "=~"))
				continue
			}
			rest = append(rest, msg)
		}
	}
	merged := fmt.Sprintf("%s is not allowed; want one of %s", common, strings.Join(alts, ", "))
	if s := suggest(common, alts); s != "" {
		merged = fmt.Sprintf("%s is not allowed (did you mean %s?); want one of %s", common, s, strings.Join(alts, ", "))
	}
	return append([]string{merged}, rest...)
}

// pickPos returns the most useful position of e: the first one in a user file, else the error's
// own position, else any.
func (m *pathMapper) pickPos(e cueerrors.Error) token.Pos {
	positions := append([]token.Pos{e.Position()}, cueerrors.Positions(e)...)
	for _, p := range positions {
		if p.IsValid() && m.user[p.Filename()] {
			return p
		}
	}
	// The error is only positioned in the schema (a constraint such as error("...")): point at
	// the user's value at the error's path instead.
	for path := e.Path(); len(path) > 0; path = path[:len(path)-1] {
		if p := m.locate(path); p.IsValid() {
			return p
		}
	}
	// A required field missing at the top level: point at the start of the user's document.
	if len(m.values) > 0 && len(e.Path()) > 0 && !m.user[e.Position().Filename()] {
		if p := m.values[0].Pos(); p.IsValid() && m.user[p.Filename()] {
			return p
		}
	}
	for _, p := range positions {
		if p.IsValid() {
			return p
		}
	}
	return token.NoPos
}

// locate returns the position of the user's value at path (as CUE errors give it), or NoPos.
func (m *pathMapper) locate(path []string) token.Pos {
	if len(path) > 0 && path[0] == "#Document" {
		path = path[1:]
	}
	if len(path) == 0 {
		return token.NoPos
	}
	sels := make([]cue.Selector, 0, len(path))
	for _, el := range path {
		switch {
		case el == "":
			return token.NoPos
		case strings.HasPrefix(el, "#"):
			sels = append(sels, cue.Def(el))
		case strings.HasPrefix(el, `"`):
			u, err := strconv.Unquote(el)
			if err != nil {
				return token.NoPos
			}
			sels = append(sels, cue.Str(u))
		default:
			if n, err := strconv.Atoi(el); err == nil && n >= 0 {
				sels = append(sels, cue.Index(n))
			} else {
				sels = append(sels, cue.Str(el))
			}
		}
	}
	cp := cue.MakePath(sels...)
	for _, v := range m.values {
		w := v.LookupPath(cp)
		if !w.Exists() {
			continue
		}
		if p := w.Pos(); p.IsValid() && m.user[p.Filename()] {
			return p
		}
	}
	return token.NoPos
}

// problemAt is a problem at the start of node n (or with no position).
func (m *pathMapper) problemAt(file string, n ast.Node, msg string) Problem {
	p := Problem{File: m.rel(file), Msg: msg}
	if n != nil {
		if pos := n.Pos(); pos.IsValid() {
			p.Line, p.Column = pos.Line(), pos.Column()
		}
	}
	return p
}

// suggest returns the alternative closest to got (edit distance at most 2; at most 1 for names of
// 4 characters or fewer, where 2 edits make another word: "qos" is not "op"), or "".
func suggest(got string, alts []string) string {
	best, bestD := "", 3
	if len(got) <= 4 {
		bestD = 2
	}
	for _, a := range alts {
		if d := editDistance(strings.ToLower(got), strings.ToLower(a)); d < bestD {
			best, bestD = a, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// devirtualize replaces the loader's names for the user's .cue files ("/compatkit.input/f0000.cue",
// "f0000.cue") with the paths the user gave, in positions and in messages (CUE's own messages,
// such as "found packages x (f0000.cue) and y (f0001.cue)", name files by their FS path).
func (m *pathMapper) devirtualize(ps []Problem) []Problem {
	if len(m.virtual) == 0 {
		return ps
	}
	fix := func(s string) string {
		for v, real := range m.virtual {
			shown := m.rel(real)
			s = strings.ReplaceAll(s, "/"+v, shown)
			s = strings.ReplaceAll(s, v, shown)
			s = strings.ReplaceAll(s, "("+path.Base(v)+")", "("+shown+")")
		}
		return s
	}
	for i := range ps {
		ps[i].File = fix(ps[i].File)
		ps[i].Msg = strings.TrimSuffix(fix(ps[i].Msg), ` in "/"`)
	}
	return ps
}
