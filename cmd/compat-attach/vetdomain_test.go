package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVetDomain: vet --domain runs the domain checks on a domain outside the repository (its
// parent is the CUE path root): a field without a doc comment and a good example that does not
// compile are both reported at file:line; a clean domain passes.
func TestVetDomain(t *testing.T) {
	t.Setenv("COMPATKIT_CUE_PATH", "")
	dom := filepath.Join(t.TempDir(), "slurm")
	for _, d := range []string{"examples/good", "examples/bad"} {
		if err := os.MkdirAll(filepath.Join(dom, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := `// Package slurm describes what a job image needs of a Slurm node.
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
`
	writeFile(t, dom, "slurm.cue", cfg)
	writeFile(t, dom, "README.md", "# slurm\n\n```cue\nimport \"compatkit.dev/domains/slurm\"\n\nrequired: (slurm.#Config & {partition: \"gpu\"}).rules\n```\n")
	writeFile(t, filepath.Join(dom, "examples/good"), "gpu.cue", "package app\n\nimport \"compatkit.dev/domains/slurm\"\n\nrequired: (slurm.#Config & {partition: \"gpu\"}).rules\n")
	writeFile(t, filepath.Join(dom, "examples/bad"), "typo.cue", "// error: partitoin\npackage app\n\nimport \"compatkit.dev/domains/slurm\"\n\nrequired: (slurm.#Config & {partitoin: \"gpu\"}).rules\n")
	out, errOut, code := runCLI(t, "vet", "--domain", dom)
	if code != 0 || !strings.Contains(out, "every check passed") {
		t.Fatalf("clean domain: code %d\n%s\n%s", code, out, errOut)
	}

	writeFile(t, dom, "slurm.cue", strings.Replace(cfg, "	partition?: string\n", "	partition?: string\n	account?: string\n", 1))
	writeFile(t, filepath.Join(dom, "examples/good"), "gpu.cue", "package app\n\nimport \"compatkit.dev/domains/slurm\"\n\nrequired: (slurm.#Config & {partition: \"gpu\", account: 1}).rules\n")
	_, errOut, code = runCLI(t, "vet", "--domain", dom)
	for _, want := range []string{
		filepath.Join(dom, "slurm.cue") + ":10:2: #Config.account has no doc comment",
		filepath.Join(dom, "examples/good/gpu.cue") + ":5:",
		"(a good example must compile)",
	} {
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("code %d: want %q in\n%s", code, want, errOut)
		}
	}
	if _, errOut, code := runCLI(t, "vet"); code != 2 || !strings.Contains(errOut, "--domain DIR") {
		t.Errorf("vet alone: code %d %s", code, errOut)
	}
}
