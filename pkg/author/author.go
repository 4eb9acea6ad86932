// Package author compiles what image authors write, CUE or YAML/JSON, to image-compatibility specs.
//
// Inputs are loaded together with compatkit's embedded CUE module (compatkit.CUEModule), so a user
// file anywhere on disk may import "compatkit.dev/cue:compat" and "compatkit.dev/templates/...".
// The user's top-level value is unified with compat.#Document (closed: a misspelt field is an
// error with its position), must be concrete, and is exported to one spec.Spec per platform.
//
// Inputs:
//   - .cue files: all of them are loaded together as one CUE instance (they must share one package
//     clause, or have none), like `cue export a.cue b.cue`. They may import the embedded module,
//     CUE's standard library, domain directories of Options.CUEPath, and modules from a CUE
//     registry that the user's own cue.mod/module.cue declares in deps (see registry.go).
//   - .yaml, .yml and .json files: each is one document (a YAML stream of several documents is an
//     error), with positions from the file itself.
//   - Mixed inputs are unified into a single document, as `cue export a.cue b.yaml` would: a YAML
//     file may, for example, give the per-platform specs and a CUE file the default one. Values
//     that two inputs both set must agree.
package author

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/compatkit/compatkit/internal/fileutil"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/cue/token"
	cuejson "cuelang.org/go/encoding/json"
	cueyaml "cuelang.org/go/encoding/yaml"

	"github.com/compatkit/compatkit/pkg/spec"
)

// MaxInputBytes bounds each input file (.cue, .yaml, .json): the compiled spec is at most
// spec.MaxSpecBytes, so a larger source is a mistake, refused before CUE spends time on it.
const MaxInputBytes = 1 << 20

// Options tune Compile and Vet.
type Options struct {
	// Dir is the directory error positions are printed relative to ("" = paths as given).
	Dir string
	// CUEPath lists directories of extra domain modules, laid out like compatkit's domains/
	// directory and mounted under it: DIR/hpc/slurm/*.cue is imported as
	// "compatkit.dev/domains/hpc/slurm". CUE files only, nothing is rebuilt. nil means the
	// COMPATKIT_CUE_PATH environment variable (directories separated by ":").
	CUEPath []string
	// AllowFlags lists cpu.cpuid element names to accept although NFD v0.19 does not report them
	// (flags that an NFD newer than v0.19 reports). nil means the COMPATKIT_ALLOW_FLAGS environment
	// variable (names separated by commas or spaces).
	AllowFlags []string
}

// Result is a compiled document.
type Result struct {
	// Default is the top-level spec, nil if the document only has platforms.
	Default *spec.Spec
	// Platforms holds the per-platform specs, keyed "os/arch" or "os/arch/variant".
	Platforms map[string]*spec.Spec
	// Sources lists every input file, as given, with its sha256 digest, in input order.
	Sources []spec.SourceFile
	// Relax lists the document's relax entries: what it no longer requires of its base image's
	// spec (see Inherit).
	Relax []string

	val cue.Value // the evaluated document, for RulePos
	pm  *pathMapper
}

// RulePos returns the file:line:col where rule j of set i of platform's spec ("" = the default
// spec) was written, or "" when unknown (for Inherit's conflict messages).
func (r *Result) RulePos(platform string, set, rule int) string {
	if r.pm == nil {
		return ""
	}
	sels := []cue.Selector{}
	if platform != "" {
		sels = append(sels, cue.Str("platforms"), cue.Str(platform))
	}
	sels = append(sels, cue.Str("compatibilities"), cue.Index(set), cue.Str("rules"), cue.Index(rule))
	v := r.val.LookupPath(cue.MakePath(sels...))
	p := v.Pos()
	if !p.IsValid() || !r.pm.user[p.Filename()] {
		// A rule the sugar generated: find where the user wrote a rule of that name.
		name, err := v.LookupPath(cue.ParsePath("name")).String()
		if err != nil {
			return ""
		}
		for _, u := range r.pm.values {
			if q := findRule(u, name, r.pm.user, 0); q.IsValid() {
				p = q
				break
			}
		}
		if !p.IsValid() || !r.pm.user[p.Filename()] {
			return ""
		}
	}
	return fmt.Sprintf("%s:%d:%d", r.pm.rel(p.Filename()), p.Line(), p.Column())
}

// findRule returns the position of a struct with name: name in one of the user's files.
func findRule(v cue.Value, name string, user map[string]bool, depth int) token.Pos {
	if depth > 32 {
		return token.NoPos
	}
	switch v.IncompleteKind() {
	case cue.StructKind:
		if n, err := v.LookupPath(cue.ParsePath("name")).String(); err == nil && n == name {
			if p := v.Pos(); p.IsValid() && user[p.Filename()] {
				return p
			}
		}
		it, err := v.Fields(cue.Hidden(true))
		if err != nil {
			return token.NoPos
		}
		for it.Next() {
			if p := findRule(it.Value(), name, user, depth+1); p.IsValid() {
				return p
			}
		}
	case cue.ListKind:
		it, err := v.List()
		if err != nil {
			return token.NoPos
		}
		for it.Next() {
			if p := findRule(it.Value(), name, user, depth+1); p.IsValid() {
				return p
			}
		}
	}
	return token.NoPos
}

// Inherit applies the package function Inherit to platform's spec ("" = the default spec), with
// the document's relax entries and the positions of its rules.
func (r *Result) Inherit(platform string, base *spec.Spec, baseRef string) (*spec.Spec, *Inheritance, []Warning, error) {
	derived, err := r.For(platform)
	if err != nil {
		return nil, nil, nil, err
	}
	if _, ok := r.Platforms[platform]; !ok {
		platform = ""
	}
	return Inherit(base, baseRef, derived, r.Relax, func(i, j int) string { return r.RulePos(platform, i, j) })
}

// For returns the spec for platform ("" means the default one): Platforms[platform], else Default,
// else an error naming the platforms the document has.
func (r *Result) For(platform string) (*spec.Spec, error) {
	if platform != "" {
		if s, ok := r.Platforms[platform]; ok {
			return s, nil
		}
		// linux/arm64 and linux/arm64/v8 name the same platform (image-spec's default variant).
		for k, s := range r.Platforms {
			if canonicalPlatform(k) == canonicalPlatform(platform) {
				return s, nil
			}
		}
	}
	if r.Default != nil {
		return r.Default, nil
	}
	names := make([]string, 0, len(r.Platforms))
	for p := range r.Platforms {
		names = append(names, p)
	}
	sort.Strings(names)
	if platform == "" {
		return nil, fmt.Errorf("the document has no default spec, only specs for platforms %s", strings.Join(names, ", "))
	}
	return nil, fmt.Errorf("the document has no spec for platform %s and no default spec; it has specs for %s", platform, strings.Join(names, ", "))
}

// Vet checks files like Compile and reports every problem it finds (an *Error), or nil.
func Vet(ctx context.Context, files []string, opts Options) error {
	_, err := Compile(ctx, files, opts)
	return err
}

// Compile loads files (.cue, .yaml, .yml, .json) with the embedded CUE module, unifies them with
// compat.#Document and returns the specs. An invalid input gives an *Error listing every problem
// with its position; a file that cannot be read gives that I/O error.
func Compile(ctx context.Context, files []string, opts Options) (*Result, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("author: no input files")
	}
	in, err := loadInputs(ctx, files, opts)
	if err != nil {
		return nil, err
	}
	return in.evaluate()
}

// inputs are the loaded, not yet evaluated, inputs of one Compile call.
type inputs struct {
	pm      *pathMapper
	schema  *build.Instance // compatkit.dev/cue:compat
	user    *build.Instance // the user's .cue files, nil if none
	data    []dataFile      // the user's YAML/JSON files
	sources []spec.SourceFile
	allow   map[string]bool // Options.AllowFlags
}

type dataFile struct {
	path string
	expr ast.Expr
}

const (
	// inputDir is the directory of the virtual FS where user .cue files are placed.
	inputDir = "compatkit.input"
	// embeddedPrefix names files of the embedded module in positions.
	embeddedPrefix = "compatkit.dev@v0/"
)

// loadInputs reads and parses every file; it evaluates nothing.
func loadInputs(ctx context.Context, files []string, opts Options) (*inputs, error) {
	pm := &pathMapper{user: map[string]bool{}, virtual: map[string]string{}}
	if opts.Dir != "" {
		d, err := filepath.Abs(opts.Dir)
		if err != nil {
			return nil, err
		}
		pm.dir = d
	}
	in := &inputs{pm: pm, allow: opts.allowFlags()}
	fsys, mounted, err := moduleFS(opts.cuePath())
	if err != nil {
		return nil, err
	}
	virtual := pm.virtual // virtual path -> path as given
	var cueArgs []string
	var problems []Problem
	for i, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, err := fileutil.ReadLimited(f, MaxInputBytes)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		in.sources = append(in.sources, spec.SourceFile{Path: f, Digest: "sha256:" + hex.EncodeToString(sum[:])})
		pm.user[f] = true
		switch ext := strings.ToLower(filepath.Ext(f)); ext {
		case ".cue":
			v := path.Join(inputDir, fmt.Sprintf("f%04d.cue", i))
			fsys[v] = data
			virtual[v] = f
			cueArgs = append(cueArgs, "/"+v)
		case ".yaml", ".yml", ".json":
			expr, err := parseData(f, ext, data)
			if err != nil {
				problems = append(problems, pm.problems(err)...)
				continue
			}
			in.data = append(in.data, dataFile{path: f, expr: expr})
		default:
			return nil, fmt.Errorf("author: %s: unsupported file type %q (want .cue, .yaml, .yml or .json)", f, ext)
		}
	}
	var userFiles []string // the .cue inputs, as given
	for _, v := range cueArgs {
		userFiles = append(userFiles, virtual[strings.TrimPrefix(v, "/")])
	}
	deps, err := readUserDeps(userFiles)
	if err != nil {
		return nil, err
	}
	cfg := &load.Config{
		FS:  fsys,
		Dir: "/",
		FromFSPath: func(p string) string {
			p = strings.TrimPrefix(p, "/")
			if real, ok := deps.realPath(p); ok {
				return real
			}
			if real, ok := virtual[p]; ok {
				return real
			}
			if real, ok := mounted[p]; ok {
				return real
			}
			return embeddedPrefix + p
		},
	}
	if deps != nil {
		if err := deps.apply(fsys, cfg); err != nil {
			return nil, err
		}
	}
	insts := load.Instances([]string{"./cue"}, cfg)
	if len(insts) != 1 || insts[0].Err != nil {
		if len(insts) == 1 {
			if cfg.Registry != nil {
				return nil, fmt.Errorf("author: loading the embedded schema: %w %s", insts[0].Err, deps.hint())
			}
			return nil, fmt.Errorf("author: loading the embedded schema: %w", insts[0].Err)
		}
		return nil, fmt.Errorf("author: loading the embedded schema: %d instances", len(insts))
	}
	in.schema = insts[0]
	if len(cueArgs) > 0 {
		insts := load.Instances(cueArgs, cfg)
		for _, inst := range insts {
			if inst.Err != nil {
				ps := pm.problems(inst.Err)
				if cfg.Registry != nil {
					ps = deps.annotate(ps)
				}
				problems = append(problems, ps...)
			}
		}
		if len(insts) == 1 && insts[0].Err == nil {
			in.user = insts[0]
		}
	}
	if len(problems) > 0 {
		sortProblems(problems)
		return nil, &Error{Problems: pm.refine(problems, nil)}
	}
	return in, nil
}

// parseData parses a YAML or JSON file to a CUE expression whose positions name the file.
func parseData(name, ext string, data []byte) (ast.Expr, error) {
	if ext == ".json" {
		return cuejson.Extract(name, data)
	}
	f, err := cueyaml.Extract(name, data)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(data)) == 0 || len(f.Decls) == 0 {
		return nil, fmt.Errorf("%s: empty document", name)
	}
	// A single YAML document is a file of field declarations; a stream is one list expression.
	if len(f.Decls) == 1 {
		if es, ok := f.Decls[0].(*ast.EmbedDecl); ok {
			if _, isList := es.Expr.(*ast.ListLit); isList && bytes.Contains(data, []byte("\n---")) {
				return nil, fmt.Errorf("%s: a YAML stream of several documents is not a compatibility document", name)
			}
			return es.Expr, nil
		}
	}
	return &ast.StructLit{Elts: f.Decls}, nil
}

// evaluate builds the inputs in a fresh cue.Context, checks them against compat.#Document and
// exports the specs.
func (in *inputs) evaluate() (*Result, error) {
	cctx := cuecontext.New()
	schema := cctx.BuildInstance(in.schema)
	if err := schema.Err(); err != nil {
		return nil, fmt.Errorf("author: building the embedded schema: %w", err)
	}
	doc := schema.LookupPath(cue.ParsePath("#Document"))
	val := doc
	var problems []Problem
	if in.user != nil {
		u := cctx.BuildInstance(in.user)
		if err := u.Err(); err != nil {
			problems = append(problems, in.pm.problems(err)...)
		} else {
			in.pm.values = append(in.pm.values, u)
			val = val.Unify(u)
		}
	}
	for _, d := range in.data {
		v := cctx.BuildExpr(d.expr, cue.Filename(d.path))
		if err := v.Err(); err != nil {
			problems = append(problems, in.pm.problems(err)...)
			continue
		}
		if v.IncompleteKind() != cue.StructKind {
			problems = append(problems, in.pm.problemAt(d.path, d.expr, fmt.Sprintf("the document is a %s, want a mapping with version and compatibilities or platforms", v.IncompleteKind())))
			continue
		}
		in.pm.values = append(in.pm.values, v)
		val = val.Unify(v)
	}
	if len(problems) == 0 {
		problems = append(problems, in.validate(val)...)
	}
	if len(problems) > 0 {
		sortProblems(problems)
		return nil, &Error{Problems: in.pm.refine(problems, in.userFiles())}
	}
	return in.export(val)
}

// validate checks that val is valid and concrete and returns every problem. CUE's Validate keeps
// only the most severe kind of error (a conflict hides a missing field elsewhere) and does not
// descend into a struct that has an erroneous field, so the value at every path the user wrote is
// also validated on its own; the union, without duplicates, is reported.
func (in *inputs) validate(val cue.Value) []Problem {
	var problems []Problem
	seen := map[string]bool{}
	check := func(v cue.Value) {
		if err := v.Validate(cue.Concrete(true), cue.Final()); err != nil {
			for _, p := range in.pm.problems(err) {
				if k := p.String(); !seen[k] {
					seen[k] = true
					problems = append(problems, p)
				}
			}
		}
	}
	check(val)
	visited := map[string]bool{}
	var walk func(u cue.Value, sels []cue.Selector)
	walk = func(u cue.Value, sels []cue.Selector) {
		if len(sels) > 64 {
			return
		}
		switch u.IncompleteKind() {
		case cue.StructKind:
			it, err := u.Fields()
			if err != nil {
				return
			}
			for it.Next() {
				walk(it.Value(), append(sels[:len(sels):len(sels)], it.Selector()))
			}
		case cue.ListKind:
			it, err := u.List()
			if err != nil {
				return
			}
			for it.Next() {
				walk(it.Value(), append(sels[:len(sels):len(sels)], it.Selector()))
			}
		}
		if len(sels) == 0 {
			return
		}
		p := cue.MakePath(sels...)
		if visited[p.String()] {
			return
		}
		visited[p.String()] = true
		check(val.LookupPath(p))
	}
	for _, u := range in.pm.values {
		walk(u, nil)
	}
	// "needs matchFeatures or matchAny" also holds when those fields exist but are invalid: keep it
	// only when nothing below the same value is reported.
	kept := problems[:0]
	for _, p := range problems {
		if p.weak && slices.ContainsFunc(problems, func(q Problem) bool { return strings.HasPrefix(q.Path, p.Path+".") }) {
			continue
		}
		kept = append(kept, p)
	}
	sortProblems(kept)
	return hintFlags(kept)
}

// export turns a valid, concrete #Document into specs, parsed (and limit-checked) by spec.Parse.
func (in *inputs) export(val cue.Value) (*Result, error) {
	raw, err := val.MarshalJSON()
	if err != nil {
		return nil, &Error{Problems: in.pm.problems(err)}
	}
	var doc struct {
		Version         string                     `json:"version"`
		Compatibilities json.RawMessage            `json:"compatibilities"`
		Platforms       map[string]json.RawMessage `json:"platforms"`
		Relax           []string                   `json:"relax"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("author: decoding the exported document: %w", err)
	}
	res := &Result{Platforms: map[string]*spec.Spec{}, Sources: in.sources, Relax: doc.Relax, val: val, pm: in.pm}
	source := in.sourceName()
	var problems []Problem
	parse := func(name string, at []string, v json.RawMessage) *spec.Spec {
		s, err := spec.Parse(v, source+" ("+name+")")
		var fe *spec.FieldError
		switch {
		case errors.As(err, &fe):
			// Checks CUE leaves to spec.Parse (regexps, integer operands, ranges): point at the
			// user's field when the path leads there (sugar-generated sets have no source field).
			p := Problem{Path: strings.Join(append(append([]string{}, at...), fe.Path), "."), Msg: fe.Msg}
			if pos := in.pm.locate(append(append([]string{}, at...), splitFieldPath(fe.Path)...)); pos.IsValid() {
				p.File, p.Line, p.Column = in.pm.rel(pos.Filename()), pos.Line(), pos.Column()
			} else {
				p.Msg = name + ": " + p.Msg
			}
			problems = append(problems, p)
		case err != nil:
			problems = append(problems, Problem{Msg: err.Error()})
		default:
			problems = append(problems, in.checkCpuid(s, name, at)...)
			// Rules on compatkit's own features, in the form NFD can evaluate (local.feature).
			s.LocalizeCompatkit()
		}
		return s
	}
	if len(doc.Compatibilities) > 0 {
		b, _ := json.Marshal(map[string]any{"version": doc.Version, "compatibilities": doc.Compatibilities})
		res.Default = parse("default spec", nil, b)
	}
	for p, v := range doc.Platforms {
		// Keep only the spec's own fields: the #Requirements sugar has compiled to compatibilities.
		var ps struct {
			Version         string          `json:"version"`
			Compatibilities json.RawMessage `json:"compatibilities"`
		}
		if err := json.Unmarshal(v, &ps); err != nil {
			return nil, fmt.Errorf("author: decoding the exported spec of platform %s: %w", p, err)
		}
		b, _ := json.Marshal(ps)
		res.Platforms[p] = parse("platform "+p, []string{"platforms", strconv.Quote(p)}, b)
	}
	if res.Default == nil && len(doc.Platforms) == 0 && len(problems) == 0 {
		problems = append(problems, Problem{Msg: "the document has no spec: give version and compatibilities, or platforms"})
	}
	if len(problems) > 0 {
		sort.Slice(problems, func(i, j int) bool { return problems[i].Msg < problems[j].Msg })
		sortProblems(problems) // stable: by position, then by message
		// A typo in a rule shared by several platforms' specs is one problem.
		problems = slices.CompactFunc(problems, func(a, b Problem) bool { return a.String() == b.String() })
		return nil, &Error{Problems: problems}
	}
	return res, nil
}

// sourceName names the inputs in messages of spec.Parse.
func (in *inputs) sourceName() string {
	names := make([]string, len(in.sources))
	for i, s := range in.sources {
		names[i] = in.pm.rel(s.Path)
	}
	return strings.Join(names, ", ")
}

// canonicalPlatform drops arm64's default variant v8, so that linux/arm64 equals linux/arm64/v8.
func canonicalPlatform(p string) string {
	if rest, ok := strings.CutSuffix(p, "/arm64/v8"); ok {
		return rest + "/arm64"
	}
	return p
}

// splitFieldPath turns a spec.FieldError path ("compatibilities[0].rules[1].name") into CUE path
// elements ("compatibilities", "0", "rules", "1", "name").
func splitFieldPath(p string) []string {
	var out []string
	for _, part := range strings.Split(p, ".") {
		name, idx, _ := strings.Cut(part, "[")
		if name != "" {
			out = append(out, name)
		}
		for idx != "" {
			var n string
			n, idx, _ = strings.Cut(idx, "]")
			out = append(out, n)
			idx = strings.TrimPrefix(idx, "[")
		}
	}
	return out
}
