package memfs

import (
	"testing"
	"testing/fstest"
)

// TestFS checks the io/fs contract with the standard library's own conformance test.
func TestFS(t *testing.T) {
	m := FS{
		"cue.mod/module.cue":           []byte(`module: "compatkit.dev@v0"`),
		"cue/compat.cue":               []byte("package compat\n"),
		"domains/gpu/nvidia/gpu.cue":   []byte("package nvidia\n"),
		"domains/gpu/nvidia/README.md": []byte("# nvidia\n"),
	}
	if err := fstest.TestFS(m, "cue.mod/module.cue", "cue/compat.cue", "domains/gpu/nvidia/gpu.cue", "domains/gpu/nvidia/README.md"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Open("nope"); err == nil {
		t.Fatal("opened a missing file")
	}
}
