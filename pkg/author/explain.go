package author

import (
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"

	"github.com/compatkit/compatkit"
	"github.com/compatkit/compatkit/internal/memfs"
)

// Explanation describes one setting of compatkit's CUE module: its documentation, type, default
// and allowed values.
type Explanation struct {
	// Path is the setting as asked, normalised ("domains/gpu/nvidia.#Config.driver").
	Path string `json:"path"`
	// Doc is the setting's // comment, without the comment markers.
	Doc string `json:"doc"`
	// Type is the kind of value (string, int, bool, struct, list, ...), "|" between alternatives.
	Type string `json:"type"`
	// Optional says the setting is an optional field (name?): it may be left out, and has no
	// default.
	Optional bool `json:"optional,omitempty"`
	// Default is the default value in CUE syntax (an explicit *default), "" when there is none.
	Default string `json:"default,omitempty"`
	// Allowed lists the allowed values when the setting (or a list's elements) is an enumeration.
	Allowed []string `json:"allowed,omitempty"`
	// Constraint is the setting's constraint in CUE syntax (shortened).
	Constraint string `json:"constraint,omitempty"`
	// Fields lists the settings below this one (of a struct), each with the first line of its doc.
	Fields []FieldDoc `json:"fields,omitempty"`
}

// FieldDoc is one field of an explained struct.
type FieldDoc struct {
	Name     string `json:"name"`
	Optional bool   `json:"optional,omitempty"`
	Summary  string `json:"summary,omitempty"`
}

// moduleFS returns compatkit's embedded CUE module as a MapFS, with extra domain directories
// (Options.CUEPath) mounted under domains/.
func moduleFS(cuePath []string) (memfs.FS, map[string]string, error) {
	fsys := memfs.FS{}
	if err := fs.WalkDir(compatkit.CUEModule, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(compatkit.CUEModule, p)
		if err != nil {
			return err
		}
		fsys[p] = b
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("author: reading the embedded CUE module: %w", err)
	}
	mounted, err := mountCUEPath(fsys, cuePath)
	return fsys, mounted, err
}

// splitExplainPath splits "gpu/nvidia.driver" into the package directory ("domains/gpu/nvidia")
// and the CUE path ("driver").
func splitExplainPath(p string) (dir, sel string) {
	slash := strings.LastIndex(p, "/")
	dot := strings.Index(p[slash+1:], ".")
	if dot < 0 {
		dir = p
	} else {
		dir, sel = p[:slash+1+dot], p[slash+1+dot+1:]
	}
	switch {
	case dir == "cue", dir == "compat", strings.HasPrefix(dir, "templates/"), strings.HasPrefix(dir, "domains/"):
	default:
		dir = "domains/" + dir
	}
	if dir == "compat" {
		dir = "cue"
	}
	return dir, sel
}

// Explain documents a setting of compatkit's CUE module. path is "<package>.<field path>":
// the package is "cue" (the core schema), "templates/<name>", or a domain ("gpu/nvidia" or
// "domains/gpu/nvidia"); the field path is looked up in the package, then in its definitions
// (#Config first), so "gpu/nvidia.driver" finds #Config.driver. A package alone lists its
// settings. Extra domain directories of opts.CUEPath are included.
func Explain(path string, opts Options) (*Explanation, error) {
	dir, sel := splitExplainPath(strings.TrimSpace(path))
	fsys, _, err := moduleFS(opts.cuePath())
	if err != nil {
		return nil, err
	}
	cfg := &load.Config{FS: fsys, Dir: "/", FromFSPath: func(p string) string { return embeddedPrefix + strings.TrimPrefix(p, "/") }}
	insts := load.Instances([]string{"./" + dir}, cfg)
	if len(insts) != 1 || insts[0].Err != nil {
		return nil, fmt.Errorf("explain %s: no package %s in compatkit's CUE module (packages: cue, templates/<name>, <domain> such as gpu/nvidia): %v", path, dir, insts[0].Err)
	}
	root := cuecontext.New().BuildInstance(insts[0])
	if err := root.Err(); err != nil {
		return nil, fmt.Errorf("explain %s: building %s: %w", path, dir, err)
	}
	if sel == "" {
		return explainValue(dir, root, packageDoc(insts[0].Files)), nil
	}
	cp := cue.ParsePath(sel)
	if err := cp.Err(); err != nil {
		return nil, fmt.Errorf("explain %s: %w", path, err)
	}
	candidates := []cue.Path{cp}
	if !strings.HasPrefix(sel, "#") {
		var defs []string
		it, _ := root.Fields(cue.Definitions(true))
		for it.Next() {
			if it.Selector().IsDefinition() {
				defs = append(defs, it.Selector().String())
			}
		}
		sort.SliceStable(defs, func(i, j int) bool { return defs[i] == "#Config" && defs[j] != "#Config" })
		for _, d := range defs {
			candidates = append(candidates, cue.ParsePath(d+"."+sel))
		}
	}
	for _, c := range candidates {
		if v, optional, ok := lookupAny(root, c); ok {
			e := explainValue(dir+"."+c.String(), v, "")
			if optional {
				e.Optional, e.Default = true, ""
			}
			return e, nil
		}
	}
	return nil, fmt.Errorf("explain %s: %s has no setting %s (run `compat-attach explain %s` for its settings)", path, dir, sel, strings.TrimPrefix(dir, "domains/"))
}

// packageDoc returns the package clause's doc comment of the first file that has one.
func packageDoc(files []*ast.File) string {
	for _, f := range files {
		for _, c := range ast.Comments(f) {
			if c.Doc {
				return commentText(c)
			}
		}
		// parser.ParseFile attaches it to the package clause.
		for _, d := range f.Decls {
			if p, ok := d.(*ast.Package); ok {
				for _, c := range ast.Comments(p) {
					if t := commentText(c); c.Doc && t != "" {
						return t
					}
				}
			}
		}
	}
	return ""
}

func commentText(c *ast.CommentGroup) string {
	var lines []string
	for _, l := range c.List {
		s := strings.TrimPrefix(l.Text, "//")
		s = strings.TrimPrefix(s, " ")
		lines = append(lines, s)
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

func docOf(v cue.Value) string {
	var parts []string
	for _, c := range v.Doc() {
		if t := commentText(c); t != "" && !slicesContains(parts, t) {
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, "\n")
}

func slicesContains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

func explainValue(path string, v cue.Value, doc string) *Explanation {
	e := &Explanation{Path: path, Doc: doc}
	if e.Doc == "" {
		e.Doc = docOf(v)
	}
	c := constraintOf(v)
	e.Type = typeOf(v, c)
	if !strings.HasPrefix(e.Type, "struct") {
		e.Constraint = c
	}
	// Only a default the author marked (*x | ...) is one: not an open list's implicit [], nor a
	// value that is concrete anyway.
	if d, ok := v.Default(); ok && d.IsConcrete() && hasMarkedDefault(v) {
		if b, err := format.Node(d.Syntax(cue.Final())); err == nil && !strings.Contains(string(b), "\n\n") {
			e.Default = string(b)
		}
	}
	e.Allowed = allowedValues(v)
	if len(e.Allowed) == 0 && v.IncompleteKind() == cue.ListKind {
		e.Allowed = allowedValues(v.LookupPath(cue.MakePath(cue.AnyIndex)))
	}
	if v.IncompleteKind() == cue.StructKind {
		it, err := v.Fields(cue.Optional(true), cue.Definitions(true))
		if err == nil {
			for it.Next() {
				sel := it.Selector()
				name := sel.String()
				if strings.HasPrefix(name, "_") {
					continue
				}
				summary := docOf(it.Value())
				if i := strings.IndexAny(summary, "\n"); i >= 0 {
					summary = summary[:i]
				}
				e.Fields = append(e.Fields, FieldDoc{Name: strings.TrimSuffix(strings.TrimSuffix(name, "?"), "!"), Optional: sel.ConstraintType() == cue.OptionalConstraint, Summary: summary})
			}
		}
	}
	return e
}

// allowedValues lists the concrete alternatives of a disjunction (defaults marked with *).
func allowedValues(v cue.Value) []string {
	op, args := v.Expr()
	if op != cue.OrOp {
		return nil
	}
	def, hasDef := v.Default()
	var out []string
	for _, a := range args {
		if !a.IsConcrete() {
			continue
		}
		b, err := format.Node(a.Syntax(cue.Final()))
		if err != nil {
			continue
		}
		s := string(b)
		if hasDef && def.IsConcrete() && a.Equals(def) && len(args) > 1 {
			s = "*" + s
		}
		out = append(out, s)
	}
	return out
}

// String prints the explanation for people.
func (e *Explanation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", e.Path)
	fmt.Fprintf(&b, "  type:       %s\n", e.Type)
	if e.Optional {
		b.WriteString("  optional:   yes, no default (leave it out for none)\n")
	}
	if e.Default != "" {
		fmt.Fprintf(&b, "  default:    %s\n", e.Default)
	}
	if len(e.Allowed) > 0 {
		fmt.Fprintf(&b, "  allowed:    %s\n", strings.Join(e.Allowed, ", "))
	}
	if e.Constraint != "" && len(e.Allowed) == 0 {
		fmt.Fprintf(&b, "  constraint: %s\n", e.Constraint)
	}
	if e.Doc != "" {
		b.WriteString("\n")
		for _, l := range strings.Split(e.Doc, "\n") {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	if len(e.Fields) > 0 {
		b.WriteString("\nsettings:\n")
		for _, f := range e.Fields {
			opt := ""
			if f.Optional {
				opt = "?"
			}
			fmt.Fprintf(&b, "  %-20s %s\n", f.Name+opt, f.Summary)
		}
	}
	return b.String()
}

// lookupAny looks p up selector by selector, also as an optional (x?) or required (x!) field;
// optional says the last one is an optional field.
func lookupAny(v cue.Value, p cue.Path) (_ cue.Value, optional, ok bool) {
	for _, sel := range p.Selectors() {
		found := false
		for _, s := range []cue.Selector{sel, sel.Optional(), sel.Required()} {
			if w := v.LookupPath(cue.MakePath(s)); w.Exists() {
				optional = isOptional(v, sel)
				v, found = w, true
				break
			}
		}
		if !found {
			return v, false, false
		}
	}
	return v, optional, true
}

// isOptional says whether the field sel of struct v is an optional one (x?).
func isOptional(v cue.Value, sel cue.Selector) bool {
	if sel.Type()&(cue.StringLabel|cue.DefinitionLabel) == 0 {
		return false
	}
	it, err := v.Fields(cue.Optional(true), cue.Definitions(true))
	if err != nil {
		return false
	}
	name := strings.TrimRight(sel.String(), "?!")
	for it.Next() {
		if s := it.Selector(); strings.TrimRight(s.String(), "?!") == name {
			return s.ConstraintType() == cue.OptionalConstraint
		}
	}
	return false
}

// hasMarkedDefault says whether v has a default the author marked (*x | ...): CUE then gives a
// default for a value that is not concrete itself (an open list is concrete, its [] is no default).
func hasMarkedDefault(v cue.Value) bool {
	_, ok := v.Default()
	return ok && !v.IsConcrete()
}

// constraintOf returns a setting's constraint as written in its package ([...#HWCap]), else as
// CUE prints it, without import lines or the let clauses CUE adds for references to other
// packages; "" when it cannot be printed readably.
func constraintOf(v cue.Value) string {
	var n ast.Node
	if src, ok := v.Source().(*ast.Field); ok {
		n = src.Value
	} else if src, ok := v.Source().(ast.Expr); ok {
		n = src
	} else {
		syn := v.Syntax(cue.Raw())
		if f, ok := syn.(*ast.File); ok {
			var rest []ast.Decl
			for _, d := range f.Decls {
				switch d.(type) {
				case *ast.ImportDecl, *ast.LetClause, *ast.CommentGroup, *ast.Package, *ast.Attribute:
					continue
				}
				rest = append(rest, d)
			}
			if len(rest) != 1 {
				return ""
			}
			if em, ok := rest[0].(*ast.EmbedDecl); ok {
				syn = em.Expr
			} else {
				return ""
			}
		}
		n = syn
	}
	s := shortExpr(n)
	if strings.HasPrefix(s, "import ") || strings.Contains(s, ".#x") {
		return ""
	}
	if len(s) > 300 {
		s = s[:300] + " ..."
	}
	return s
}

// shortExpr prints an expression on one line; the long list and struct literals of a
// conjunction (the rules a configuration compiles to) are shortened to [...] and {...}.
func shortExpr(n ast.Node) string {
	if b, ok := n.(*ast.BinaryExpr); ok && b.Op == token.AND {
		x, y := shortExpr(b.X), shortExpr(b.Y)
		shorten := func(s string, e ast.Expr) string {
			if len(s) <= 80 {
				return s
			}
			switch e.(type) {
			case *ast.ListLit:
				return "[...]"
			case *ast.StructLit:
				return "{...}"
			}
			return s
		}
		return shorten(x, b.X) + " & " + shorten(y, b.Y)
	}
	b, err := format.Node(n)
	if err != nil {
		return ""
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		// Comments are the doc's business: drop them (a // inside a string stays).
		if i := strings.Index(l, "//"); i >= 0 && strings.Count(l[:i], `"`)%2 == 0 {
			l = l[:i]
		}
		lines = append(lines, l)
	}
	return strings.Join(strings.Fields(strings.Join(lines, "\n")), " ")
}

var reRef = regexp.MustCompile(`^(\w+\.)?#\w+$`)

var reListOf = regexp.MustCompile(`^\[(?:\.\.\.([#\w.]+)|([#\w.]+), \.\.\.([#\w.]+))\]$`)

// typeOf returns the kind of a setting for people: "string", "int | string", "list of #Term",
// "non-empty list of #Vendor", "list of string".
func typeOf(v cue.Value, constraint string) string {
	k := v.IncompleteKind()
	first, _, _ := strings.Cut(constraint, " & ")
	if k == cue.StructKind || k == cue.BottomKind {
		if reRef.MatchString(first) {
			return "struct (" + first + ")"
		}
		return "struct"
	}
	if k != cue.ListKind {
		return k.String()
	}
	if m := reListOf.FindStringSubmatch(first); m != nil {
		if m[1] != "" {
			return "list of " + m[1]
		}
		if m[2] == m[3] {
			return "non-empty list of " + m[2]
		}
	}
	for _, sel := range []cue.Selector{cue.AnyIndex, cue.Index(0)} {
		if el := v.LookupPath(cue.MakePath(sel)); el.Exists() {
			return "list of " + el.IncompleteKind().String()
		}
	}
	return k.String()
}

// PackageDoc is one package of compatkit's CUE module that explain documents: a domain or a
// group template.
type PackageDoc struct {
	// Path is what explain takes: "gpu/nvidia", "templates/cuda".
	Path string `json:"path"`
	// Import is the import path, with the package name when it differs from the directory's.
	Import string `json:"import"`
	// Summary is the first sentence of the package's doc comment.
	Summary string `json:"summary,omitempty"`
	// External is the directory the domain's files come from (below an entry of
	// Options.CUEPath), "" when it is built in.
	External string `json:"external,omitempty"`
}

// ListPackages lists the domains and group templates of compatkit's CUE module, with those of
// opts.CUEPath (or COMPATKIT_CUE_PATH), sorted: domains first, then templates.
func ListPackages(opts Options) ([]PackageDoc, error) {
	fsys, mounted, err := moduleFS(opts.cuePath())
	if err != nil {
		return nil, err
	}
	byDir := map[string][]string{}
	for p := range fsys {
		if !strings.HasSuffix(p, ".cue") || strings.Contains(p, "/examples/") ||
			!(strings.HasPrefix(p, "domains/") || strings.HasPrefix(p, "templates/")) {
			continue
		}
		byDir[path.Dir(p)] = append(byDir[path.Dir(p)], p)
	}
	var out []PackageDoc
	for dir, files := range byDir {
		if dir == "domains" || dir == "templates" {
			continue
		}
		sort.Strings(files)
		d := PackageDoc{Path: strings.TrimPrefix(dir, "domains/")}
		pkg := ""
		for _, p := range files {
			f, err := parser.ParseFile(p, fsys[p], parser.ParseComments)
			if err != nil {
				continue
			}
			if pkg == "" {
				pkg = f.PackageName()
			}
			if d.Summary == "" {
				d.Summary = firstSentence(packageDoc([]*ast.File{f}))
			}
			if real, ok := mounted[p]; ok && d.External == "" {
				d.External = filepath.Dir(real)
			}
		}
		d.Import = "compatkit.dev/" + dir
		if pkg != "" && pkg != path.Base(dir) {
			d.Import += ":" + pkg
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		ti, tj := strings.HasPrefix(out[i].Path, "templates/"), strings.HasPrefix(out[j].Path, "templates/")
		if ti != tj {
			return tj
		}
		return out[i].Path < out[j].Path
	})
	return out, nil
}

// firstSentence returns the first sentence of a doc comment's first paragraph, on one line.
func firstSentence(doc string) string {
	para, _, _ := strings.Cut(doc, "\n\n")
	s := strings.Join(strings.Fields(para), " ")
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i+1]
	}
	return s
}
