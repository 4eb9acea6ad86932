package oci

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"oras.land/oras-go/v2"
	orasoci "oras.land/oras-go/v2/content/oci"
)

// An OCI image layout is shared by every process that opens it, and oras-go keeps its index.json in
// memory and rewrites it whole (not atomically): a writer that wrote from a copy loaded before
// another writer's push would drop that push's referrer, and a reader could read a half-written
// index. So every write to a layout runs under an exclusive lock on the layout (flock on its
// oci-layout file) on a store loaded under that lock (Target.Write), and opening a layout loads
// its index under a shared lock.

// layoutMu serialises, within this process, the writers of each layout (flock locks belong to
// open files, so two goroutines would otherwise wait on each other only by polling).
var layoutMu sync.Map // absolute path -> *sync.Mutex

// lockPoll is how often a locked layout is tried again.
const lockPoll = 50 * time.Millisecond

// openLayoutStore loads the layout at path (its index read under a shared lock). path must be an
// OCI image layout (an oci-layout file): a plain directory is refused, never turned into one.
func openLayoutStore(ctx context.Context, path string) (*orasoci.Store, error) {
	marker := filepath.Join(path, "oci-layout")
	if _, err := os.Stat(marker); err != nil {
		return nil, fmt.Errorf("%w: %s is not an OCI image layout (it has no oci-layout file): give the directory oras, skopeo or buildx wrote (oras copy --to-oci-layout IMAGE %s:TAG)", ErrInvalidReference, path, path)
	}
	unlock, err := lockFile(ctx, marker, false)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", path, err)
	}
	defer unlock()
	s, err := orasoci.NewWithContext(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w: is it an OCI image layout (oci-layout and index.json)?", path, err)
	}
	return s, nil
}

// Write runs fn, which writes to the target (pushes, tags), as one step. On a registry it only
// calls fn with the repository. On an OCI layout it holds an exclusive lock on the layout (other
// processes' writes and reads wait), reloads the layout's index first so that fn writes from what
// is on disk now, and gives fn that fresh store, which the Target then keeps.
func (t *Target) Write(ctx context.Context, fn func(store oras.GraphTarget) error) error {
	if !t.layout {
		return fn(t.Store())
	}
	abs, err := filepath.Abs(t.name)
	if err != nil {
		return err
	}
	m, _ := layoutMu.LoadOrStore(abs, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	defer mu.Unlock()
	unlock, err := lockFile(ctx, filepath.Join(abs, "oci-layout"), true)
	if err != nil {
		return fmt.Errorf("OCI layout %s: %w", t.name, err)
	}
	defer unlock()
	s, err := orasoci.NewWithContext(ctx, abs)
	if err != nil {
		return fmt.Errorf("OCI layout %s: %w", t.name, err)
	}
	t.mu.Lock()
	t.store = s
	t.mu.Unlock()
	return fn(s)
}
