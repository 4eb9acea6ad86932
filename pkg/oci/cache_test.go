package oci_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/compatkit/compatkit/pkg/oci"
)

func TestCache(t *testing.T) {
	c := &oci.Cache{Dir: t.TempDir(), MaxBytes: 10 << 10}
	data := []byte("a manifest")
	d := digest.FromBytes(data)
	if _, ok := c.Get(d, 100); ok {
		t.Fatal("hit in an empty cache")
	}
	c.Put(d, data)
	if got, ok := c.Get(d, 100); !ok || string(got) != string(data) {
		t.Fatalf("Get after Put: %q %v", got, ok)
	}
	if _, ok := c.Get(d, 3); ok {
		t.Fatal("content larger than asked for was returned")
	}
	c.Put(digest.FromString("other"), data) // a wrong digest is not kept
	if _, ok := c.Get(digest.FromString("other"), 100); ok {
		t.Fatal("content kept under another digest")
	}
	p := filepath.Join(c.Dir, "sha256", d.Encoded())
	os.WriteFile(p, []byte("tampered!!"), 0o644)
	if _, ok := c.Get(d, 100); ok {
		t.Fatal("tampered content returned")
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatal("tampered file kept")
	}
	// Past MaxBytes the oldest files go.
	var first digest.Digest
	for i := range 40 {
		b := []byte(fmt.Sprintf("%01024d", i))
		if i == 0 {
			first = digest.FromBytes(b)
		}
		c.Put(digest.FromBytes(b), b)
		os.Chtimes(filepath.Join(c.Dir, "sha256", digest.FromBytes(b).Encoded()), time.Now(), time.Unix(int64(1000+i), 0))
	}
	if err := c.Prune(); err != nil {
		t.Fatal(err)
	}
	var total int64
	filepath.WalkDir(c.Dir, func(p string, de os.DirEntry, err error) error {
		if fi, err := de.Info(); err == nil && !de.IsDir() {
			total += fi.Size()
		}
		return nil
	})
	if total > 10<<10 {
		t.Fatalf("cache holds %d bytes, more than 10 KiB", total)
	}
	if _, ok := c.Get(first, 2000); ok {
		t.Fatal("the oldest file survived pruning")
	}
	var nilCache *oci.Cache
	nilCache.Put(d, data) // a nil cache keeps nothing and does not fail
	if _, ok := nilCache.Get(d, 100); ok {
		t.Fatal("nil cache hit")
	}
}
