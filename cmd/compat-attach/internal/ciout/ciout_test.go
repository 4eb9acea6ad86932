package ciout

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSet(t *testing.T) {
	dir := t.TempDir()
	f := Files{Output: filepath.Join(dir, "out"), Summary: filepath.Join(dir, "sum")}
	if err := f.Set("a", "1"); err != nil {
		t.Fatal(err)
	}
	if err := f.SetLines("b", []string{"x", "ghadelimiter_fake", "y"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Set("bad=name", "v"); err == nil {
		t.Error("a name with = accepted")
	}
	if err := f.AddSummary("# title"); err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(f.Output)
	lines := strings.Split(string(out), "\n")
	if lines[0] != "a=1" || !strings.HasPrefix(lines[1], "b<<ghadelimiter_") || lines[2] != "x" || lines[5] != strings.TrimPrefix(lines[1], "b<<") {
		t.Fatalf("output file:\n%s", out)
	}
	sum, _ := os.ReadFile(f.Summary)
	if string(sum) != "# title\n" {
		t.Fatalf("summary %q", sum)
	}
	if err := (Files{}).Set("a", "b"); err != nil {
		t.Fatal("no file: no error")
	}
	if Cell("a|b\n<c>") != `a\|b &lt;c&gt;` {
		t.Error(Cell("a|b\n<c>"))
	}
}
