package oci_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/spec"
)

// TestLayoutConcurrentWriters: eight processes attach to one OCI layout at once, while this one
// reads it: every referrer is listed at the end, and no reader sees a half-written index.
func TestLayoutConcurrentWriters(t *testing.T) {
	if dir := os.Getenv("COMPATKIT_TEST_LAYOUT_WRITER"); dir != "" {
		// A child: push one spec to the layout's first manifest.
		n, _ := strconv.Atoi(os.Getenv("COMPATKIT_TEST_WRITER_N"))
		tg, err := oci.Open(context.Background(), dir+":v1", oci.Options{OCILayout: true})
		if err != nil {
			t.Fatal(err)
		}
		root, err := tg.Resolve(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		idx, err := tg.FetchIndex(context.Background(), root)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tg.PushSpec(context.Background(), idx.Manifests[0], testregistry.SampleSpec(n), nil, time.Unix(int64(1_700_000_000+n), 0)); err != nil {
			t.Fatal(err)
		}
		return
	}
	dir := filepath.Join(t.TempDir(), "layout")
	img := testregistry.WriteLayout(t, dir, "v1")
	const writers = 8
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, writers)
	outs := make([][]byte, writers)
	for i := range writers {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestLayoutConcurrentWriters$", "-test.count=1")
			cmd.Env = append(os.Environ(), "COMPATKIT_TEST_LAYOUT_WRITER="+dir, fmt.Sprintf("COMPATKIT_TEST_WRITER_N=%d", i+1))
			outs[i], errs[i] = cmd.CombinedOutput()
		})
	}
	done := make(chan struct{})
	var readErr error
	go func() {
		defer close(done)
		for {
			time.Sleep(5 * time.Millisecond)
			tg, err := oci.Open(context.Background(), dir+":v1", oci.Options{OCILayout: true})
			if err == nil {
				_, err = tg.Referrers(context.Background(), img.Manifests[0], spec.ArtifactType)
			}
			if err != nil && readErr == nil {
				readErr = err
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-done
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v\n%s", i+1, err, outs[i])
		}
	}
	if readErr != nil {
		t.Errorf("a reader during the writes: %v", readErr)
	}
	tg, err := oci.Open(context.Background(), dir+":v1", oci.Options{OCILayout: true})
	if err != nil {
		t.Fatal(err)
	}
	refs, err := tg.Referrers(context.Background(), img.Manifests[0], spec.ArtifactType)
	if err != nil || len(refs) != writers {
		t.Fatalf("%d referrers listed (%v), want %d", len(refs), err, writers)
	}

	// A plain directory is never turned into a layout.
	plain := t.TempDir()
	if _, err := oci.Open(context.Background(), plain+":1.0", oci.Options{OCILayout: true}); err == nil || !strings.Contains(err.Error(), "not an OCI image layout") {
		t.Fatalf("a plain directory: %v", err)
	}
	if entries, _ := os.ReadDir(plain); len(entries) != 0 {
		t.Fatalf("the plain directory got %v", entries)
	}
}
