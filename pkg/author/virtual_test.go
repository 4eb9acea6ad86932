package author

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatkit/compatkit/pkg/spec"
)

// Errors never name the loader's virtual files, only the user's.
func TestErrorsNameUserFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	nul := write("nul.cue", "version: \"v1alpha1\"\n\x00\n")
	p1, p2 := write("p1.cue", "package x\n"), write("p2.cue", "package y\n")
	for _, files := range [][]string{{nul}, {p1, p2}} {
		err := Vet(context.Background(), files, Options{Dir: dir})
		if err == nil {
			t.Fatalf("%v: no error", files)
		}
		msg := err.Error()
		if strings.Contains(msg, inputDir) || strings.Contains(msg, "f0000") {
			t.Errorf("%v: error names a virtual file: %s", files, msg)
		}
		if !strings.Contains(msg, filepath.Base(files[0])) {
			t.Errorf("%v: error does not name the file: %s", files, msg)
		}
	}
}

func TestForArm64Variant(t *testing.T) {
	s := &spec.Spec{Version: spec.Version}
	r := &Result{Platforms: map[string]*spec.Spec{"linux/arm64/v8": s}}
	for _, p := range []string{"linux/arm64", "linux/arm64/v8"} {
		if got, err := r.For(p); err != nil || got != s {
			t.Errorf("For(%q) = %v, %v", p, got, err)
		}
	}
	if _, err := r.For("linux/amd64"); err == nil {
		t.Error("For(linux/amd64) found a spec")
	}
}

// Checks left to spec.Parse (regexps, integer operands) still point at the user's field.
func TestParseChecksHavePositions(t *testing.T) {
	p := filepath.Join(t.TempDir(), "re.yaml")
	doc := "version: v1alpha1\ncompatibilities:\n- rules:\n  - name: r\n    matchFeatures:\n    - feature: cpu.cpuid\n      matchExpressions:\n        X: {op: InRegexp, value: [\"(\"]}\n"
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Vet(context.Background(), []string{p}, Options{Dir: filepath.Dir(p)})
	if err == nil || !strings.HasPrefix(err.Error(), "re.yaml:8:") || !strings.Contains(err.Error(), "invalid regexp") {
		t.Fatalf("got %v, want re.yaml:8:...: invalid regexp", err)
	}
}
