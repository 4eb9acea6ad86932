package author

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatkit/compatkit"
)

func TestExplainExamples(t *testing.T) {
	for _, c := range []struct{ path, want string }{
		{"gpu/nvidia.driver", "lowest driver version"},
		{"cue.#Compatibility.weight", "weight is the priority"},
		{"templates/x86-64-levels.v3", "x86-64-v3 or higher"},
		{"cpu/x86.level", "allowed:    1, 2, 3, 4"},
		{"gpu/nvidia.gpu", "default:    true"},
		{"cpu/arm64.hwcaps", `"SVE2"`},
		{"cue.#Requirements.preferred", "nice-to-have"},
		{"gpu/nvidia", "driver"},
	} {
		e, err := Explain(c.path, Options{})
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		if s := e.String(); !strings.Contains(s, c.want) {
			t.Errorf("%s: want %q in\n%s", c.path, c.want, s)
		}
	}
	if _, err := Explain("gpu/nvidia.drivr", Options{}); err == nil || !strings.Contains(err.Error(), "has no setting drivr") {
		t.Errorf("got %v", err)
	}
}

// TestExplainEveryDomainField runs Explain on every field of every domain's and template's
// definitions and top-level values: each must have a doc comment.
func TestExplainEveryDomainField(t *testing.T) {
	dirs := map[string]bool{}
	_ = fs.WalkDir(compatkit.CUEModule, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".cue") && !strings.Contains(p, "/examples/") &&
			(strings.HasPrefix(p, "domains/") || strings.HasPrefix(p, "templates/")) {
			dirs[filepath.Dir(p)] = true
		}
		return nil
	})
	if len(dirs) < 10 {
		t.Fatalf("found only %d domains and templates", len(dirs))
	}
	n := 0
	for dir := range dirs {
		pkg, err := Explain(dir, Options{})
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		if pkg.Doc == "" {
			t.Errorf("%s: no package doc", dir)
		}
		for _, f := range pkg.Fields {
			top, err := Explain(dir+"."+f.Name, Options{})
			if err != nil {
				t.Errorf("%v", err)
				continue
			}
			fields := []string{""}
			if strings.HasPrefix(f.Name, "#") && top.Type == "struct" {
				for _, sub := range top.Fields {
					fields = append(fields, "."+sub.Name)
				}
			}
			for _, sub := range fields {
				p := dir + "." + f.Name + sub
				e, err := Explain(p, Options{})
				n++
				switch {
				case err != nil:
					t.Errorf("%v", err)
				case e.Doc == "":
					t.Errorf("%s: no doc comment", p)
				}
			}
		}
	}
	t.Logf("explained %d settings", n)
}

// TestLocalDomain: a domain written as CUE files only, in a directory outside the repository, is
// usable by a spec through Options.CUEPath (or COMPATKIT_CUE_PATH) without rebuilding anything.
func TestLocalDomain(t *testing.T) {
	ext := t.TempDir()
	if err := os.MkdirAll(filepath.Join(ext, "hpc", "slurm"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, ext, "hpc/slurm/slurm.cue", `// Package slurm: nodes of a Slurm cluster.
package slurm

import "compatkit.dev/cue:compat"

// #Config is what a job image needs of the Slurm node.
#Config: {
	// partition the node must belong to (local.feature slurm.partition).
	partition: string
	// rules compiled from the settings.
	rules: [...compat.#Rule] & [{name: "slurm partition \(partition)", matchFeatures: [{feature: "local.feature", matchExpressions: "slurm.partition": {op: "In", value: [partition]}}]}]
}
`)
	user := write(t, t.TempDir(), "compat.cue", `package app

import (
	"list"

	"compatkit.dev/domains/hpc/slurm"
	"compatkit.dev/domains/kernel"
)

required: list.Concat([(slurm.#Config & {partition: "gpu"}).rules, (kernel.#Config & {min: "5.14"}).rules])
`)
	res, err := Compile(context.Background(), []string{user}, Options{CUEPath: []string{ext}})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Default.Compatibilities[0].Rules; len(r) != 2 || r[0].Name != "slurm partition gpu" {
		t.Errorf("got %+v", r)
	}
	t.Setenv(CUEPathEnv, ext)
	if _, err := Compile(context.Background(), []string{user}, Options{}); err != nil {
		t.Errorf("with %s: %v", CUEPathEnv, err)
	}
	if e, err := Explain("hpc/slurm.partition", Options{}); err != nil || !strings.Contains(e.Doc, "partition the node") {
		t.Errorf("explain: %v %v", e, err)
	}
	// An error in the local domain names the real file.
	write(t, ext, "hpc/slurm/bad.cue", "package slurm\n#Config: {partition: }\n")
	_, err = Compile(context.Background(), []string{user}, Options{CUEPath: []string{ext}})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(ext, "hpc/slurm/bad.cue")) {
		t.Errorf("got %v", err)
	}
	// Without the path the import fails.
	t.Setenv(CUEPathEnv, "")
	if _, err := Compile(context.Background(), []string{user}, Options{}); err == nil {
		t.Error("compiled without the CUE path")
	}
}

func TestScaffoldsVet(t *testing.T) {
	dir := t.TempDir()
	for _, s := range Scaffolds() {
		p := write(t, dir, s.Name+".cue", s.Content)
		if err := Vet(context.Background(), []string{p}, Options{}); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
	}
}

func TestExplainOptionalAndTypes(t *testing.T) {
	for _, c := range []struct {
		path, typ, def string
		optional       bool
	}{
		{"gpu/nvidia.devices", "list of string", "", true},
		{"gpu/nvidia.gpu", "bool", "true", false},
		{"cpu/x86.vendor", "non-empty list of #Vendor", "", true},
		{"cue.#Case.condition", "non-empty list of #Term", "", false},
		{"cue.#AtLeast.rule", "struct (#Rule)", "", false},
	} {
		e, err := Explain(c.path, Options{})
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		if e.Type != c.typ || e.Default != c.def || e.Optional != c.optional || strings.Contains(e.Constraint, "import") {
			t.Errorf("%s: got type %q default %q optional %v constraint %q", c.path, e.Type, e.Default, e.Optional, e.Constraint)
		}
	}
}

func TestListPackages(t *testing.T) {
	t.Setenv(CUEPathEnv, "")
	ps, err := ListPackages(Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]PackageDoc{}
	for _, p := range ps {
		got[p.Path] = p
		if p.Summary == "" || strings.Contains(p.Summary, "\n") {
			t.Errorf("%s: summary %q", p.Path, p.Summary)
		}
	}
	if p := got["gpu/nvidia"]; p.Import != "compatkit.dev/domains/gpu/nvidia" || !strings.HasPrefix(p.Summary, "Package nvidia describes") {
		t.Errorf("got %+v", p)
	}
	if p := got["templates/multi-arch"]; p.Import != "compatkit.dev/templates/multi-arch:multiarch" {
		t.Errorf("got %+v", p)
	}
	if !strings.HasPrefix(ps[len(ps)-1].Path, "templates/") || strings.HasPrefix(ps[0].Path, "templates/") {
		t.Errorf("want domains first, then templates: %v", ps)
	}
}
