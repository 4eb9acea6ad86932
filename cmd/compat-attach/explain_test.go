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
