package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A domain written as CUE files only, outside the repository, is usable by a spec through
// --cue-path without rebuilding anything.
func TestCUEPathDomain(t *testing.T) {
	t.Setenv("COMPATKIT_CUE_PATH", "")
	dir := t.TempDir()
	dom := filepath.Join(dir, "hpc", "slurm")
	if err := os.MkdirAll(dom, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dom, "slurm.cue", `// Package slurm: what a Slurm job step image needs.
package slurm

// #Rule requires PMIx, which Slurm's MPI plugin uses, as compatkit's own mpi source publishes it.
#Rule: {
	name: "PMIx"
	matchFeatures: [{feature: "compatkit.mpi", matchExpressions: pmix: {op: "Exists"}}]
}
`)
	specFile := writeFile(t, t.TempDir(), "compat.cue", `import "compatkit.dev/domains/hpc/slurm"

version: "v1alpha1"
compatibilities: [{rules: [slurm.#Rule]}]
`)
	out, stderr, code := runCLI(t, "export", specFile, "--cue-path", dir)
	if code != 0 || !strings.Contains(out, "compatkit.mpi") {
		t.Fatalf("export with --cue-path: exit %d, %s %s", code, out, stderr)
	}
	_, stderr, code = runCLI(t, "vet", specFile)
	if code == 0 || !strings.Contains(stderr, "hpc/slurm") {
		t.Fatalf("vet without --cue-path must fail naming the import: exit %d, %s", code, stderr)
	}
}

// A CUE path adds domains; it cannot add files to one of compatkit's own packages.
func TestCUEPathCannotExtendBuiltin(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "evil", "gpu", "nvidia"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "evil", "gpu", "nvidia"), "extra.cue", "package nvidia\n\nextraTerm: {feature: \"pci.device\"}\n")
	doc := writeFile(t, dir, "compat.cue", "import \"compatkit.dev/domains/gpu/nvidia\"\n\nrequired: (nvidia.#Config & {driver: \"550\"}).rules\n")
	_, stderr, code := runCLI(t, "vet", "--cue-path", filepath.Join(dir, "evil"), doc)
	if code == 0 || !strings.Contains(stderr, "would add to compatkit's own package domains/gpu/nvidia") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}
