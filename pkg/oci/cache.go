package oci

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/opencontainers/go-digest"
)

// DefaultCacheBytes is Cache.MaxBytes's default: 256 MiB.
const DefaultCacheBytes = 256 << 20

// Cache keeps content that never changes on disk: manifests fetched by digest (referrer
// manifests, image manifests and indexes) and spec and bundle blobs (image-spec v1.1
// descriptor.md: content is addressed by its digest). Tags, referrers listings and tag indexes,
// which change, are never kept. Every read is checked against its digest, so a corrupt or
// tampered file is a miss, not a wrong answer. Files live in Dir/<algorithm>/<hex>; when the
// cache passes MaxBytes the least recently written files go. A Cache is safe for concurrent use,
// also by several processes (files are written to a temporary name and renamed).
type Cache struct {
	// Dir holds the files; DefaultCacheDir gives the user's cache directory.
	Dir string
	// MaxBytes caps the total size; 0 means DefaultCacheBytes.
	MaxBytes int64

	mu      sync.Mutex
	written int64 // bytes written since the last pruning
}

// DefaultCacheDir is compatkit's content cache in the user's cache directory
// ($XDG_CACHE_HOME/compatkit/content, ~/.cache/compatkit/content on Linux).
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "compatkit", "content"), nil
}

func (c *Cache) path(d digest.Digest) (string, bool) {
	if c == nil || c.Dir == "" || d.Validate() != nil {
		return "", false
	}
	return filepath.Join(c.Dir, d.Algorithm().String(), d.Encoded()), true
}

// Get returns the content of digest d when the cache holds it, it is at most max bytes, and it
// matches d; a file that does not match is removed.
func (c *Cache) Get(d digest.Digest, max int64) ([]byte, bool) {
	p, ok := c.path(d)
	if !ok {
		return nil, false
	}
	data, ok := readRegular(p, max)
	if !ok {
		return nil, false
	}
	if d.Algorithm().FromBytes(data) != d {
		_ = os.Remove(p)
		return nil, false
	}
	return data, true
}

// Put keeps data, whose digest is d (it is checked), and prunes the cache now and then. Errors
// (a read-only directory, a full disk) are ignored: the cache is an optimisation.
func (c *Cache) Put(d digest.Digest, data []byte) {
	p, ok := c.path(d)
	if !ok || d.Algorithm().FromBytes(data) != d {
		return
	}
	if _, err := os.Stat(p); err == nil {
		return
	}
	if !writeAtomic(p, data) {
		return
	}
	c.mu.Lock()
	c.written += int64(len(data))
	prune := c.written > c.max()/16
	if prune {
		c.written = 0
	}
	c.mu.Unlock()
	if prune {
		_ = c.Prune()
	}
}

func (c *Cache) max() int64 {
	if c.MaxBytes > 0 {
		return c.MaxBytes
	}
	return DefaultCacheBytes
}

// Prune removes the least recently written files until the cache holds at most MaxBytes.
func (c *Cache) Prune() error {
	if c == nil || c.Dir == "" {
		return nil
	}
	type entry struct {
		path string
		size int64
		mod  int64
	}
	var files []entry
	var total int64
	err := filepath.WalkDir(c.Dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return nil
		}
		fi, err := de.Info()
		if err != nil {
			return nil
		}
		files = append(files, entry{p, fi.Size(), fi.ModTime().UnixNano()})
		total += fi.Size()
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pruning the cache %s: %w", c.Dir, err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod < files[j].mod })
	for _, f := range files {
		if total <= c.max() {
			break
		}
		if os.Remove(f.path) == nil {
			total -= f.size
		}
	}
	return nil
}

// MaxHintBytes is the largest hint a Cache keeps.
const MaxHintBytes = 4 << 10

// Hint returns the hint kept under key (SetHint), false when there is none. Hints are what this
// machine saw last time (the digest a tag resolved to, whether a repository has the referrers
// API): they schedule requests early, and must never decide anything, for they go stale.
func (c *Cache) Hint(key string) ([]byte, bool) {
	p, ok := c.hintPath(key)
	if !ok {
		return nil, false
	}
	return readRegular(p, MaxHintBytes)
}

// readRegular reads the regular file at p when it holds at most max bytes: a symbolic link, a
// FIFO or a device put in the cache is a miss (never followed, never read without end).
func readRegular(p string, max int64) ([]byte, bool) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscallNoFollow|syscallNonBlock, 0)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > max {
		return nil, false
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil || int64(len(data)) > max {
		return nil, false
	}
	return data, true
}

// SetHint keeps value under key (at most MaxHintBytes; errors are ignored, as for Put).
func (c *Cache) SetHint(key string, value []byte) {
	p, ok := c.hintPath(key)
	if !ok || len(value) > MaxHintBytes {
		return
	}
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, value) {
		return
	}
	writeAtomic(p, value)
}

// writeAtomic writes data to path through a temporary file renamed into place, so that another
// process never reads half a file; false when it could not.
func writeAtomic(path string, data []byte) bool {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return false
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), path) != nil {
		_ = os.Remove(tmp.Name())
		return false
	}
	return true
}

// hintPath is Dir/hints/<sha256 of key>: keys hold registry names, never used as paths.
func (c *Cache) hintPath(key string) (string, bool) {
	if c == nil || c.Dir == "" {
		return "", false
	}
	return filepath.Join(c.Dir, "hints", digest.FromString(key).Encoded()), true
}
