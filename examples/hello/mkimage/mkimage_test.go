package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/oci"
)

// fakeBins writes three small files standing in for the binaries and
// returns them in index order.
func fakeBins(t *testing.T) []binary {
	t.Helper()
	dir := t.TempDir()
	var bins []binary
	for _, plat := range []string{"linux/amd64", "linux/amd64/v3", "linux/arm64/v8"} {
		p, err := parsePlatform(plat)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, strings.ReplaceAll(plat, "/", "-"))
		if err := os.WriteFile(path, []byte("#!fake binary for "+plat+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		bins = append(bins, binary{platform: p, path: path})
	}
	return bins
}

// packTo packs bins into out with a fixed creation time.
func packTo(t *testing.T, out string, bins []binary) result {
	t.Helper()
	res, err := pack(context.Background(), options{
		out:     out,
		tag:     "1.0",
		title:   "hello",
		source:  "https://github.com/compatkit/compatkit",
		created: time.Unix(defaultEpoch, 0).UTC(),
		bins:    bins,
	})
	if err != nil {
		t.Fatalf("pack: %v", err)
	}
	return res
}

// fetchJSON reads desc from store and decodes it into v.
func fetchJSON(t *testing.T, store *oci.Store, desc ocispec.Descriptor, v any) {
	t.Helper()
	data, err := content.FetchAll(context.Background(), store, desc)
	if err != nil {
		t.Fatalf("fetch %s: %v", desc.Digest, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %s: %v", desc.Digest, err)
	}
}

func TestPack(t *testing.T) {
	ctx := context.Background()
	bins := fakeBins(t)
	out := filepath.Join(t.TempDir(), "oci")
	res := packTo(t, out, bins)

	for _, f := range []string{"oci-layout", "index.json", "blobs/sha256"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("layout: %v", err)
		}
	}

	store, err := oci.New(out)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := store.Resolve(ctx, "1.0")
	if err != nil {
		t.Fatalf("resolve tag 1.0: %v", err)
	}
	if desc.Digest != res.index.Digest || desc.MediaType != ocispec.MediaTypeImageIndex {
		t.Fatalf("tag 1.0 = %s %s, want index %s", desc.MediaType, desc.Digest, res.index.Digest)
	}

	var index ocispec.Index
	fetchJSON(t, store, desc, &index)
	if got := index.Annotations[ocispec.AnnotationTitle]; got != "hello" {
		t.Errorf("index title = %q, want hello", got)
	}
	if got := index.Annotations[ocispec.AnnotationSource]; got != "https://github.com/compatkit/compatkit" {
		t.Errorf("index source = %q", got)
	}
	want := []string{"linux/amd64", "linux/amd64/v3", "linux/arm64/v8"}
	if len(index.Manifests) != len(want) {
		t.Fatalf("index lists %d manifests, want %d", len(index.Manifests), len(want))
	}

	for i, m := range index.Manifests {
		if m.Platform == nil || platformString(*m.Platform) != want[i] {
			t.Errorf("manifest %d platform = %v, want %s", i, m.Platform, want[i])
			continue
		}
		if m.MediaType != ocispec.MediaTypeImageManifest {
			t.Errorf("%s: manifest media type %q", want[i], m.MediaType)
		}
		var manifest ocispec.Manifest
		fetchJSON(t, store, m, &manifest)

		var config ocispec.Image
		fetchJSON(t, store, manifest.Config, &config)
		if config.OS != m.Platform.OS || config.Architecture != m.Platform.Architecture || config.Variant != m.Platform.Variant {
			t.Errorf("%s: config platform = %s/%s/%s", want[i], config.OS, config.Architecture, config.Variant)
		}
		if len(config.Config.Entrypoint) != 1 || config.Config.Entrypoint[0] != "/hello" {
			t.Errorf("%s: entrypoint = %q", want[i], config.Config.Entrypoint)
		}
		if config.Created == nil || !config.Created.Equal(time.Unix(defaultEpoch, 0)) {
			t.Errorf("%s: created = %v", want[i], config.Created)
		}

		if len(manifest.Layers) != 1 || len(config.RootFS.DiffIDs) != 1 {
			t.Fatalf("%s: %d layers, %d diff_ids; want 1 and 1", want[i], len(manifest.Layers), len(config.RootFS.DiffIDs))
		}
		gz, err := content.FetchAll(ctx, store, manifest.Layers[0])
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatalf("%s: layer: %v", want[i], err)
		}
		if zr.Name != "" || !zr.ModTime.IsZero() {
			t.Errorf("%s: gzip header has name %q, mtime %v", want[i], zr.Name, zr.ModTime)
		}
		tarball, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if got := digest.FromBytes(tarball); got != config.RootFS.DiffIDs[0] {
			t.Errorf("%s: diff_id = %s, uncompressed layer is %s", want[i], config.RootFS.DiffIDs[0], got)
		}

		tr := tar.NewReader(bytes.NewReader(tarball))
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: tar: %v", want[i], err)
		}
		if hdr.Name != "hello" || hdr.Mode != 0o755 || hdr.Uid != 0 || hdr.Gid != 0 || !hdr.ModTime.Equal(time.Unix(defaultEpoch, 0)) {
			t.Errorf("%s: tar entry %q mode %o uid %d gid %d mtime %v", want[i], hdr.Name, hdr.Mode, hdr.Uid, hdr.Gid, hdr.ModTime)
		}
		body, _ := io.ReadAll(tr)
		orig, _ := os.ReadFile(bins[i].path)
		if !bytes.Equal(body, orig) {
			t.Errorf("%s: /hello differs from %s", want[i], bins[i].path)
		}
		if _, err := tr.Next(); err != io.EOF {
			t.Errorf("%s: layer has more than /hello (err %v)", want[i], err)
		}
	}
}

func TestPackReproducible(t *testing.T) {
	bins := fakeBins(t)
	dir := t.TempDir()
	a := packTo(t, filepath.Join(dir, "a"), bins)
	b := packTo(t, filepath.Join(dir, "b"), bins)
	again := packTo(t, filepath.Join(dir, "a"), bins) // into an existing layout
	if a.index.Digest != b.index.Digest || a.index.Digest != again.index.Digest {
		t.Errorf("index digests differ: %s, %s, %s", a.index.Digest, b.index.Digest, again.index.Digest)
	}
}

func TestParsePlatform(t *testing.T) {
	for _, bad := range []string{"linux", "linux/", "/amd64", "linux/amd64/", "a/b/c/d"} {
		if _, err := parsePlatform(bad); err == nil {
			t.Errorf("parsePlatform(%q) succeeded", bad)
		}
	}
	p, err := parsePlatform("linux/arm64/v8")
	if err != nil || p.OS != "linux" || p.Architecture != "arm64" || p.Variant != "v8" {
		t.Errorf("parsePlatform(linux/arm64/v8) = %+v, %v", p, err)
	}
}

func TestPackErrors(t *testing.T) {
	bins := fakeBins(t)
	missing := []binary{{platform: bins[0].platform, path: filepath.Join(t.TempDir(), "nope")}}
	_, err := pack(context.Background(), options{out: t.TempDir(), tag: "1.0", bins: missing})
	if err == nil || !strings.Contains(err.Error(), "-bin linux/amd64=") {
		t.Errorf("missing binary: err = %v, want it to name the -bin flag", err)
	}
	dup := []binary{bins[0], bins[0]}
	if _, err := pack(context.Background(), options{out: t.TempDir(), tag: "1.0", bins: dup}); err == nil {
		t.Error("duplicate platform accepted")
	}
}
