// Command mkimage packs static binaries into a multi-platform OCI image
// layout, reproducibly, with nothing but Go: no Docker engine, no BuildKit.
//
// Usage:
//
//	mkimage -out DIR -tag 1.0 \
//	    -bin linux/amd64=PATH -bin linux/amd64/v3=PATH -bin linux/arm64/v8=PATH
//
// For each -bin it writes one gzip'd tar layer holding the binary as /hello
// (mode 0755), an OCI image config whose entrypoint is /hello and an OCI image
// manifest; then an OCI image index listing the manifests in the order of the
// -bin flags, tagged -tag. The layout is written with oras-go's OCI store, so
// it is a standard one (oci-layout, index.json, blobs/sha256).
//
// Every timestamp comes from SOURCE_DATE_EPOCH (default 2025-01-01T00:00:00Z)
// and tar headers and gzip streams carry no host details, so packing the same
// binaries twice gives the same image index digest.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	_ "crypto/sha256" // registers sha256 for go-digest
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/errdef"
)

// defaultEpoch is the creation time used when SOURCE_DATE_EPOCH is unset:
// 2025-01-01T00:00:00Z.
const defaultEpoch = 1735689600

// entrypoint is the path of the binary inside every image.
const entrypoint = "/hello"

// binary is one -bin flag: a platform and the file to pack for it.
type binary struct {
	platform ocispec.Platform
	path     string
}

// options is everything pack needs; main fills it from flags and the
// environment.
type options struct {
	out     string    // OCI layout directory, created if missing
	tag     string    // tag of the image index
	title   string    // org.opencontainers.image.title of the index
	source  string    // org.opencontainers.image.source of the index
	created time.Time // creation time of configs, tar entries and the index
	bins    []binary  // one image per binary, in index order
}

// result is what pack wrote: the image index and its manifests, in order.
type result struct {
	index     ocispec.Descriptor
	manifests []ocispec.Descriptor
}

// binFlags collects repeated -bin PLATFORM=PATH flags.
type binFlags []binary

// String implements flag.Value.
func (b *binFlags) String() string {
	var parts []string
	for _, x := range *b {
		parts = append(parts, platformString(x.platform)+"="+x.path)
	}
	return strings.Join(parts, ",")
}

// Set implements flag.Value: it parses one PLATFORM=PATH.
func (b *binFlags) Set(s string) error {
	plat, path, ok := strings.Cut(s, "=")
	if !ok || path == "" {
		return fmt.Errorf("want PLATFORM=PATH (e.g. linux/amd64/v3=build/bin/hello-amd64-v3), got %q", s)
	}
	p, err := parsePlatform(plat)
	if err != nil {
		return err
	}
	*b = append(*b, binary{platform: p, path: path})
	return nil
}

// parsePlatform parses "os/arch" or "os/arch/variant".
func parsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		return ocispec.Platform{}, fmt.Errorf("platform %q: want os/arch or os/arch/variant", s)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// platformString formats p as os/arch[/variant].
func platformString(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// sourceDateEpoch returns the time in SOURCE_DATE_EPOCH, or defaultEpoch if
// it is unset or empty.
func sourceDateEpoch() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Unix(defaultEpoch, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want a non-negative number of seconds since 1970-01-01", v)
	}
	return time.Unix(n, 0).UTC(), nil
}

func main() {
	var bins binFlags
	opts := options{}
	flag.StringVar(&opts.out, "out", "build/oci", "OCI image layout `dir` to write (created if missing)")
	flag.StringVar(&opts.tag, "tag", "1.0", "`tag` of the image index")
	flag.StringVar(&opts.title, "title", "hello", "org.opencontainers.image.title annotation of the index")
	flag.StringVar(&opts.source, "source", "https://github.com/compatkit/compatkit", "org.opencontainers.image.source annotation of the index")
	flag.Var(&bins, "bin", "`PLATFORM=PATH` of a binary to pack as /hello (repeatable; index order = flag order)")
	flag.Parse()

	if err := run(context.Background(), opts, bins); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

// run checks the command line, packs and prints what it wrote.
func run(ctx context.Context, opts options, bins binFlags) error {
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (binaries go in -bin PLATFORM=PATH)", flag.Args())
	}
	if len(bins) == 0 {
		return errors.New("no -bin PLATFORM=PATH given")
	}
	created, err := sourceDateEpoch()
	if err != nil {
		return err
	}
	opts.created = created
	opts.bins = bins

	res, err := pack(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Printf("%s:%s\n", opts.out, opts.tag)
	fmt.Printf("  index     %s\n", res.index.Digest)
	for _, m := range res.manifests {
		fmt.Printf("  manifest  %s  %s\n", m.Digest, platformString(*m.Platform))
	}
	return nil
}

// pack writes one image per binary and an index of them to the OCI layout
// opts.out, tags the index opts.tag and returns what it wrote. Blobs go in
// before the manifests that name them, and the tag last.
func pack(ctx context.Context, opts options) (result, error) {
	if opts.tag == "" {
		return result{}, errors.New("-tag is empty")
	}
	// Check every input before the layout is touched.
	seen := map[string]string{}
	files := make([][]byte, len(opts.bins))
	for i, b := range opts.bins {
		ps := platformString(b.platform)
		if prev, ok := seen[ps]; ok {
			return result{}, fmt.Errorf("-bin %s=%s: platform already given for %s", ps, b.path, prev)
		}
		seen[ps] = b.path
		data, err := os.ReadFile(b.path)
		if err != nil {
			return result{}, fmt.Errorf("-bin %s=%s: %w", ps, b.path, err)
		}
		files[i] = data
	}

	store, err := oci.NewWithContext(ctx, opts.out)
	if err != nil {
		return result{}, fmt.Errorf("open OCI layout %s: %w", opts.out, err)
	}

	var res result
	for i, b := range opts.bins {
		m, err := packImage(ctx, store, b.platform, files[i], opts.created)
		if err != nil {
			return result{}, fmt.Errorf("-bin %s=%s: %w", platformString(b.platform), b.path, err)
		}
		res.manifests = append(res.manifests, m)
	}

	index := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: res.manifests,
		Annotations: map[string]string{
			ocispec.AnnotationTitle:   opts.title,
			ocispec.AnnotationSource:  opts.source,
			ocispec.AnnotationCreated: opts.created.Format(time.RFC3339),
		},
	}
	res.index, err = pushJSON(ctx, store, ocispec.MediaTypeImageIndex, index)
	if err != nil {
		return result{}, fmt.Errorf("image index in %s: %w", opts.out, err)
	}
	if err := store.Tag(ctx, res.index, opts.tag); err != nil {
		return result{}, fmt.Errorf("tag %q in %s: %w", opts.tag, opts.out, err)
	}
	return res, nil
}

// packImage pushes the layer, config and manifest of the image of binary bin
// for platform and returns the manifest's descriptor, with its platform, ready
// for the index.
func packImage(ctx context.Context, store *oci.Store, platform ocispec.Platform, bin []byte, created time.Time) (ocispec.Descriptor, error) {
	tarball, gz, err := layer(bin, created)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("layer: %w", err)
	}
	layerDesc, err := pushBlob(ctx, store, ocispec.MediaTypeImageLayerGzip, gz)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("layer: %w", err)
	}

	config := ocispec.Image{
		Created:  &created,
		Platform: platform,
		Config:   ocispec.ImageConfig{Entrypoint: []string{entrypoint}},
		RootFS: ocispec.RootFS{
			Type:    "layers",
			DiffIDs: []digest.Digest{digest.FromBytes(tarball)},
		},
	}
	configDesc, err := pushJSON(ctx, store, ocispec.MediaTypeImageConfig, config)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("config: %w", err)
	}

	manifest := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    []ocispec.Descriptor{layerDesc},
	}
	desc, err := pushJSON(ctx, store, ocispec.MediaTypeImageManifest, manifest)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest: %w", err)
	}
	desc.Platform = &platform
	return desc, nil
}

// layer returns a tar holding bin as /hello (mode 0755, owner 0:0, mtime
// created) and its gzip compression (no file name, no mtime). Both depend only
// on bin and created.
func layer(bin []byte, created time.Time) (tarball, gz []byte, err error) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     strings.TrimPrefix(entrypoint, "/"),
		Mode:     0o755,
		Size:     int64(len(bin)),
		ModTime:  created,
		Format:   tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}

	var gb bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gb, gzip.BestCompression)
	if err != nil {
		return nil, nil, err
	}
	if _, err := zw.Write(tb.Bytes()); err != nil {
		return nil, nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, nil, err
	}
	return tb.Bytes(), gb.Bytes(), nil
}

// pushJSON marshals v and pushes it as a blob of the given media type.
func pushJSON(ctx context.Context, store *oci.Store, mediaType string, v any) (ocispec.Descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return pushBlob(ctx, store, mediaType, data)
}

// pushBlob pushes data unless the store already has it, so that packing into
// an existing layout again is not an error.
func pushBlob(ctx context.Context, store *oci.Store, mediaType string, data []byte) (ocispec.Descriptor, error) {
	desc := content.NewDescriptorFromBytes(mediaType, data)
	err := store.Push(ctx, desc, bytes.NewReader(data))
	if err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		return ocispec.Descriptor{}, fmt.Errorf("push %s %s: %w", mediaType, desc.Digest, err)
	}
	return desc, nil
}
