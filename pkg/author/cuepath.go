package author

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/compatkit/compatkit/internal/fileutil"

	"github.com/compatkit/compatkit/internal/memfs"
)

// CUEPathEnv names the environment variable that gives Options.CUEPath when it is nil: directories
// separated by the OS path list separator (":" on Linux).
const CUEPathEnv = "COMPATKIT_CUE_PATH"

func (o Options) cuePath() []string {
	if o.CUEPath != nil {
		return o.CUEPath
	}
	if env := os.Getenv(CUEPathEnv); env != "" {
		return filepath.SplitList(env)
	}
	return nil
}

// mountCUEPath adds the .cue files of every directory of dirs to fsys under domains/, keeping their
// relative paths: DIR/hpc/slurm/slurm.cue becomes domains/hpc/slurm/slurm.cue, imported as
// "compatkit.dev/domains/hpc/slurm". It returns virtual path -> real path. A file that would
// replace one of compatkit's own, or add to one of its packages, is an error.
func mountCUEPath(fsys memfs.FS, dirs []string) (map[string]string, error) {
	mounted := map[string]string{}
	// The directories of compatkit's own .cue files, before anything is mounted.
	builtin := map[string]bool{}
	for name := range fsys {
		if strings.HasSuffix(name, ".cue") {
			builtin[path.Dir(name)] = true
		}
	}
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		if own, _ := filepath.Glob(filepath.Join(dir, "*.cue")); len(own) > 0 {
			abs, _ := filepath.Abs(dir)
			parent, base := filepath.Dir(abs), filepath.Base(abs)
			return nil, fmt.Errorf("author: CUE path %s (--cue-path or %s) holds .cue files itself (%s), so it is a domain: --cue-path DIR must be the directory holding the domain directories (DIR's parent, here %s; %s/*.cue is then imported as \"compatkit.dev/domains/%s\")", dir, CUEPathEnv, filepath.Base(own[0]), parent, base, base)
		}
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if n := d.Name(); p != dir && (strings.HasPrefix(n, ".") || n == "cue.mod") {
					return filepath.SkipDir
				}
				return nil
			}
			if filepath.Ext(p) != ".cue" {
				return nil
			}
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			v := path.Join("domains", filepath.ToSlash(rel))
			if builtin[path.Dir(v)] {
				return fmt.Errorf("%s would add to compatkit's own package %s: a CUE path adds domains, it does not change compatkit's; use another directory name", p, path.Dir(v))
			}
			if _, dup := fsys[v]; dup {
				if prev, ok := mounted[v]; ok {
					return fmt.Errorf("%s and %s both give %s", prev, p, v)
				}
				return fmt.Errorf("%s would replace compatkit's own %s: use another directory name", p, v)
			}
			b, err := fileutil.ReadLimited(p, MaxInputBytes)
			if err != nil {
				return err
			}
			fsys[v] = b
			mounted[v] = p
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("author: CUE path %s: %w", dir, err)
		}
	}
	return mounted, nil
}
