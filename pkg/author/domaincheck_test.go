package author

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// slurmDomain writes a domain hpc-style: ROOT/slurm with docs, README, examples; files overrides
// or adds files (path relative to the domain directory).
func slurmDomain(t *testing.T, files map[string]string) (root, dir string) {
	t.Helper()
	root = t.TempDir()
	tree := map[string]string{
		"slurm/slurm.cue": `// Package slurm describes what a job image needs of a Slurm node.
package slurm

import "compatkit.dev/cue:compat"

// #Config is what a job image needs; rules holds the NFD rules it compiles to.
#Config: {
	// partition the node must belong to (local.feature slurm.partition), e.g. "gpu".
	partition?: string
	// rules are the NFD rules this configuration compiles to.
	rules: [...compat.#Rule] & [
		if partition != _|_ {
			name: "Slurm partition \(partition)"
			matchFeatures: [{feature: "local.feature", matchExpressions: "slurm.partition": {op: "In", value: [partition]}}]
		},
	]
}
`,
		"slurm/README.md": "# slurm\n\n```cue\nimport \"compatkit.dev/domains/slurm\"\n\nrequired: (slurm.#Config & {partition: \"gpu\"}).rules\n```\n\n```" + FragmentMarker + "\npartition: \n```\n",
		"slurm/examples/good/gpu.cue": `package app

import "compatkit.dev/domains/slurm"

required: (slurm.#Config & {partition: "gpu"}).rules
`,
		"slurm/examples/bad/typo.cue": `// error: partitoin
package app

import "compatkit.dev/domains/slurm"

required: (slurm.#Config & {partitoin: "gpu"}).rules
`,
	}
	for k, v := range files {
		tree["slurm/"+k] = v
	}
	for k, v := range tree {
		if v == "" {
			continue
		}
		p := filepath.Join(root, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Dir(p), filepath.Base(p), v)
	}
	return root, filepath.Join(root, "slurm")
}

func TestCheckDomainClean(t *testing.T) {
	t.Setenv(CUEPathEnv, "")
	_, dir := slurmDomain(t, nil)
	if ps := CheckDomain(dir, Options{}); len(ps) != 0 {
		t.Errorf("want no problems, got\n%v", &Error{Problems: ps})
	}
}

func TestCheckDomainProblems(t *testing.T) {
	t.Setenv(CUEPathEnv, "")
	_, dir := slurmDomain(t, map[string]string{
		// account has no doc and no example; the good example sets a setting that does not exist.
		"slurm.cue": `// Package slurm describes what a job image needs of a Slurm node.
package slurm

import "compatkit.dev/cue:compat"

// #Config is what a job image needs.
#Config: {
	// partition the node must belong to.
	partition?: string
	account?: string
	// rules are the NFD rules.
	rules: [...compat.#Rule] & [
		if partition != _|_ {
			name: "Slurm partition \(partition)"
			matchFeatures: [{feature: "local.feature", matchExpressions: "slurm.partition": {op: "In", value: [partition]}}]
		},
	]
}

helper: 1
`,
		"examples/good/gpu.cue": `package app

import "compatkit.dev/domains/slurm"

required: (slurm.#Config & {partition: "gpu", qos: "high"}).rules
`,
		"examples/bad/compiles.cue": "// error: nope\npackage app\n\nimport \"compatkit.dev/domains/slurm\"\n\nrequired: (slurm.#Config & {partition: \"cpu\"}).rules\n",
		"README.md":                 "# slurm\n\n## Use\n\n```cue\nimport \"compatkit.dev/domains/slurm\"\n\nrequired: (slurm.#Config & {partiton: \"gpu\"}).rules\n```\n",
	})
	ps := CheckDomain(dir, Options{})
	got := (&Error{Problems: ps}).Error()
	for _, want := range []string{
		filepath.Join(dir, "slurm.cue") + ":10:2: #Config.account has no doc comment",
		filepath.Join(dir, "slurm.cue") + ":20:1: helper has no doc comment",
		filepath.Join(dir, "slurm.cue") + ":10:2: setting account is used by no examples/good file",
		filepath.Join(dir, "examples/good/gpu.cue") + ":5:",
		"(a good example must compile)",
		"qos",
		filepath.Join(dir, "examples/bad/compiles.cue") + ":1: a bad example must fail",
		filepath.Join(dir, "README.md") + ":8:",
		"partiton",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("want %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "setting partition") {
		t.Errorf("partition is set by a good example:\n%s", got)
	}
	// Relative to Options.Dir.
	ps = CheckDomain(dir, Options{Dir: dir})
	if s := (&Error{Problems: ps}).Error(); !strings.Contains(s, "\nslurm.cue:10:2: #Config.account") && !strings.HasPrefix(s, "slurm.cue:10:2: #Config.account") {
		t.Errorf("want positions relative to Dir:\n%s", s)
	}
}

// TestCheckDomainNested: a domain below a CUE path root keeps its path (hpc/slurm).
func TestCheckDomainNested(t *testing.T) {
	t.Setenv(CUEPathEnv, "")
	root, _ := slurmDomain(t, nil)
	nested := filepath.Join(root, "hpc")
	if err := os.MkdirAll(nested, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "slurm"), filepath.Join(nested, "slurm")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(nested, "slurm")
	// The examples import compatkit.dev/domains/slurm: with root as the CUE path, that is not found.
	ps := CheckDomain(dir, Options{CUEPath: []string{root}})
	if s := (&Error{Problems: ps}).Error(); !strings.Contains(s, "compatkit.dev/domains/slurm") {
		t.Errorf("got %s", s)
	}
	// Without a CUE path, the parent (hpc) is the root and the imports resolve.
	if ps := CheckDomain(dir, Options{}); len(ps) != 0 {
		t.Errorf("got %v", &Error{Problems: ps})
	}
}

func TestCheckDomainNotADomain(t *testing.T) {
	root, _ := slurmDomain(t, nil)
	ps := CheckDomain(root, Options{})
	if len(ps) != 1 || !strings.Contains(ps[0].Msg, "not the directory holding domains") {
		t.Errorf("got %v", ps)
	}
}

// TestCUEPathIsTheDomain: a CUE path entry that holds .cue files itself is the domain, not its
// parent: say so instead of "cannot find module".
func TestCUEPathIsTheDomain(t *testing.T) {
	_, dir := slurmDomain(t, nil)
	_, err := Compile(t.Context(), []string{filepath.Join(dir, "examples/good/gpu.cue")}, Options{CUEPath: []string{dir}})
	if err == nil || !strings.Contains(err.Error(), "must be the directory holding the domain directories (DIR's parent, here "+filepath.Dir(dir)) {
		t.Errorf("got %v", err)
	}
}
