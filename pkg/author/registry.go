package author

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compatkit/compatkit/internal/fileutil"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/mod/modconfig"
	"cuelang.org/go/mod/modfile"
	"cuelang.org/go/mod/module"

	"github.com/compatkit/compatkit/internal/memfs"
)

// Registry imports.
//
// A spec may import CUE modules published in a CUE module registry ("example.com/hpc/slurm@v0").
// The user declares them the CUE way, in a cue.mod/module.cue of their own, found by walking up
// from the directory of each .cue input:
//
//	module: "example.com/images@v0"   // ignored: only deps are taken
//	language: version: "v0.17.1"
//	deps: "example.com/hpc@v0": v: "v0.1.0"
//
// The user's files are not loaded as part of that module but inside the virtual copy of
// compatkit.dev@v0 (so that "compatkit.dev/cue:compat" keeps resolving to the embedded schema):
// the deps are merged into the virtual module's cue.mod/module.cue and load.Config.Registry is set
// from modconfig.NewRegistry, which honours the cue tool's environment (CUE_REGISTRY,
// CUE_CACHE_DIR, logins from `cue login`). Without such deps nothing changes and no registry is
// contacted.

// userDeps are the dependencies declared by the user's module.cue files.
type userDeps struct {
	files []string                // the module.cue files that declare deps, absolute
	deps  map[string]*modfile.Dep // module path with major version -> dep
	from  map[string]string       // module path -> the module.cue file that declared it

	cacheDir string // set by apply: the CUE cache directory, slash-separated, no leading "/"
}

// moduleFileFor returns the cue.mod/module.cue that governs a file in dir, found by walking up from
// dir, or "" when there is none.
func moduleFileFor(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "cue.mod", "module.cue")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", nil
		}
		dir = parent
	}
}

// readUserDeps finds the module.cue files of the .cue inputs and returns the deps they declare,
// nil when none declares any. A module.cue without a deps field is not parsed beyond its syntax,
// so a legacy or unusual file that declares nothing changes nothing.
func readUserDeps(cueFiles []string) (*userDeps, error) {
	seen := map[string]bool{}
	var ud *userDeps
	for _, f := range cueFiles {
		mf, err := moduleFileFor(filepath.Dir(f))
		if err != nil {
			return nil, fmt.Errorf("author: looking for the cue.mod/module.cue of %s: %w", f, err)
		}
		if mf == "" || seen[mf] {
			continue
		}
		seen[mf] = true
		data, err := fileutil.ReadLimited(mf, MaxInputBytes)
		if err != nil {
			return nil, fmt.Errorf("author: %w", err)
		}
		syn, err := parser.ParseFile(mf, data)
		if err != nil {
			return nil, fmt.Errorf("author: %s: %w", mf, err)
		}
		if !hasField(syn, "deps") {
			continue
		}
		// Only deps are taken: the file's own module path (and source, custom) do not matter, the
		// user's files are loaded inside the virtual compatkit.dev@v0 module.
		parsed, err := modfile.ParseNonStrict(data, mf)
		if err != nil {
			return nil, fmt.Errorf("author: %s: %w", mf, err)
		}
		if len(parsed.Deps) == 0 {
			continue
		}
		if ud == nil {
			ud = &userDeps{deps: map[string]*modfile.Dep{}, from: map[string]string{}}
		}
		ud.files = append(ud.files, mf)
		for mpath, dep := range parsed.Deps {
			if dep.ReplaceWith != "" {
				return nil, fmt.Errorf("author: %s: deps %q: replaceWith is not supported; use --cue-path (COMPATKIT_CUE_PATH) for local directories", mf, mpath)
			}
			if prev, ok := ud.deps[mpath]; ok && prev.Version != dep.Version {
				return nil, fmt.Errorf("author: %s wants %s %s but %s wants %s: the .cue inputs must agree on their dependencies", ud.from[mpath], mpath, prev.Version, mf, dep.Version)
			}
			d := *dep
			ud.deps[mpath] = &d
			ud.from[mpath] = mf
		}
	}
	return ud, nil
}

// hasField reports whether f declares a top-level field named name.
func hasField(f *ast.File, name string) bool {
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.Field); ok {
			if n, _, _ := ast.LabelName(fd.Label); n == name {
				return true
			}
		}
	}
	return false
}

// apply merges the deps into the virtual module's cue.mod/module.cue (keeping its module path and
// language version) and sets cfg.Registry from the cue tool's environment.
func (ud *userDeps) apply(fsys memfs.FS, cfg *load.Config) error {
	const modPath = "cue.mod/module.cue"
	mf, err := modfile.Parse(fsys[modPath], embeddedPrefix+modPath)
	if err != nil {
		return fmt.Errorf("author: reading the embedded %s: %w", modPath, err)
	}
	self := mf.QualifiedModule()
	mf.Deps = map[string]*modfile.Dep{}
	for mpath, dep := range ud.deps {
		if base, _, _ := module.SplitPathVersion(mpath); mpath == self || base == mf.ModulePath() {
			// A published domain may depend on compatkit.dev@v0 for its schema: the embedded
			// module, being the main module, stands in for every version of it.
			continue
		}
		mf.Deps[mpath] = dep
	}
	if len(mf.Deps) == 0 {
		return nil
	}
	data, err := modfile.Format(mf)
	if err != nil {
		return fmt.Errorf("author: %s: merging deps into compatkit.dev@v0's module.cue: %w", ud.names(), err)
	}
	fsys[modPath] = data
	// The cue tool's cache directory, absolute: modules fetched from the registry are extracted
	// below it, and the loader reads them through cfg.FS at their OS paths.
	cacheDir := os.Getenv("CUE_CACHE_DIR")
	if cacheDir == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("author: %s declares deps but there is no CUE cache directory: %w (set CUE_CACHE_DIR)", ud.names(), err)
		}
		cacheDir = filepath.Join(d, "cue")
	}
	if cacheDir, err = filepath.Abs(cacheDir); err != nil {
		return fmt.Errorf("author: CUE_CACHE_DIR: %w", err)
	}
	reg, err := modconfig.NewRegistry(&modconfig.Config{
		ClientType: "compatkit",
		Env:        append(os.Environ(), "CUE_CACHE_DIR="+cacheDir),
	})
	if err != nil {
		return fmt.Errorf("author: %s declares deps but the CUE registry cannot be set up: %w (check CUE_REGISTRY and CUE_CACHE_DIR)", ud.names(), err)
	}
	cfg.Registry = reg
	// In FS mode, cue/load (v0.17.1) reads the files of registry modules through cfg.FS too, at
	// their absolute OS paths in the cache: serve those from the OS.
	ud.cacheDir = strings.TrimPrefix(filepath.ToSlash(cacheDir), "/")
	cfg.FS = &withCache{mem: fsys, prefix: ud.cacheDir, os: os.DirFS(cacheDir)}
	return nil
}

// realPath returns the OS path of p, a path of the virtual FS without its leading "/", when p lies
// in the CUE cache (a file of a registry module).
func (ud *userDeps) realPath(p string) (string, bool) {
	if ud == nil || ud.cacheDir == "" || (p != ud.cacheDir && !strings.HasPrefix(p, ud.cacheDir+"/")) {
		return "", false
	}
	return filepath.FromSlash("/" + p), true
}

// withCache is the virtual module's FS plus the CUE cache directory at its OS path.
type withCache struct {
	mem    memfs.FS
	prefix string // the cache directory, slash-separated, without the leading "/"
	os     fs.FS  // os.DirFS(cache directory)
}

// cached returns the name inside the cache directory when name lies in it.
func (w *withCache) cached(name string) (string, bool) {
	if name == w.prefix {
		return ".", true
	}
	if rest, ok := strings.CutPrefix(name, w.prefix+"/"); ok {
		return rest, true
	}
	return "", false
}

func (w *withCache) Open(name string) (fs.File, error) {
	if rest, ok := w.cached(name); ok {
		return w.os.Open(rest)
	}
	return w.mem.Open(name)
}

func (w *withCache) ReadDir(name string) ([]fs.DirEntry, error) {
	if rest, ok := w.cached(name); ok {
		return fs.ReadDir(w.os, rest)
	}
	return w.mem.ReadDir(name)
}

func (w *withCache) Stat(name string) (fs.FileInfo, error) {
	if rest, ok := w.cached(name); ok {
		return fs.Stat(w.os, rest)
	}
	return w.mem.Stat(name)
}

// names lists the module.cue files, for messages.
func (ud *userDeps) names() string {
	return strings.Join(ud.files, ", ")
}

// modules lists the dependencies as "path@version", sorted, for messages.
func (ud *userDeps) modules() string {
	var l []string
	for mpath, dep := range ud.deps {
		l = append(l, mpath+" "+dep.Version)
	}
	sort.Strings(l)
	return strings.Join(l, ", ")
}

// hint is appended to the messages of import errors when registry deps are in use.
func (ud *userDeps) hint() string {
	return fmt.Sprintf("(dependencies %s declared in %s; check CUE_REGISTRY and that those versions are published)", ud.modules(), ud.names())
}

// annotate adds the hint to the problems of a failed load that concern the registry deps (they
// name one of the modules, or are the loader's bare "import failed" at an import's position) and
// drops an "import failed" that only repeats another problem at the same position.
func (ud *userDeps) annotate(ps []Problem) []Problem {
	var bases []string
	for mpath := range ud.deps {
		base, _, _ := module.SplitPathVersion(mpath)
		bases = append(bases, base)
	}
	type pos struct {
		file      string
		line, col int
	}
	named := map[pos]bool{}
	for i, p := range ps {
		for _, b := range bases {
			if strings.Contains(p.Msg, `"`+b) || strings.Contains(p.Msg, " "+b+"@") {
				ps[i].Msg = p.Msg + " " + ud.hint()
				named[pos{p.File, p.Line, p.Column}] = true
				break
			}
		}
	}
	kept := ps[:0]
	for _, p := range ps {
		if p.Msg == "import failed" {
			if named[pos{p.File, p.Line, p.Column}] {
				continue
			}
			p.Msg += " " + ud.hint()
		}
		kept = append(kept, p)
	}
	return kept
}
