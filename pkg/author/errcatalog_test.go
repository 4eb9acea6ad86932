package author

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// UpdateGoldenEnv regenerates testdata/errors/*.golden when set to 1:
// COMPATKIT_UPDATE_GOLDEN=1 go test ./pkg/author/ -run TestErrCatalog
const updateGoldenEnv = "COMPATKIT_UPDATE_GOLDEN"

// TestErrCatalog vets every typical mistake of testdata/errors (NAME.cue, NAME.yaml, NAME.json,
// or a directory NAME/ of .cue files forming one package) and compares what vet prints with
// NAME.golden: one message per mistake, at the user's line.
func TestErrCatalog(t *testing.T) {
	const dir = "testdata/errors"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]string{}
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir():
			files, _ := filepath.Glob(filepath.Join(dir, name, "*.cue"))
			sort.Strings(files)
			cases[name] = files
		case strings.HasSuffix(name, ".golden"):
		default:
			cases[strings.TrimSuffix(name, filepath.Ext(name))] = []string{filepath.Join(dir, name)}
		}
	}
	if len(cases) < 30 {
		t.Errorf("the catalogue has %d mistakes, want at least 30", len(cases))
	}
	update := os.Getenv(updateGoldenEnv) == "1"
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			err := Vet(context.Background(), files, Options{Dir: dir, CUEPath: []string{}, AllowFlags: []string{}})
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("vet: got %v, want problems", err)
			}
			got := ae.Error() + "\n"
			for _, p := range ae.Problems {
				if strings.HasPrefix(p.File, embeddedPrefix) {
					t.Errorf("problem inside the embedded module: %s", p)
				}
			}
			golden := filepath.Join(dir, name+".golden")
			if update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (regenerate with %s=1)", err, updateGoldenEnv)
			}
			if got != string(want) {
				t.Errorf("vet %s:\ngot:\n%swant:\n%s", strings.Join(files, " "), got, want)
			}
			if n := strings.Count(got, "\n"); n != 1 {
				t.Errorf("%d messages, want one per mistake", n)
			}
		})
	}
}
