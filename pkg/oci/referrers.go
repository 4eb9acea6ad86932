package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/compatkit/compatkit/internal/parallel"
	"github.com/compatkit/compatkit/pkg/spec"
)

func jsonUnmarshal(data []byte, v any) error {
	return json.Unmarshal(data, v)
}

// Created returns the time in the org.opencontainers.image.created annotation of desc (image-spec
// v1.1 annotations.md: RFC 3339), and false when it is missing or does not parse.
func Created(desc ocispec.Descriptor) (time.Time, bool) {
	v, ok := desc.Annotations[ocispec.AnnotationCreated]
	if !ok {
		return time.Time{}, false
	}
	c, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, false
	}
	return c, true
}

// MaxClockSkew is how far in the future a creation time may be and still order referrers: a
// time beyond it (a clock far off, or someone dating a referrer in 2099 so that it stays the
// newest) counts as no time at all.
const MaxClockSkew = 5 * time.Minute

// CreatedBefore returns the org.opencontainers.image.created time of desc when it is valid and
// not after now+MaxClockSkew, and false otherwise.
func CreatedBefore(desc ocispec.Descriptor, now time.Time) (time.Time, bool) {
	c, ok := Created(desc)
	if !ok || c.After(now.Add(MaxClockSkew)) {
		return time.Time{}, false
	}
	return c, true
}

// SortNewestFirst orders referrer descriptors newest first by their org.opencontainers.image.created
// annotation (image-spec v1.1 annotations.md, the rule by which NFD picks the newest spec); those
// without a valid timestamp, or with one beyond MaxClockSkew in the future, come last; ties are
// broken by digest so the order is deterministic. The annotation of a listing is not signed: under a
// trust policy, pkg/signing orders by the time inside the digest-checked referrer manifest.
func SortNewestFirst(descs []ocispec.Descriptor) {
	now := time.Now()
	sort.SliceStable(descs, func(i, j int) bool {
		ci, oki := CreatedBefore(descs[i], now)
		cj, okj := CreatedBefore(descs[j], now)
		if oki != okj {
			return oki
		}
		if oki && !ci.Equal(cj) {
			return ci.After(cj)
		}
		return descs[i].Digest < descs[j].Digest
	})
}

// Referrers lists the referrers of subject with the given artifactType (spec.ArtifactType for
// compatibility specs; "" for all), newest first (SortNewestFirst). It uses the referrers API
// (distribution-spec v1.1 "Listing Referrers") and, on registries without it, the referrers tag
// schema "<alg>-<hex>" ("Referrers Tag Schema"); in an OCI layout, the referrers recorded in it.
// Each digest is listed once. No referrers is an empty list, not an error.
func (t *Target) Referrers(ctx context.Context, subject ocispec.Descriptor, artifactType string) ([]ocispec.Descriptor, error) {
	var refs []ocispec.Descriptor
	var err error
	if repo, ok := t.Store().(*remote.Repository); ok {
		refs, err = t.listReferrers(ctx, repo, subject, artifactType)
	} else {
		refs, err = registry.Referrers(ctx, t.Store(), subject, artifactType)
		err = t.wrap(err, "listing referrers of "+t.name+"@"+subject.Digest.String(), "")
	}
	if err != nil {
		return nil, err
	}
	// Client-side filter as well (a non-compliant registry may ignore the artifactType filter),
	// and each referrer once: a list that repeats a digest costs nothing more to read.
	seen := make(map[digest.Digest]bool, len(refs))
	kept := refs[:0]
	for _, r := range refs {
		if (artifactType == "" || r.ArtifactType == artifactType) && !seen[r.Digest] {
			seen[r.Digest] = true
			kept = append(kept, r)
		}
	}
	refs = kept
	SortNewestFirst(refs)
	return refs, nil
}

// FetchSpec fetches a compatibility referrer manifest and its spec (layers[0]) and parses the spec
// with spec.Parse, naming "REPO@DIGEST" as its source. It checks, before downloading each part,
// that the manifest is an image manifest (image-spec v1.1 manifest.md) of at most
// MaxManifestBytes with artifactType spec.ArtifactType, and that layers[0] has media type
// spec.MediaTypeSpec and at most spec.MaxSpecBytes (ErrInvalidArtifact, ErrTooLarge); the content
// is verified against its digest (image-spec v1.1 descriptor.md "Verification").
func (t *Target) FetchSpec(ctx context.Context, referrer ocispec.Descriptor) (*spec.Spec, *ocispec.Manifest, error) {
	src := t.name + "@" + referrer.Digest.String()
	if referrer.MediaType != ocispec.MediaTypeImageManifest {
		return nil, nil, fmt.Errorf("%w: %s: media type %s, want %s", ErrInvalidArtifact, src, referrer.MediaType, ocispec.MediaTypeImageManifest)
	}
	if referrer.ArtifactType != "" && referrer.ArtifactType != spec.ArtifactType {
		return nil, nil, fmt.Errorf("%w: %s: artifactType %s, want %s", ErrInvalidArtifact, src, referrer.ArtifactType, spec.ArtifactType)
	}
	// The listing may say which spec blob the manifest names (AnnotationSpecLayer): fetch both at
	// once. The blob counts only if the manifest, verified against its digest, names it.
	hinted, hasHint := specLayerHint(referrer)
	if hasHint {
		if _, cached := t.get(referrer.Digest); cached {
			hasHint = false // the manifest is here: no round trip to save
		}
	}
	var early []byte
	var wg sync.WaitGroup
	if hasHint {
		earlyCtx, cancel := context.WithCancel(ctx)
		wg.Go(func() {
			if b, err := t.fetchCached(earlyCtx, hinted); err == nil {
				early = b
			}
		})
		defer func() {
			cancel()
			wg.Wait()
		}()
	}
	m, err := t.FetchManifest(ctx, referrer)
	if err != nil {
		return nil, nil, err
	}
	if m.MediaType != ocispec.MediaTypeImageManifest {
		return nil, nil, fmt.Errorf("%w: %s: manifest mediaType %q, want %s", ErrInvalidArtifact, src, m.MediaType, ocispec.MediaTypeImageManifest)
	}
	if m.ArtifactType != spec.ArtifactType {
		return nil, nil, fmt.Errorf("%w: %s: manifest artifactType %q, want %s", ErrInvalidArtifact, src, m.ArtifactType, spec.ArtifactType)
	}
	if len(m.Layers) == 0 {
		return nil, nil, fmt.Errorf("%w: %s: no layers; layers[0] must be the spec (%s)", ErrInvalidArtifact, src, spec.MediaTypeSpec)
	}
	l := m.Layers[0]
	if l.MediaType != spec.MediaTypeSpec {
		return nil, nil, fmt.Errorf("%w: %s: layers[0] has media type %s, want %s", ErrInvalidArtifact, src, l.MediaType, spec.MediaTypeSpec)
	}
	if l.Size > spec.MaxSpecBytes || l.Size < 0 {
		return nil, nil, fmt.Errorf("%w: %s: spec layer %s is %d bytes, the limit is %d", ErrTooLarge, src, l.Digest, l.Size, spec.MaxSpecBytes)
	}
	var data []byte
	if hasHint {
		wg.Wait()
		if l.Digest == hinted.Digest && int64(len(early)) == l.Size {
			data = early
		}
	}
	if data == nil {
		if data, err = t.fetchCached(ctx, l); err != nil {
			return nil, nil, t.wrap(err, src+": spec layer "+l.Digest.String(), "")
		}
	}
	s, err := spec.Parse(data, src)
	if err != nil {
		return nil, nil, err
	}
	return s, m, nil
}

// PushSpec pushes s as a compatibility referrer of subject (image-spec v1.1 manifest.md
// "subject" and "Guidelines for Artifact Usage"): the spec as YAML in layers[0]
// (spec.MediaTypeSpec), prov as JSON in layers[1] when not nil (spec.MediaTypeProvenance), the
// empty config (application/vnd.oci.empty.v1+json), artifactType spec.ArtifactType, and the
// annotation org.opencontainers.image.created = created in RFC 3339 UTC (the current time when
// created is zero; pass it explicitly for reproducible digests), and AnnotationSpecLayer and
// AnnotationSpecLayerSize naming layers[0]. It pushes the blobs, concurrently, while it checks
// that subject exists, and only then the manifest (distribution-spec v1.1 "Pushing Manifests":
// referenced blobs must exist), so a failure leaves at most unreferenced blobs. On registries
// without the referrers API, oras-go updates the "<alg>-<hex>" referrers tag. The referrer is then
// read back (EnsureListed): a registry that does not list it gets it in its referrers tag index.
// In an OCI layout it writes under the layout's lock (Write). It returns the descriptor of the
// referrer manifest.
func (t *Target) PushSpec(ctx context.Context, subject ocispec.Descriptor, s *spec.Spec, prov *spec.Provenance, created time.Time) (ocispec.Descriptor, error) {
	var d ocispec.Descriptor
	err := t.Write(ctx, func(oras.GraphTarget) error {
		var err error
		d, err = t.pushSpec(ctx, subject, s, prov, created)
		return err
	})
	return d, err
}

// pushSpec is PushSpec's work, under Write.
func (t *Target) pushSpec(ctx context.Context, subject ocispec.Descriptor, s *spec.Spec, prov *spec.Provenance, created time.Time) (ocispec.Descriptor, error) {
	sub := t.name + "@" + subject.Digest.String()
	if !IsManifest(subject.MediaType) && !IsIndex(subject.MediaType) {
		return ocispec.Descriptor{}, fmt.Errorf("%w: subject %s has media type %q: a subject must be an image manifest or index (OCI or Docker)", ErrInvalidArtifact, sub, subject.MediaType)
	}
	if s == nil {
		return ocispec.Descriptor{}, fmt.Errorf("pushing a spec to %s: no spec", sub)
	}
	if err := s.Validate(); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("pushing a spec to %s: %w", sub, err)
	}
	y, err := s.MarshalYAML()
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("pushing a spec to %s: %w", sub, err)
	}
	if len(y) > spec.MaxSpecBytes {
		return ocispec.Descriptor{}, fmt.Errorf("%w: the spec for %s is %d bytes, the limit is %d", ErrTooLarge, sub, len(y), spec.MaxSpecBytes)
	}
	layers := []ocispec.Descriptor{content.NewDescriptorFromBytes(spec.MediaTypeSpec, y)}
	blobs := [][]byte{y}
	if prov != nil {
		pj, err := json.Marshal(prov)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("pushing provenance to %s: %w", sub, err)
		}
		layers = append(layers, content.NewDescriptorFromBytes(spec.MediaTypeProvenance, pj))
		blobs = append(blobs, pj)
	}
	config := ocispec.DescriptorEmptyJSON // pushed here, not by PackManifest (which asks first)
	pushes := append(append([]ocispec.Descriptor(nil), layers...), config)
	datas := append(append([][]byte(nil), blobs...), config.Data)
	// The blobs and the check that the subject exists, all at once: a missing subject leaves at
	// most unreferenced blobs (collected by the registry), never a manifest.
	pushBlobs := func(checkSubject bool) error {
		errs := make([]error, len(pushes)+1)
		var wg sync.WaitGroup
		for i, l := range pushes {
			wg.Go(func() {
				if err := t.Store().Push(ctx, l, bytes.NewReader(datas[i])); err != nil && !isAlreadyExists(err) {
					errs[i] = t.wrap(err, "pushing blob "+l.Digest.String()+" to "+t.name, "")
				}
			})
		}
		if checkSubject {
			wg.Go(func() { errs[len(pushes)] = t.subjectExists(ctx, subject) })
		}
		wg.Wait()
		if err := errs[len(pushes)]; err != nil {
			return err
		}
		for _, err := range errs {
			if err != nil {
				return err // the first; the others are of the same push
			}
		}
		return nil
	}
	if err := pushBlobs(true); err != nil {
		return ocispec.Descriptor{}, err
	}
	if created.IsZero() {
		created = time.Now()
	}
	ann := map[string]string{
		ocispec.AnnotationCreated: created.UTC().Format(time.RFC3339),
		AnnotationSpecLayer:       layers[0].Digest.String(),
		AnnotationSpecLayerSize:   strconv.FormatInt(layers[0].Size, 10),
	}
	if tags := specTags(s); tags != "" {
		ann[AnnotationSpecTags] = tags
	}
	opts := oras.PackManifestOptions{
		Subject:             &subject,
		Layers:              layers,
		ConfigDescriptor:    &config,
		ManifestAnnotations: ann,
	}
	desc, err := oras.PackManifest(ctx, t.Store(), oras.PackManifestVersion1_1, spec.ArtifactType, opts)
	if isBlobUnknown(err) {
		// Writers uploading the same blob at once can leave distribution without its link for a
		// moment: push the blobs again and retry once.
		if err = pushBlobs(false); err == nil {
			desc, err = oras.PackManifest(ctx, t.Store(), oras.PackManifestVersion1_1, spec.ArtifactType, opts)
		}
	}
	if isAlreadyExists(err) {
		// The same spec, subject and time were pushed before (an OCI layout refuses the second
		// push): the manifest is deterministic, so compute its descriptor in memory.
		desc, err = oras.PackManifest(ctx, memory.New(), oras.PackManifestVersion1_1, spec.ArtifactType, opts)
	}
	if err != nil {
		return ocispec.Descriptor{}, t.wrap(err, "pushing the referrer manifest of "+sub, "")
	}
	if err := t.EnsureListed(ctx, subject, desc); err != nil {
		return ocispec.Descriptor{}, err
	}
	return desc, nil
}

// Annotations of a compatibility referrer manifest that name its spec layer (layers[0]), so that
// a reader can fetch the manifest and the spec at once: the digest and the size in bytes. They are
// copied into referrers listings like every manifest annotation (distribution-spec v1.1); a
// reader uses the blob only when the manifest names the same layer.
const (
	AnnotationSpecLayer     = "dev.compatkit.image-compatibility.layer.digest"
	AnnotationSpecLayerSize = "dev.compatkit.image-compatibility.layer.size"
)

// specLayerHint returns the spec layer a referrer's listed annotations name, when they name a
// valid digest and a size within spec.MaxSpecBytes.
func specLayerHint(referrer ocispec.Descriptor) (ocispec.Descriptor, bool) {
	d, err := digest.Parse(referrer.Annotations[AnnotationSpecLayer])
	if err != nil {
		return ocispec.Descriptor{}, false
	}
	n, err := strconv.ParseInt(referrer.Annotations[AnnotationSpecLayerSize], 10, 64)
	if err != nil || n < 0 || n > spec.MaxSpecBytes {
		return ocispec.Descriptor{}, false
	}
	return ocispec.Descriptor{MediaType: spec.MediaTypeSpec, Digest: d, Size: n}, true
}

// subjectExists checks that subject is in the repository or layout: known when this Target
// fetched it, else asked (a HEAD on a registry).
func (t *Target) subjectExists(ctx context.Context, subject ocispec.Descriptor) error {
	if _, ok := t.get(subject.Digest); ok {
		return nil
	}
	sub := t.name + "@" + subject.Digest.String()
	ok, err := t.Store().Exists(ctx, subject)
	if err != nil {
		return t.wrap(err, "checking subject "+sub, "")
	}
	if !ok {
		return fmt.Errorf("%w: subject %s: push the image first, or resolve its reference again", ErrNotFound, sub)
	}
	return nil
}

// isBlobUnknown reports a manifest PUT refused because a blob it references is unknown
// (distribution-spec v1.1 MANIFEST_BLOB_UNKNOWN, or BLOB_UNKNOWN).
func isBlobUnknown(err error) bool {
	var er *errcode.ErrorResponse
	if !errors.As(err, &er) {
		return false
	}
	for _, e := range er.Errors {
		if e.Code == errcode.ErrorCodeManifestBlobUnknown || e.Code == errcode.ErrorCodeBlobUnknown {
			return true
		}
	}
	return false
}

func isAlreadyExists(err error) bool {
	return err != nil && errors.Is(err, errdef.ErrAlreadyExists)
}

// Entry is one compatibility referrer found by Discover.
type Entry struct {
	// Subject is the manifest or index the spec describes; from an index, its descriptor in the
	// index, with the platform (image-spec v1.1 image-index.md).
	Subject ocispec.Descriptor
	// Referrer is the descriptor of the referrer manifest, as the referrers list gives it.
	Referrer ocispec.Descriptor
	// Created is the referrer's org.opencontainers.image.created time; zero when missing or invalid.
	Created time.Time
}

// Discover resolves the reference and lists the compatibility referrers (artifactType
// spec.ArtifactType) of what it names and, for an image index, of every index nested in it and
// every image manifest they list (Tree; BuildKit's attestation manifests are skipped), queried
// concurrently (at most Options.Concurrency at once), as one flat list: the resolved subject
// first, then the tree in depth-first order, each subject's referrers newest first. An error
// listing any subject's referrers is an error: the list is never silently incomplete.
func (t *Target) Discover(ctx context.Context) ([]Entry, error) {
	root, err := t.Resolve(ctx)
	if err != nil {
		return nil, err
	}
	tr, err := t.Tree(ctx, root)
	if err != nil {
		return nil, err
	}
	return t.DiscoverTree(ctx, tr)
}

// DiscoverTree is Discover on a tree already read.
func (t *Target) DiscoverTree(ctx context.Context, tr *Tree) ([]Entry, error) {
	subjects := []ocispec.Descriptor{tr.Root}
	if len(tr.Indexes) > 1 {
		subjects = append(subjects, tr.Indexes[1:]...)
	}
	for _, m := range tr.Manifests {
		if !m.Attestation() {
			subjects = append(subjects, m.Descriptor)
		}
	}
	results := make([][]ocispec.Descriptor, len(subjects))
	errs := make([]error, len(subjects))
	parallel.Each(len(subjects), t.concurrency, func(i int) {
		if i > 0 && errs[0] != nil {
			return
		}
		results[i], errs[i] = t.Referrers(ctx, subjects[i], spec.ArtifactType)
	})
	var out []Entry
	for i, refs := range results {
		if errs[i] != nil {
			return nil, errs[i]
		}
		for _, r := range refs {
			c, _ := Created(r)
			out = append(out, Entry{Subject: subjects[i], Referrer: r, Created: c})
		}
	}
	return out, nil
}

// NewestSpec returns the newest compatibility spec of subject (what NFD evaluates: layers[0] of
// the newest referrer by org.opencontainers.image.created, image-spec v1.1 annotations.md) with
// its referrer descriptor. A subject without compatibility referrers gives ErrNoSpec.
func (t *Target) NewestSpec(ctx context.Context, subject ocispec.Descriptor) (*spec.Spec, ocispec.Descriptor, error) {
	refs, err := t.Referrers(ctx, subject, spec.ArtifactType)
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	if len(refs) == 0 {
		return nil, ocispec.Descriptor{}, fmt.Errorf("%w: %s@%s has no referrer of artifactType %s: attach one with `compat-attach attach`", ErrNoSpec, t.name, subject.Digest, spec.ArtifactType)
	}
	s, m, err := t.FetchSpec(ctx, refs[0])
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	if err := CheckSubject(m, subject, t.name+"@"+refs[0].Digest.String()); err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	return s, refs[0], nil
}

// CheckSubject checks that the referrer manifest m (named src in errors) has subject as its
// subject (image-spec v1.1 manifest.md "subject"): a referrers list or a tag-schema index names
// referrers without proof, so a referrer listed under one image but made for another is refused
// (ErrWrongSubject).
func CheckSubject(m *ocispec.Manifest, subject ocispec.Descriptor, src string) error {
	if m.Subject == nil {
		return fmt.Errorf("%w: %s has no subject, but is listed as a referrer of %s", ErrWrongSubject, src, subject.Digest)
	}
	if m.Subject.Digest != subject.Digest {
		return fmt.Errorf("%w: %s describes %s, but is listed as a referrer of %s", ErrWrongSubject, src, m.Subject.Digest, subject.Digest)
	}
	return nil
}

// AnnotationSpecTags is a referrer manifest annotation listing the tags of the spec's compatibility
// sets (comma-separated, in spec order, without repeats). Referrers listings carry manifest
// annotations (image-spec v1.1 referrers, and the tag schema's index), so discover shows the tags
// without fetching any spec.
const AnnotationSpecTags = "dev.compatkit.image-compatibility.tags"

// specTags joins the distinct set tags of s.
func specTags(s *spec.Spec) string {
	var tags []string
	seen := map[string]bool{}
	for _, c := range s.Compatibilities {
		if c.Tag != "" && !seen[c.Tag] {
			seen[c.Tag] = true
			tags = append(tags, c.Tag)
		}
	}
	return strings.Join(tags, ",")
}

// Tags returns the set tags a referrer descriptor announces (AnnotationSpecTags), nil when none.
func Tags(referrer ocispec.Descriptor) []string {
	if v := referrer.Annotations[AnnotationSpecTags]; v != "" {
		return strings.Split(v, ",")
	}
	return nil
}
