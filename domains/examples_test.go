// Package domains_test vets every example of every domain module and group template: each file
// under <dir>/examples/good must compile, each file under <dir>/examples/bad must fail with the
// message its first "// error: " comment line gives. A new domain needs no change here.
package domains_test

import (
	"bufio"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatkit/compatkit/pkg/author"
)

// examples returns the example files under root: good and bad.
func examples(t *testing.T, root string) (good, bad []string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if os.IsNotExist(err) {
			return filepath.SkipDir
		}
		if err != nil || d.IsDir() || filepath.Ext(p) != ".cue" {
			return err
		}
		switch filepath.Base(filepath.Dir(p)) {
		case "good":
			good = append(good, p)
		case "bad":
			bad = append(bad, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return good, bad
}

// wantError returns the text of the file's "// error: " line.
func wantError(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s, ok := strings.CutPrefix(sc.Text(), "// error: "); ok {
			return s
		}
	}
	t.Fatalf("%s: a bad example needs a first line \"// error: <expected message>\"", p)
	return ""
}

func TestExamples(t *testing.T) {
	for _, root := range []string{".", "../templates"} {
		good, bad := examples(t, root)
		for _, p := range good {
			t.Run(p, func(t *testing.T) {
				if _, err := author.Compile(context.Background(), []string{p}, author.Options{}); err != nil {
					t.Errorf("want it to compile:\n%v", err)
				}
			})
		}
		for _, p := range bad {
			t.Run(p, func(t *testing.T) {
				want := wantError(t, p)
				_, err := author.Compile(context.Background(), []string{p}, author.Options{})
				if err == nil {
					t.Fatalf("compiled, want an error containing %q", want)
				}
				if !strings.Contains(err.Error(), want) {
					t.Errorf("got\n%v\nwant an error containing %q", err, want)
				}
			})
		}
	}
}

// TestEveryDomainHasExamples: a domain (a directory with .cue files) has a README.md and at least
// one good and one bad example.
func TestEveryDomainHasExamples(t *testing.T) {
	for _, root := range []string{".", "../templates"} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() || strings.Contains(p, "examples") {
				return err
			}
			cues, _ := filepath.Glob(filepath.Join(p, "*.cue"))
			if len(cues) == 0 {
				return nil
			}
			if _, err := os.Stat(filepath.Join(p, "README.md")); err != nil {
				t.Errorf("%s: no README.md", p)
			}
			good, bad := examples(t, filepath.Join(p, "examples"))
			if len(good) == 0 || len(bad) == 0 {
				t.Errorf("%s: want examples/good and examples/bad, got %d and %d files", p, len(good), len(bad))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
