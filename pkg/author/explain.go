package author

import (
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/load"

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
	// Default is the default value in CUE syntax, "" when there is none.
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
		if v, ok := lookupAny(root, c); ok {
			return explainValue(dir+"."+c.String(), v, ""), nil
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
	e.Type = v.IncompleteKind().String()
	// An open list's implicit [] is not a default the author wrote.
	if d, ok := v.Default(); ok && d.IsConcrete() && !(d.Kind() == cue.ListKind && !v.IsConcrete()) {
		if b, err := format.Node(d.Syntax(cue.Final())); err == nil {
			e.Default = string(b)
		}
	}
	e.Allowed = allowedValues(v)
	if len(e.Allowed) == 0 && v.IncompleteKind() == cue.ListKind {
		e.Allowed = allowedValues(v.LookupPath(cue.MakePath(cue.AnyIndex)))
	}
	if v.IncompleteKind() != cue.StructKind {
		if b, err := format.Node(v.Syntax(cue.Raw())); err == nil {
			s := strings.Join(strings.Fields(string(b)), " ")
			if len(s) > 300 {
				s = s[:300] + " ..."
			}
			e.Constraint = s
		}
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

// lookupAny looks p up selector by selector, also as an optional (x?) or required (x!) field.
func lookupAny(v cue.Value, p cue.Path) (cue.Value, bool) {
	for _, sel := range p.Selectors() {
		found := false
		for _, s := range []cue.Selector{sel, sel.Optional(), sel.Required()} {
			if w := v.LookupPath(cue.MakePath(s)); w.Exists() {
				v, found = w, true
				break
			}
		}
		if !found {
			return v, false
		}
	}
	return v, true
}
