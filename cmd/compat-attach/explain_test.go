package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExplainCLI(t *testing.T) {
	out, errOut, code := runCLI(t, "explain", "gpu/nvidia.driver")
	if code != 0 || !strings.Contains(out, "lowest driver version") || !strings.Contains(out, "type:       string") {
		t.Errorf("code %d\n%s\n%s", code, out, errOut)
	}
	out, _, code = runCLI(t, "explain", "-o", "json", "cpu/x86.level")
	if code != 0 || !strings.Contains(out, `"allowed"`) {
		t.Errorf("code %d\n%s", code, out)
	}
	_, errOut, code = runCLI(t, "explain", "gpu/nvidia.drivr")
	if code != 1 || !strings.Contains(errOut, "has no setting drivr") {
		t.Errorf("code %d\n%s", code, errOut)
	}
}

func TestInitCLI(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"basic", "multi-arch", "cuda", "amd-intel"} {
		f := filepath.Join(dir, name+".cue")
		if _, errOut, code := runCLI(t, "init", "--template", name, "--file", f); code != 0 {
			t.Fatalf("init %s: %d %s", name, code, errOut)
		}
		if out, errOut, code := runCLI(t, "vet", f); code != 0 {
			t.Errorf("vet %s: %d %s %s", name, code, out, errOut)
		}
	}
	// No overwrite without --force.
	f := filepath.Join(dir, "basic.cue")
	if _, errOut, code := runCLI(t, "init", "--template", "cuda", "--file", f); code != 1 || !strings.Contains(errOut, "--force") {
		t.Errorf("code %d %s", code, errOut)
	}
	if _, _, code := runCLI(t, "init", "--template", "cuda", "--file", f, "--force"); code != 0 {
		t.Errorf("--force: code %d", code)
	}
	if b, _ := os.ReadFile(f); !strings.Contains(string(b), "templates/cuda") {
		t.Errorf("not replaced: %s", b)
	}
	if _, errOut, code := runCLI(t, "init", "--template", "nope"); code != 2 || !strings.Contains(errOut, "templates: ") {
		t.Errorf("code %d %s", code, errOut)
	}
	if out, _, _ := runCLI(t, "init", "--list"); !strings.Contains(out, "multi-arch") {
		t.Errorf("list: %s", out)
	}
}

func TestSchemaCLI(t *testing.T) {
	out, _, code := runCLI(t, "schema")
	want, err := os.ReadFile("../../schema/compat.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || out != string(want) {
		t.Errorf("compat-attach schema differs from schema/compat.schema.json (code %d)", code)
	}
}

// TestExplainOutput: an optional field has no default (not the [] of an open list), a list of
// definitions reads as one, no CUE internals nor import lines.
func TestExplainOutput(t *testing.T) {
	for _, c := range []struct {
		path       string
		want, not_ []string
	}{
		{"gpu/nvidia.devices", []string{"type:       list of string", "optional:   yes"}, []string{"default:"}},
		{"cpu/arm64.hwcaps", []string{"list of #HWCap"}, []string{"default:"}},
		{"gpu/nvidia.gpu", []string{"default:    true"}, []string{"optional:"}},
		{"cue.#Case.condition", []string{"type:       non-empty list of #Term", "constraint: [#Term, ...#Term]"}, []string{"import", "#x", "let ", "default:"}},
		{"cpu/x86.#Config.rules", []string{"list of compat.#Rule", "[...compat.#Rule] & [...]"}, []string{"import", "if level"}},
	} {
		out, errOut, code := runCLI(t, "explain", c.path)
		if code != 0 {
			t.Errorf("%s: code %d %s", c.path, code, errOut)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: want %q in\n%s", c.path, w, out)
			}
		}
		for _, w := range c.not_ {
			if strings.Contains(out, w) {
				t.Errorf("%s: want no %q in\n%s", c.path, w, out)
			}
		}
	}
}

// TestExplainList: explain alone (or --list) lists the domains and templates with their one-line
// docs, those of --cue-path too; --cue-path reaches explain.
func TestExplainList(t *testing.T) {
	t.Setenv("COMPATKIT_CUE_PATH", "")
	root := t.TempDir()
	dom := filepath.Join(root, "hpc", "slurm")
	if err := os.MkdirAll(dom, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dom, "slurm.cue", `// Package slurm describes what a job image needs of a Slurm node. More.
package slurm

// #Config is what a job image needs.
#Config: {
	// partition the node must belong to, e.g. "gpu".
	partition?: string
}
`)
	for _, args := range [][]string{{"explain"}, {"explain", "--list"}} {
		out, errOut, code := runCLI(t, append(args, "--cue-path", root)...)
		if code != 0 {
			t.Fatalf("%v: code %d %s", args, code, errOut)
		}
		for _, w := range []string{"domains:", "gpu/nvidia ", "Package nvidia describes", "templates:", "templates/cuda ",
			"hpc/slurm", "Package slurm describes what a job image needs of a Slurm node. (from " + dom + ")"} {
			if !strings.Contains(out, w) {
				t.Errorf("%v: want %q in\n%s", args, w, out)
			}
		}
	}
	out, _, code := runCLI(t, "explain", "--list", "-o", "json")
	if code != 0 || !strings.Contains(out, `"import": "compatkit.dev/templates/multi-arch:multiarch"`) {
		t.Errorf("code %d\n%s", code, out)
	}
	out, errOut, code := runCLI(t, "explain", "--cue-path", root, "hpc/slurm.partition")
	if code != 0 || !strings.Contains(out, "partition the node must belong to") {
		t.Errorf("code %d\n%s\n%s", code, out, errOut)
	}
	// --cue-path at the domain itself, not its parent.
	_, errOut, code = runCLI(t, "explain", "--cue-path", dom, "hpc/slurm.partition")
	if code == 0 || !strings.Contains(errOut, "must be the directory holding the domain directories (DIR's parent, here "+filepath.Dir(dom)) {
		t.Errorf("code %d\n%s", code, errOut)
	}
}
