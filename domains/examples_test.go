// Package domains_test runs author.CheckDomain, what `compat-attach vet --domain DIR` runs, on
// every domain module and group template (docs, README, examples, a good example per setting,
// README snippets), and compiles the ```cue blocks of the top README's "Writing a spec". A new
// domain needs no change here.
package domains_test

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatkit/compatkit/pkg/author"
)

// domainDirs returns the domain and template directories: those holding .cue files, outside examples.
func domainDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	for _, root := range []string{".", "../templates"} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			if d.Name() == "examples" {
				return filepath.SkipDir
			}
			if cues, _ := filepath.Glob(filepath.Join(p, "*.cue")); len(cues) > 0 {
				dirs = append(dirs, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(dirs) < 10 {
		t.Fatalf("found only %d domains and templates: %v", len(dirs), dirs)
	}
	return dirs
}

// TestDomainChecks runs author.CheckDomain, what `compat-attach vet --domain DIR` runs, on every
// domain and template: package and field docs, README.md, good and bad examples, every #Config
// setting used by a good example, README ```cue blocks compile. A new domain needs no change here.
func TestDomainChecks(t *testing.T) {
	for _, dir := range domainDirs(t) {
		t.Run(dir, func(t *testing.T) {
			for _, p := range author.CheckDomain(dir, author.Options{}) {
				t.Error(p.String())
			}
		})
	}
}

// TestWritingASpecSnippets: the ```cue blocks of the top README's "Writing a spec" section compile.
func TestWritingASpecSnippets(t *testing.T) {
	for _, p := range author.CheckSnippets("../README.md", "Writing a spec", author.Options{}) {
		t.Error(p.String())
	}
}

// TestSnippetFragments: a block marked ```cue fragment is found and not compiled.
func TestSnippetFragments(t *testing.T) {
	md := "# x\n\n```cue\na: 1\n```\n\n```" + author.FragmentMarker + "\nb: \n```\n\n```sh\nls\n```\n```` ```cue ```` is inline code\n"
	s := author.Snippets(md, "")
	if len(s) != 2 || s[0].Line != 4 || s[0].Fragment || !s[1].Fragment || !strings.Contains(s[1].Code, "b:") {
		t.Errorf("got %+v", s)
	}
}
