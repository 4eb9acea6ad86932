package testregistry

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/registry/remote"
)

// Platforms are the platforms of the image BuildImage makes, in index order.
var Platforms = []ocispec.Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "amd64", Variant: "v3"},
	{OS: "linux", Architecture: "arm64", Variant: "v8"},
}

// Image describes a multi-platform image made by BuildImage: Manifests, Configs and Layers are
// parallel to Platforms.
type Image struct {
	Index ocispec.Descriptor
	// Nested is the nested index (Shape.Nested), zero otherwise.
	Nested    ocispec.Descriptor
	Manifests []ocispec.Descriptor // with Platform set, as listed in the index
	Configs   []ocispec.Descriptor
	Layers    []ocispec.Descriptor
}

// Blobs returns the digests of every config and layer blob of the image: what a client reading
// compatibility specs must never request.
func (img Image) Blobs() []digest.Digest {
	var ds []digest.Digest
	for _, d := range append(append([]ocispec.Descriptor(nil), img.Configs...), img.Layers...) {
		ds = append(ds, d.Digest)
	}
	return ds
}

// BuildImage builds a small, real multi-platform image in a memory store, tagged tag: per platform
// a tar layer holding /platform, an image config (os, architecture, variant, rootfs diff_ids) and
// a manifest; one index listing the manifests with their platforms.
func BuildImage(t testing.TB, tag string) (*memory.Store, Image) {
	t.Helper()
	return BuildImageOf(t, tag, Shape{})
}

// Shape varies the image BuildImageOf makes.
type Shape struct {
	// Platforms of the manifests, in index order; nil means Platforms.
	Platforms []ocispec.Platform
	// Docker makes Docker schema-2 manifests, configs and layers, and a Docker manifest list.
	Docker bool
	// Nested makes the root index list one nested index (Image.Nested), which lists the manifests.
	Nested bool
	// Attestation adds a BuildKit attestation manifest (platform unknown/unknown, annotated
	// vnd.docker.reference.type=attestation-manifest) after the images.
	Attestation bool
	// Single makes the first platform's manifest the image itself (tagged, no index); Image.Index
	// is then that manifest.
	Single bool
	// Salt goes into every layer, so that images of the same shape and salts differ.
	Salt string
}

// BuildImageOf builds an image of the given shape (see BuildImage) in a memory store, tagged tag.
func BuildImageOf(t testing.TB, tag string, sh Shape) (*memory.Store, Image) {
	t.Helper()
	store, img, err := Build(ctx(t), tag, sh)
	if err != nil {
		t.Fatalf("testregistry: %v", err)
	}
	return store, img
}

// Build is BuildImageOf for code without a testing.TB (examples).
func Build(c context.Context, tag string, sh Shape) (*memory.Store, Image, error) {
	store := memory.New()
	var failed error
	push := func(mediaType string, data []byte) ocispec.Descriptor {
		d := content.NewDescriptorFromBytes(mediaType, data)
		if err := store.Push(c, d, bytes.NewReader(data)); err != nil && failed == nil {
			failed = err
		}
		return d
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil && failed == nil {
			failed = err
		}
		return b
	}
	manifestType, indexType, configType, layerType := ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayer
	if sh.Docker {
		manifestType, indexType = "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json"
		configType, layerType = "application/vnd.docker.container.image.v1+json", "application/vnd.docker.image.rootfs.diff.tar"
	}
	platforms := sh.Platforms
	if platforms == nil {
		platforms = Platforms
	}
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var img Image
	for _, p := range platforms {
		var tb bytes.Buffer
		tw := tar.NewWriter(&tb)
		body := []byte(p.OS + "/" + p.Architecture + "/" + p.Variant + "\n" + sh.Salt)
		if err := tw.WriteHeader(&tar.Header{Name: "platform", Mode: 0o644, Size: int64(len(body)), ModTime: created, Typeflag: tar.TypeReg}); err != nil {
			return nil, Image{}, err
		}
		tw.Write(body)
		tw.Close()
		layer := push(layerType, tb.Bytes())
		cfg := push(configType, mustJSON(ocispec.Image{
			Created:  &created,
			Platform: p,
			Config:   ocispec.ImageConfig{Cmd: []string{"/bin/true"}},
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}},
		}))
		man := push(manifestType, mustJSON(ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: manifestType,
			Config:    cfg,
			Layers:    []ocispec.Descriptor{layer},
		}))
		pp := p
		man.Platform = &pp
		img.Manifests = append(img.Manifests, man)
		img.Configs = append(img.Configs, cfg)
		img.Layers = append(img.Layers, layer)
	}
	if sh.Single {
		img.Index = img.Manifests[0]
		img.Index.Platform = nil
		if failed != nil {
			return nil, Image{}, failed
		}
		if err := store.Tag(c, img.Index, tag); err != nil {
			return nil, Image{}, err
		}
		return store, img, nil
	}
	entries := append([]ocispec.Descriptor(nil), img.Manifests...)
	if sh.Attestation {
		att := push(ocispec.MediaTypeImageManifest, mustJSON(ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    push(ocispec.MediaTypeImageConfig, []byte("{}")),
			Layers:    []ocispec.Descriptor{},
		}))
		att.Platform = &ocispec.Platform{OS: "unknown", Architecture: "unknown"}
		att.Annotations = map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": img.Manifests[0].Digest.String()}
		entries = append(entries, att)
	}
	index := push(indexType, mustJSON(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: indexType,
		Manifests: entries,
	}))
	img.Index = index
	if sh.Nested {
		img.Nested = index
		img.Index = push(indexType, mustJSON(ocispec.Index{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: indexType,
			Manifests: []ocispec.Descriptor{index},
		}))
	}
	if failed != nil {
		return nil, Image{}, failed
	}
	if err := store.Tag(c, img.Index, tag); err != nil {
		return nil, Image{}, err
	}
	return store, img, nil
}

// WriteLayoutDir writes the image of shape sh into an OCI image layout at dir under tag, for code
// without a testing.TB (examples).
func WriteLayoutDir(c context.Context, dir, tag string, sh Shape) (Image, error) {
	src, img, err := Build(c, tag, sh)
	if err != nil {
		return Image{}, err
	}
	dst, err := oci.New(dir)
	if err != nil {
		return Image{}, err
	}
	_, err = oras.Copy(c, src, tag, dst, tag, oras.DefaultCopyOptions)
	return img, err
}

// PushImageTo builds the image (BuildImage) and copies it with oras.Copy to dst under tag.
func PushImageTo(t testing.TB, dst oras.Target, tag string) Image {
	t.Helper()
	return PushShapeTo(t, dst, tag, Shape{})
}

// PushShapeTo builds an image of shape sh (BuildImageOf) and copies it to dst under tag.
func PushShapeTo(t testing.TB, dst oras.Target, tag string, sh Shape) Image {
	t.Helper()
	src, img := BuildImageOf(t, tag, sh)
	if _, err := oras.Copy(ctx(t), src, tag, dst, tag, oras.DefaultCopyOptions); err != nil {
		t.Fatalf("testregistry: pushing the image: %v", err)
	}
	return img
}

// PushImage pushes the image to host/repo:tag over plain HTTP (host is a test registry's Host()).
func PushImage(t testing.TB, host, repo, tag string) Image {
	t.Helper()
	return PushShape(t, host, repo, tag, Shape{})
}

// PushShape pushes an image of shape sh to host/repo:tag over plain HTTP.
func PushShape(t testing.TB, host, repo, tag string, sh Shape) Image {
	t.Helper()
	r, err := remote.NewRepository(host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	r.Client = Client()
	return PushShapeTo(t, r, tag, sh)
}

// WriteShapeLayout writes an image of shape sh into an OCI image layout at dir under tag.
func WriteShapeLayout(t testing.TB, dir, tag string, sh Shape) Image {
	t.Helper()
	s, err := oci.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return PushShapeTo(t, s, tag, sh)
}

// WriteLayout writes the image into an OCI image layout at dir (created if missing) under tag.
func WriteLayout(t testing.TB, dir, tag string) Image {
	t.Helper()
	s, err := oci.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return PushImageTo(t, s, tag)
}
