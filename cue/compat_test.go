// Package compat_test vets the CUE examples under testdata/ with pkg/author: every file in
// testdata/good must compile, every file in testdata/bad must fail.
package compat_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/compatkit/compatkit/pkg/author"
)

func TestExamples(t *testing.T) {
	for _, dir := range []string{"good", "bad"} {
		files, err := filepath.Glob(filepath.Join("testdata", dir, "*.cue"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no files in testdata/%s: %v", dir, err)
		}
		for _, f := range files {
			t.Run(f, func(t *testing.T) {
				_, err := author.Compile(context.Background(), []string{f}, author.Options{})
				switch {
				case dir == "good" && err != nil:
					t.Errorf("%v", err)
				case dir == "bad" && err == nil:
					t.Error("compiled, want an error")
				case err != nil:
					t.Logf("%v", err)
				}
			})
		}
	}
}
