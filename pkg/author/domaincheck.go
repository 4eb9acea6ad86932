package author

import (
	"bufio"
	"bytes"
	"context"
	stderrors "errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"

	"github.com/compatkit/compatkit"
)

// FragmentMarker is the info string of a README code block that is not a complete spec and is not
// compiled by CheckDomain and CheckSnippets: ```cue fragment (GitHub still highlights it as CUE).
const FragmentMarker = "cue fragment"

// CheckDomain runs every check of a domain module (or group template) directory on the files on
// disk, with no Go needed, and returns the problems found (nil when there are none):
//
//   - the package has a doc comment, and every field has one: the top-level fields and definitions,
//     and the fields of the top-level definitions (compat-attach explain prints them);
//   - the directory has a README.md and at least one examples/good and one examples/bad file;
//   - every examples/good/*.cue file compiles, every examples/bad/*.cue file fails with the message
//     its "// error: <part of the message>" line gives;
//   - every setting of #Config (its fields but rules) is set by at least one examples/good file
//     (as <pkg>.#Config & {setting: ...}): a setting no example uses may hold a broken rule that
//     every test passes;
//   - the ```cue blocks of its README.md compile as specs (see CheckSnippets).
//
// Where the domain is imported from: a directory of compatkit's own repository (one holding the
// cue.mod/module.cue of compatkit.dev@v0, such as domains/gpu/nvidia) is checked as the copy built
// into this program, and a problem says when the files on disk differ from it; a directory below an
// entry of opts.CUEPath (or COMPATKIT_CUE_PATH) is imported from there; any other directory's
// parent is added to the CUE path, so DIR is imported as "compatkit.dev/domains/<base of DIR>".
// Problems name the files as opts.Dir makes them (relative to it when it is set).
func CheckDomain(dir string, opts Options) []Problem {
	c, err := newDomainCheck(dir, opts)
	if err != nil {
		return []Problem{{File: dir, Msg: err.Error()}}
	}
	c.docs()
	c.examples()
	c.coverage()
	c.problems = append(c.problems, CheckSnippets(filepath.Join(c.dir, "README.md"), "", c.opts)...)
	sortProblems(c.problems)
	return c.problems
}

// domainCheck is the state of one CheckDomain call.
type domainCheck struct {
	dir      string // as given
	opts     Options
	virtual  string // the package's directory in the module: domains/hpc/slurm, templates/cuda
	pkg      string // its package name
	files    []*ast.File
	problems []Problem
	good     []string
	bad      []string
}

func newDomainCheck(dir string, opts Options) (*domainCheck, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	c := &domainCheck{dir: dir, opts: opts}
	cues, _ := filepath.Glob(filepath.Join(dir, "*.cue"))
	if len(cues) == 0 {
		if st, err := os.Stat(dir); err != nil {
			return nil, err
		} else if !st.IsDir() {
			return nil, fmt.Errorf("not a directory: give a domain directory (the one holding its .cue files)")
		}
		return nil, fmt.Errorf("no .cue files: give a domain directory (DIR/<name>.cue, DIR/README.md, DIR/examples/...), not the directory holding domains")
	}
	sort.Strings(cues)
	for _, f := range cues {
		file, err := parser.ParseFile(f, nil, parser.ParseComments)
		if err != nil {
			c.add(dcParseProblems(err, f)...)
			continue
		}
		c.files = append(c.files, file)
		if c.pkg == "" {
			c.pkg = file.PackageName()
		}
	}
	if c.pkg == "" && len(c.problems) == 0 {
		c.add(Problem{File: c.rel(cues[0]), Line: 1, Msg: "no package clause: a domain's files start with package <name>"})
	}
	if root, ok := dcModuleRoot(abs); ok {
		rel, _ := filepath.Rel(root, abs)
		c.virtual = filepath.ToSlash(rel)
		c.stale(cues)
		return c, nil
	}
	var cuePath []string
	for _, p := range opts.cuePath() {
		if p == "" {
			continue
		}
		pa, err := filepath.Abs(p)
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(pa, abs); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
			c.virtual = path.Join("domains", filepath.ToSlash(rel))
		}
		cuePath = append(cuePath, p)
	}
	if c.virtual == "" {
		c.virtual = path.Join("domains", filepath.Base(abs))
		cuePath = append(cuePath, filepath.Dir(abs))
	}
	c.opts.CUEPath = cuePath
	return c, nil
}

var reCompatkitModule = regexp.MustCompile(`(?m)^module:\s*"compatkit\.dev@v0"`)

// dcModuleRoot returns the root of compatkit's own CUE module when dir is one of its package
// directories (domains/... or templates/... of a checkout of this repository).
func dcModuleRoot(dir string) (string, bool) {
	for d := dir; ; {
		parent := filepath.Dir(d)
		if parent == d {
			return "", false
		}
		d = parent
		b, err := os.ReadFile(filepath.Join(d, "cue.mod", "module.cue"))
		if err != nil {
			continue
		}
		rel, _ := filepath.Rel(d, dir)
		rel = filepath.ToSlash(rel)
		if !reCompatkitModule.Match(b) ||
			!(strings.HasPrefix(rel, "domains/") || strings.HasPrefix(rel, "templates/")) {
			return "", false
		}
		return d, true
	}
}

// stale reports the files of a directory of compatkit's own module that differ from the copy
// built into this program (which the examples are compiled with).
func (c *domainCheck) stale(cues []string) {
	embedded, _ := fs.Glob(compatkit.CUEModule, c.virtual+"/*.cue")
	onDisk := map[string]bool{}
	for _, f := range cues {
		onDisk[path.Base(filepath.ToSlash(f))] = true
		b, _ := os.ReadFile(f)
		e, err := fs.ReadFile(compatkit.CUEModule, c.virtual+"/"+filepath.Base(f))
		if err != nil || !bytes.Equal(b, e) {
			c.add(Problem{File: c.rel(f), Msg: "differs from the copy of " + c.virtual + " built into this program, which the examples are compiled with: rebuild it (go install ./cmd/compat-attach), or check a copy outside the repository with --cue-path"})
		}
	}
	for _, e := range embedded {
		if !onDisk[path.Base(e)] {
			c.add(Problem{File: c.rel(filepath.Join(c.dir, path.Base(e))), Msg: "removed on disk but built into this program: rebuild it (go install ./cmd/compat-attach)"})
		}
	}
}

func (c *domainCheck) add(ps ...Problem) { c.problems = append(c.problems, ps...) }

// rel names a file as problems name it: relative to Options.Dir when it is set.
func (c *domainCheck) rel(f string) string { return (&pathMapper{dir: dcAbsDir(c.opts.Dir)}).rel(f) }

func dcAbsDir(d string) string {
	if d == "" {
		return ""
	}
	a, err := filepath.Abs(d)
	if err != nil {
		return ""
	}
	return a
}

func (c *domainCheck) at(pos token.Pos, msg string) Problem {
	return Problem{File: c.rel(pos.Filename()), Line: pos.Line(), Column: pos.Column(), Msg: msg}
}

// cuePositioned turns a parse error into problems with the file's name.
func dcParseProblems(err error, file string) []Problem {
	pm := &pathMapper{user: map[string]bool{file: true}, virtual: map[string]string{}}
	return pm.problems(err)
}

// docs checks the package doc and the doc comment of every field (see CheckDomain).
func (c *domainCheck) docs() {
	if len(c.files) == 0 {
		return
	}
	hasPkgDoc := false
	for _, f := range c.files {
		if packageDoc([]*ast.File{f}) != "" {
			hasPkgDoc = true
		}
	}
	if !hasPkgDoc {
		c.add(c.at(c.files[0].Pos(), fmt.Sprintf("package %s has no doc comment: start a file with // Package %s describes ... (what it covers, the host features it relies on)", c.pkg, c.pkg)))
	}
	type decl struct {
		pos        token.Pos
		documented bool
	}
	seen := map[string]*decl{}
	var order []string
	note := func(name string, f *ast.Field) {
		d, ok := seen[name]
		if !ok {
			d = &decl{pos: f.Pos()}
			seen[name] = d
			order = append(order, name)
		}
		d.documented = d.documented || dcHasDoc(f)
	}
	for _, file := range c.files {
		for _, x := range file.Decls {
			f, ok := x.(*ast.Field)
			if !ok {
				continue
			}
			name, ok := dcFieldName(f)
			if !ok {
				continue
			}
			note(name, f)
			if !strings.HasPrefix(name, "#") {
				continue
			}
			for _, s := range dcStructs(f.Value) {
				for _, y := range s.Elts {
					if g, ok := y.(*ast.Field); ok {
						if sub, ok := dcFieldName(g); ok {
							note(name+"."+sub, g)
						}
					}
				}
			}
		}
	}
	for _, name := range order {
		if d := seen[name]; !d.documented {
			c.add(c.at(d.pos, fmt.Sprintf("%s has no doc comment: add a // comment above it (what it means, the unit or form, an example value); `compat-attach explain` prints it", name)))
		}
	}
}

// fieldName returns a field's name without ? or !; false for hidden fields and fields whose
// label is not a plain name.
func dcFieldName(f *ast.Field) (string, bool) {
	name, _, err := ast.LabelName(f.Label)
	if err != nil || name == "" || strings.HasPrefix(name, "_") {
		return "", false
	}
	return name, true
}

func dcHasDoc(f *ast.Field) bool {
	for _, cg := range ast.Comments(f) {
		if cg.Doc && commentText(cg) != "" {
			return true
		}
	}
	return false
}

// structsOf returns the struct literals of a value: {...} or a & b & {...}.
func dcStructs(x ast.Expr) []*ast.StructLit {
	switch x := x.(type) {
	case *ast.StructLit:
		return []*ast.StructLit{x}
	case *ast.ParenExpr:
		return dcStructs(x.X)
	case *ast.BinaryExpr:
		if x.Op == token.AND {
			return append(dcStructs(x.X), dcStructs(x.Y)...)
		}
	}
	return nil
}

// examples checks README.md and the examples (see CheckDomain).
func (c *domainCheck) examples() {
	if _, err := os.Stat(filepath.Join(c.dir, "README.md")); err != nil {
		c.add(Problem{File: c.rel(c.dir), Msg: "no README.md: say what the domain covers, its settings and the host features it relies on"})
	}
	c.good, _ = filepath.Glob(filepath.Join(c.dir, "examples", "good", "*.cue"))
	c.bad, _ = filepath.Glob(filepath.Join(c.dir, "examples", "bad", "*.cue"))
	if len(c.good) == 0 || len(c.bad) == 0 {
		c.add(Problem{File: c.rel(c.dir), Msg: fmt.Sprintf("want at least one examples/good/*.cue (a spec that compiles) and one examples/bad/*.cue (a spec that fails), got %d and %d", len(c.good), len(c.bad))})
	}
	ctx := context.Background()
	for _, p := range c.good {
		if _, err := Compile(ctx, []string{p}, c.opts); err != nil {
			c.add(c.compileProblems(err, p, "a good example must compile")...)
		}
	}
	for _, p := range c.bad {
		want, line := dcWantError(p)
		if want == "" {
			c.add(Problem{File: c.rel(p), Line: 1, Msg: `a bad example needs a line "// error: <part of the expected message>"`})
			continue
		}
		_, err := Compile(ctx, []string{p}, c.opts)
		switch {
		case err == nil:
			c.add(Problem{File: c.rel(p), Line: line, Msg: fmt.Sprintf("a bad example must fail: it compiled, want an error containing %q", want)})
		case !strings.Contains(err.Error(), want):
			c.add(Problem{File: c.rel(p), Line: line, Msg: fmt.Sprintf("want an error containing %q, got: %s", want, strings.ReplaceAll(err.Error(), "\n", "; "))})
		}
	}
}

// compileProblems returns the problems of a compile error, each saying why it is one.
func (c *domainCheck) compileProblems(err error, file, why string) []Problem {
	var ae *Error
	if !stderrors.As(err, &ae) {
		return []Problem{{File: c.rel(file), Msg: err.Error() + " (" + why + ")"}}
	}
	ps := make([]Problem, len(ae.Problems))
	for i, p := range ae.Problems {
		p.Msg += " (" + why + ")"
		ps[i] = p
	}
	return ps
}

// wantError returns the text of a bad example's "// error: " line and its line number.
func dcWantError(p string) (string, int) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if s, ok := strings.CutPrefix(sc.Text(), "// error: "); ok {
			return s, n
		}
	}
	return "", 0
}

// coverage checks that every setting of #Config is set by a good example (see CheckDomain).
func (c *domainCheck) coverage() {
	type setting struct {
		name string
		pos  token.Pos
	}
	var settings []setting
	for _, file := range c.files {
		for _, x := range file.Decls {
			f, ok := x.(*ast.Field)
			if name, _ := dcFieldNameOK(f, ok); name != "#Config" {
				continue
			}
			for _, s := range dcStructs(f.Value) {
				for _, y := range s.Elts {
					if g, ok := y.(*ast.Field); ok {
						if name, ok := dcFieldName(g); ok && name != "rules" && !strings.HasPrefix(name, "#") {
							settings = append(settings, setting{name, g.Pos()})
						}
					}
				}
			}
		}
	}
	if len(settings) == 0 {
		return
	}
	set := map[string]bool{}
	for _, p := range c.good {
		f, err := parser.ParseFile(p, nil, parser.ParseComments)
		if err != nil {
			continue // reported by examples
		}
		for name := range dcConfigSettings(f, "compatkit.dev/"+c.virtual, c.pkg) {
			set[name] = true
		}
	}
	for _, s := range settings {
		if !set[s.name] {
			c.add(c.at(s.pos, fmt.Sprintf("setting %s is used by no examples/good file: add one that sets it (%s.#Config & {%s: ...}); a setting no example uses may hold a broken rule every test passes", s.name, c.pkg, s.name)))
		}
	}
}

func dcFieldNameOK(f *ast.Field, ok bool) (string, bool) {
	if !ok {
		return "", false
	}
	return dcFieldName(f)
}

// configSettings returns the field names a file sets in the struct literals unified with
// <pkg>.#Config, where <pkg> is its name for the import of importPath.
func dcConfigSettings(f *ast.File, importPath, pkg string) map[string]bool {
	names := map[string]bool{}
	for spec := range f.ImportSpecs() {
		p := strings.Trim(spec.Path.Value, `"`)
		base, qual, _ := strings.Cut(p, ":")
		base = strings.TrimSuffix(base, "@v0")
		if base != importPath || (qual != "" && qual != pkg) {
			continue
		}
		switch {
		case spec.Name != nil:
			names[spec.Name.Name] = true
		default:
			names[pkg] = true
		}
	}
	set := map[string]bool{}
	if len(names) == 0 {
		return set
	}
	ast.Walk(f, func(n ast.Node) bool {
		b, ok := n.(*ast.BinaryExpr)
		if !ok || b.Op != token.AND {
			return true
		}
		ops := dcAndOperands(b)
		isConfig := false
		for _, o := range ops {
			if s, ok := o.(*ast.SelectorExpr); ok {
				if id, ok := s.X.(*ast.Ident); ok && names[id.Name] {
					if l, _, _ := ast.LabelName(s.Sel); l == "#Config" {
						isConfig = true
					}
				}
			}
		}
		if isConfig {
			for _, o := range ops {
				if s, ok := o.(*ast.StructLit); ok {
					for _, e := range s.Elts {
						if g, ok := e.(*ast.Field); ok {
							if name, ok := dcFieldName(g); ok {
								set[name] = true
							}
						}
					}
				}
			}
		}
		return true
	}, nil)
	return set
}

func dcAndOperands(x ast.Expr) []ast.Expr {
	switch x := x.(type) {
	case *ast.ParenExpr:
		return dcAndOperands(x.X)
	case *ast.BinaryExpr:
		if x.Op == token.AND {
			return append(dcAndOperands(x.X), dcAndOperands(x.Y)...)
		}
	}
	return []ast.Expr{x}
}

// Snippet is a ```cue block of a Markdown file.
type Snippet struct {
	// Line is the line of the block's first line of code (1-based).
	Line int
	// Code is the block's text.
	Code string
	// Fragment says the block is marked ```cue fragment (FragmentMarker): not compiled.
	Fragment bool
}

// Snippets returns the ```cue blocks of Markdown text, only those below the heading section
// ("## Writing a spec", any level, up to the next heading of the same or a higher level) when
// section is not "".
func Snippets(markdown, section string) []Snippet {
	var out []Snippet
	var cur *Snippet
	var code []string
	in := section == ""
	level := 0
	for i, l := range strings.Split(markdown, "\n") {
		if cur == nil && strings.HasPrefix(l, "#") {
			h := strings.TrimLeft(l, "#")
			n := len(l) - len(h)
			title := strings.TrimSpace(h)
			switch {
			case section != "" && title == section:
				in, level = true, n
			case section != "" && in && n <= level:
				in = false
			}
			continue
		}
		t := strings.TrimSpace(l)
		switch {
		case cur == nil && strings.HasPrefix(t, "```") && !strings.Contains(strings.TrimLeft(t, "`"), "`"):
			info := strings.Join(strings.Fields(strings.TrimLeft(t, "`")), " ")
			cur, code = &Snippet{Line: -1}, nil // another language or section: skipped
			if in && (info == "cue" || info == FragmentMarker) {
				cur = &Snippet{Line: i + 2, Fragment: info == FragmentMarker}
			}
		case cur != nil && strings.HasPrefix(t, "```"):
			if cur.Line > 0 {
				cur.Code = strings.Join(code, "\n") + "\n"
				out = append(out, *cur)
			}
			cur = nil
		case cur != nil:
			code = append(code, l)
		}
	}
	return out
}

// CheckSnippets compiles every ```cue block of a Markdown file (of its section when section is not
// "") as a spec file of its own, with opts, and returns the problems at the README's lines. A block
// whose info string is "cue fragment" (FragmentMarker) is not compiled: use it for parts of a spec
// or a domain's own CUE. A missing file has no snippets.
func CheckSnippets(markdown, section string, opts Options) []Problem {
	b, err := os.ReadFile(markdown)
	if err != nil {
		if stderrors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return []Problem{{File: markdown, Msg: err.Error()}}
	}
	shown := (&pathMapper{dir: dcAbsDir(opts.Dir)}).rel(markdown)
	var problems []Problem
	snippets := Snippets(string(b), section)
	if section != "" && !bytes.Contains(b, []byte(section)) {
		problems = append(problems, Problem{File: shown, Msg: fmt.Sprintf("no section %q", section)})
	}
	const why = "a ```cue block must compile as a spec; mark a part of one ```" + FragmentMarker
	for _, s := range snippets {
		if s.Fragment {
			continue
		}
		tmp, err := os.MkdirTemp("", "compatkit-snippet-")
		if err != nil {
			return append(problems, Problem{File: shown, Msg: err.Error()})
		}
		f := filepath.Join(tmp, "snippet.cue")
		err = os.WriteFile(f, []byte(s.Code), 0o600)
		if err == nil {
			_, err = Compile(context.Background(), []string{f}, Options{CUEPath: opts.CUEPath, AllowFlags: opts.AllowFlags})
		}
		os.RemoveAll(tmp)
		if err == nil {
			continue
		}
		var ae *Error
		if !stderrors.As(err, &ae) {
			problems = append(problems, Problem{File: shown, Line: s.Line, Msg: err.Error() + " (" + why + ")"})
			continue
		}
		for _, p := range ae.Problems {
			p.Msg = strings.ReplaceAll(p.Msg, f, shown) + " (" + why + ")"
			if p.File == f {
				p.File, p.Line = shown, s.Line+p.Line-1
			}
			problems = append(problems, p)
		}
	}
	return problems
}
