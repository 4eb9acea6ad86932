package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"

	"github.com/compatkit/compatkit/pkg/spec"
)

// Annotations that `compat-attach annotate` writes into an image index (image-spec v1.1
// descriptor and index annotations), so that selection needs the index alone.
const (
	// AnnotationSpec holds the spec that applies to the annotated manifest (on a descriptor of
	// index.manifests) or to the index (on the index's own annotations), as compact JSON.
	AnnotationSpec = "dev.compatkit.image-compatibility.spec"
	// AnnotationSpecReferrer holds the digest of the referrer manifest the spec was read from, or
	// "none" when the manifest has no spec. Its presence marks the descriptor as annotated.
	AnnotationSpecReferrer = "dev.compatkit.image-compatibility.referrer"
	// MaxAnnotationSpecBytes is the largest spec annotate inlines; larger ones are left to the
	// referrers API.
	MaxAnnotationSpecBytes = 64 << 10
)

// SpecFunc returns the spec that counts for subject and the descriptor of its referrer manifest,
// or an error wrapping ErrNoSpec. (*Target).NewestSpec is one; a signature-checking reader is
// another.
type SpecFunc func(ctx context.Context, subject ocispec.Descriptor) (*spec.Spec, ocispec.Descriptor, error)

// ManifestSpec is one manifest of an index with its spec.
type ManifestSpec struct {
	// Descriptor of the manifest as the index lists it.
	Descriptor ocispec.Descriptor
	// Position in index.manifests.
	Position int
	// Spec of the manifest, nil when it has none.
	Spec *spec.Spec
	// Referrer is the spec's referrer manifest (zero when Spec is nil).
	Referrer ocispec.Descriptor
}

// IndexSpecs is an image index with the specs of its manifests and of itself.
type IndexSpecs struct {
	Root      ocispec.Descriptor
	Index     *ocispec.Index
	Manifests []ManifestSpec
	// IndexSpec is the spec attached to the index itself (nil when none).
	IndexSpec     *spec.Spec
	IndexReferrer ocispec.Descriptor
}

// IndexSpecs reads, with read (nil: NewestSpec), the specs of every manifest of the index root
// (fetched once; Resolve already holds it) and of the index itself, concurrently
// (Options.Concurrency). A subject whose read wraps ErrNoSpec has no spec; any other error is
// returned. No image layer or config is fetched.
func (t *Target) IndexSpecs(ctx context.Context, root ocispec.Descriptor, read SpecFunc) (*IndexSpecs, error) {
	idx, err := t.FetchIndex(ctx, root)
	if err != nil {
		return nil, err
	}
	out := &IndexSpecs{Root: root, Index: idx}
	for i, m := range idx.Manifests {
		out.Manifests = append(out.Manifests, ManifestSpec{Descriptor: m, Position: i})
	}
	if read == nil {
		read = t.NewestSpec
	}
	get := func(ctx context.Context, d ocispec.Descriptor) (*spec.Spec, ocispec.Descriptor, error) {
		s, r, err := read(ctx, d)
		if errors.Is(err, ErrNoSpec) {
			return nil, ocispec.Descriptor{}, nil
		}
		return s, r, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(t.concurrency)
	g.Go(func() error {
		var err error
		out.IndexSpec, out.IndexReferrer, err = get(gctx, root)
		return err
	})
	for i := range out.Manifests {
		m := &out.Manifests[i]
		g.Go(func() error {
			var err error
			m.Spec, m.Referrer, err = get(gctx, m.Descriptor)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// AnnotatedSpec decodes the spec that Annotate copied into annotations ann (a manifest
// descriptor's in an index, or the index's own): present is false when ann holds no
// AnnotationSpecReferrer; a nil spec with present true means the subject had no spec. what names
// the place in errors (ErrInvalidArtifact, ErrTooLarge, or spec.Parse's).
func AnnotatedSpec(ann map[string]string, what string) (s *spec.Spec, referrer ocispec.Descriptor, present bool, err error) {
	if ann[AnnotationSpecReferrer] == "" {
		return nil, ocispec.Descriptor{}, false, nil
	}
	s, referrer, err = fromAnnotations(ann, what)
	return s, referrer, true, err
}

// fromAnnotations decodes the annotations annotate writes; what names the place in errors.
func fromAnnotations(ann map[string]string, what string) (*spec.Spec, ocispec.Descriptor, error) {
	ref := ann[AnnotationSpecReferrer]
	if ref == "none" {
		return nil, ocispec.Descriptor{}, nil
	}
	d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: spec.ArtifactType, Digest: digest.Digest(ref)}
	if d.Digest.Validate() != nil {
		return nil, d, fmt.Errorf("%w: %s: annotation %s=%q is not a digest", ErrInvalidArtifact, what, AnnotationSpecReferrer, ref)
	}
	raw := ann[AnnotationSpec]
	if len(raw) > MaxAnnotationSpecBytes {
		return nil, d, fmt.Errorf("%w: %s: annotation %s of %d bytes, the limit is %d", ErrTooLarge, what, AnnotationSpec, len(raw), MaxAnnotationSpecBytes)
	}
	s, err := spec.Parse([]byte(raw), what+" annotation "+AnnotationSpec)
	if err != nil {
		return nil, d, err
	}
	return s, d, nil
}

func toAnnotations(ann map[string]string, s *spec.Spec, ref ocispec.Descriptor) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range ann {
		out[k] = v
	}
	delete(out, AnnotationSpec)
	if s == nil {
		out[AnnotationSpecReferrer] = "none"
		return out, nil
	}
	j, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	if len(j) > MaxAnnotationSpecBytes {
		// Too large to inline: leave the descriptor unannotated, so readers use the referrers.
		delete(out, AnnotationSpecReferrer)
		return out, nil
	}
	out[AnnotationSpec] = string(j)
	out[AnnotationSpecReferrer] = ref.Digest.String()
	return out, nil
}

// Annotate writes a new image index equal to root's but with each manifest descriptor (and the
// index itself) annotated with its spec (AnnotationSpec, AnnotationSpecReferrer), pushes it, tags
// it tag (the Target's tag when empty) and returns its descriptor. The image manifests are not
// touched. Specs attached to the old index itself are attached again to the new one (same
// content and created time), since referrers follow digests. read picks each spec (nil:
// NewestSpec).
func (t *Target) Annotate(ctx context.Context, root ocispec.Descriptor, tag string, read SpecFunc) (ocispec.Descriptor, error) {
	if tag == "" {
		tag = t.reference
	}
	if tag == "" || isDigestRef(tag) {
		return ocispec.Descriptor{}, fmt.Errorf("%s: an annotated index gets a new digest: name the tag to move with --tag", t.given)
	}
	all, err := t.IndexSpecs(ctx, root, read)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	idx := *all.Index
	idx.Manifests = append([]ocispec.Descriptor(nil), idx.Manifests...)
	for _, m := range all.Manifests {
		a, err := toAnnotations(m.Descriptor.Annotations, m.Spec, m.Referrer)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		idx.Manifests[m.Position].Annotations = a
	}
	if idx.Annotations, err = toAnnotations(idx.Annotations, all.IndexSpec, all.IndexReferrer); err != nil {
		return ocispec.Descriptor{}, err
	}
	if idx.MediaType == "" {
		idx.MediaType = root.MediaType
	}
	data, err := json.Marshal(idx)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := content.NewDescriptorFromBytes(root.MediaType, data)
	desc.ArtifactType = idx.ArtifactType
	if err := t.Write(ctx, func(store oras.GraphTarget) error {
		if err := store.Push(ctx, desc, bytes.NewReader(data)); err != nil && !isAlreadyExists(err) {
			return t.wrap(err, t.name+"@"+desc.Digest.String(), "")
		}
		return nil
	}); err != nil {
		return ocispec.Descriptor{}, err
	}
	// Re-attach the index's own spec before moving the tag, so the new index is never without it.
	if all.IndexSpec != nil {
		created, ok := Created(all.IndexReferrer)
		if !ok {
			created = time.Now().UTC().Truncate(time.Second)
		}
		if _, err := t.PushSpec(ctx, desc, all.IndexSpec, nil, created); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	if err := t.Write(ctx, func(store oras.GraphTarget) error {
		if err := store.Tag(ctx, desc, tag); err != nil {
			return t.wrap(err, t.name+":"+tag, "")
		}
		return nil
	}); err != nil {
		return ocispec.Descriptor{}, err
	}
	return desc, nil
}

// isDigestRef reports whether ref is a digest rather than a tag.
func isDigestRef(ref string) bool {
	_, err := digest.Parse(ref)
	return err == nil
}
