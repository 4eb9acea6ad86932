//go:build unix

package oci_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/compatkit/compatkit/pkg/oci"
)

// TestCacheSpecialFiles: a symbolic link to /dev/zero, a FIFO or a directory where a cached file
// or a hint should be is a miss, read in no time and without memory.
func TestCacheSpecialFiles(t *testing.T) {
	c := &oci.Cache{Dir: t.TempDir()}
	data := []byte("content")
	d := digest.FromBytes(data)
	c.Put(d, data)
	p := filepath.Join(c.Dir, "sha256", d.Encoded())
	for name, create := range map[string]func() error{
		"symlink to /dev/zero": func() error { return os.Symlink("/dev/zero", p) },
		"fifo":                 func() error { return syscall.Mkfifo(p, 0o644) },
		"directory":            func() error { return os.Mkdir(p, 0o755) },
	} {
		os.RemoveAll(p)
		if err := create(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		done := make(chan bool)
		go func() {
			_, ok := c.Get(d, 1<<20)
			done <- ok
		}()
		select {
		case ok := <-done:
			if ok {
				t.Errorf("%s: a hit", name)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Get blocks", name)
		}
	}
	c.SetHint("k", []byte("v"))
	hints, _ := filepath.Glob(filepath.Join(c.Dir, "hints", "*"))
	if len(hints) != 1 {
		t.Fatalf("hints %v", hints)
	}
	os.Remove(hints[0])
	if err := syscall.Mkfifo(hints[0], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Hint("k"); ok {
		t.Error("a FIFO hint read")
	}
}
