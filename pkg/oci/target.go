// Package oci reads and writes compatibility specs (pkg/spec) as OCI referrers of existing images,
// in registries (OCI distribution-spec v1.1, with the referrers API or the referrers tag schema
// fallback) and in OCI image layouts on disk (image-spec v1.1 image-layout.md), through oras-go v2.
//
// Reading a spec fetches only manifests, indexes, referrer manifests and the spec blob: never a
// layer or config blob of the image. Writing pushes blobs before the manifest that references
// them, and checks that the subject exists first, so a failed push leaves nothing dangling.
package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/compatkit/compatkit/internal/fileutil"
	"github.com/compatkit/compatkit/internal/safetext"
)

// MaxManifestBytes is the largest manifest or index this package fetches, checked on the
// descriptor's size before downloading. It is the 4 MiB that registries must accept for a
// manifest (distribution-spec v1.1, "Pushing Manifests": "registries SHOULD accept manifests of
// at least 4 megabytes").
const MaxManifestBytes = 4 << 20

// DefaultConcurrency is how many subjects Discover queries at once when Options.Concurrency is 0.
const DefaultConcurrency = 4

// Options says how to reach a target. The zero value means a registry over HTTPS with the Docker
// credentials (distribution-spec v1.1 over HTTPS, tokens as in the Docker registry auth spec).
type Options struct {
	// OCILayout means the reference is an OCI image layout directory (image-spec v1.1
	// image-layout.md): "path:tag", "path@sha256:<hex>" or "path" alone (the layout's only tag),
	// as with `oras --oci-layout`.
	OCILayout bool
	// PlainHTTP talks HTTP instead of HTTPS to the registry (for local test registries).
	PlainHTTP bool
	// HTTPClient sends the requests; it is wrapped in an auth client, and what it reads counts
	// against the Session's MaxBytes. nil means NewHTTPClient(Session.Timeout): retries 5xx and
	// 429 with backoff, timeouts on every exchange, at most MaxRedirects redirects.
	HTTPClient *http.Client
	// Credentials answers the registry's authentication challenge. nil means the Docker config
	// file and its credential helpers (credentials.NewStoreFromDocker).
	Credentials credentials.Store
	// Concurrency bounds how many subjects Discover queries at once; 0 means DefaultConcurrency.
	Concurrency int
	// MaxReferrerPages bounds the pages of one referrers listing; 0 means DefaultMaxReferrerPages.
	MaxReferrerPages int
	// Session is shared by the Targets of one process: what each repository supports is probed
	// once, and its Cache keeps immutable content. nil means a Session of this Target alone.
	Session *Session
}

// Target is one repository of a registry, or one OCI image layout, plus the reference (tag or
// digest, distribution-spec v1.1 "<reference>") inside it. A Target caches the manifests it has
// fetched by digest (they are content addressed, image-spec v1.1 descriptor.md "Digests"), so a
// caller never fetches a manifest twice. It is safe for concurrent use.
type Target struct {
	given       string // the reference as the user gave it
	name        string // "registry/repository" or the layout path
	reference   string // tag or digest inside name
	host        string // registry host, "" for a layout
	layout      bool
	store       oras.GraphTarget
	concurrency int
	maxPages    int
	session     *Session

	mu    sync.Mutex
	cache map[digest.Digest][]byte
}

// Open parses ref and opens the repository or layout it names. A registry reference has the form
// REGISTRY/REPOSITORY[:TAG|@DIGEST] (distribution-spec v1.1 grammar; no tag means "latest"); a
// layout reference "path[:tag|@digest]". Open does not contact the registry; a layout directory
// must exist.
func Open(ctx context.Context, ref string, opts Options) (*Target, error) {
	conc := opts.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	t := &Target{given: ref, concurrency: conc, cache: map[digest.Digest][]byte{}, maxPages: opts.MaxReferrerPages, session: opts.Session}
	if t.maxPages <= 0 {
		t.maxPages = DefaultMaxReferrerPages
	}
	if t.session == nil {
		t.session = &Session{}
	}
	if opts.OCILayout {
		return t, t.openLayout(ctx, ref)
	}
	r, err := registry.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v: expected REGISTRY/REPOSITORY[:TAG|@sha256:DIGEST], e.g. ghcr.io/org/app:v1 (use --oci-layout for a directory)", ErrInvalidReference, ref, err)
	}
	if r.Reference == "" {
		r.Reference = "latest"
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = NewHTTPClient(t.session.Timeout)
	}
	hc = withBudget(hc, t.session)
	creds := opts.Credentials
	if creds == nil {
		creds, err = credentials.NewStoreFromDocker(credentials.StoreOptions{})
		if err != nil {
			return nil, fmt.Errorf("%s: reading the Docker credentials: %w: fix ~/.docker/config.json or pass credentials explicitly", ref, err)
		}
	}
	client := &auth.Client{
		Client:     hc,
		Header:     http.Header{"User-Agent": {"compatkit"}},
		Cache:      auth.NewCache(),
		Credential: credentials.Credential(creds),
	}
	// SkipReferrersGC: oras-go deletes the old referrers tag index after writing a new one, and
	// distribution refuses DELETE by default (405): the write would fail after it succeeded. The
	// stale index stays, unreferenced.
	t.store = &remote.Repository{Client: client, Reference: r, PlainHTTP: opts.PlainHTTP, SkipReferrersGC: true}
	t.name = r.Registry + "/" + r.Repository
	t.reference = r.Reference
	t.host = r.Registry
	return t, nil
}

// ParseLayoutReference splits an OCI layout reference into the layout path and the tag or digest
// inside it: "path:tag", "path@sha256:<hex>" or "path" (reference ""). As in oras, the tag is what
// follows the last ':' after the last '/', so a directory name may itself contain ':' only if a
// tag follows. Tags follow the distribution-spec v1.1 tag grammar [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
func ParseLayoutReference(ref string) (path, reference string, err error) {
	bad := func(why string) (string, string, error) {
		return "", "", fmt.Errorf("%w: OCI layout reference %q: %s: expected PATH:TAG, PATH@sha256:DIGEST or PATH", ErrInvalidReference, ref, why)
	}
	if ref == "" {
		return bad("empty")
	}
	if i := strings.LastIndex(ref, "@"); i >= 0 && i > strings.LastIndex(ref, "/") {
		path, reference = ref[:i], ref[i+1:]
		if _, err := digest.Parse(reference); err != nil {
			return bad(fmt.Sprintf("%q is not a digest (%v)", reference, err))
		}
	} else if i := strings.LastIndex(ref, ":"); i >= 0 && i > strings.LastIndex(ref, "/") {
		path, reference = ref[:i], ref[i+1:]
		r := registry.Reference{Registry: "localhost", Repository: "x", Reference: reference}
		if err := r.ValidateReferenceAsTag(); err != nil {
			return bad(fmt.Sprintf("%q is not a valid tag", reference))
		}
	} else {
		path = ref
	}
	if path == "" {
		return bad("empty path")
	}
	return path, reference, nil
}

func (t *Target) openLayout(ctx context.Context, ref string) error {
	path, reference, err := ParseLayoutReference(ref)
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: OCI layout %s does not exist: check the path, or create it with `oras copy --to-oci-layout IMAGE %s:TAG`", ErrNotFound, path, path)
		}
		return fmt.Errorf("OCI layout %s: %w", path, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: OCI layout %s is not a directory", ErrInvalidReference, path)
	}
	s, err := openLayoutStore(ctx, path)
	if err != nil {
		return err
	}
	t.store, t.name, t.layout = s, path, true
	if reference == "" {
		var tags []string
		if err := s.Tags(ctx, "", func(page []string) error { tags = append(tags, page...); return nil }); err != nil {
			return fmt.Errorf("OCI layout %s: listing tags: %w", path, err)
		}
		switch len(tags) {
		case 1:
			reference = tags[0]
		case 0:
			// An untagged layout names its image when index.json has one: `cosign save` writes
			// the image index beside its signatures, oras lists every manifest it pushed.
			root, err := layoutRoot(path)
			if err != nil {
				return err
			}
			reference = root.String()
		default:
			return fmt.Errorf("%w: OCI layout %s has %d tags (%s): name one with %s:TAG", ErrInvalidReference, path, len(tags), strings.Join(tags, ", "), path)
		}
	}
	t.reference = reference
	return nil
}

// layoutRoot reads an untagged layout's index.json (image-spec v1.1 image-layout.md) and returns
// the digest of its image: the one image index listed without an artifactType, or when there is
// none, the one such image manifest. Referrers (an artifactType) and cosign's signature and
// attestation entries do not count. Anything else is an error that says to name a digest.
func layoutRoot(path string) (digest.Digest, error) {
	data, err := fileutil.ReadLimited(filepath.Join(path, "index.json"), MaxManifestBytes)
	if err != nil {
		return "", fmt.Errorf("OCI layout %s: %w", path, err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return "", fmt.Errorf("%w: OCI layout %s: index.json does not decode: %v", ErrInvalidArtifact, path, err)
	}
	var indexes, manifests []ocispec.Descriptor
	for _, d := range idx.Manifests {
		if d.ArtifactType != "" || strings.HasPrefix(d.Annotations["kind"], "dev.cosignproject.cosign/") && !strings.HasSuffix(d.Annotations["kind"], "/image") && !strings.HasSuffix(d.Annotations["kind"], "/imageIndex") {
			continue
		}
		switch {
		case IsIndex(d.MediaType):
			indexes = append(indexes, d)
		case IsManifest(d.MediaType):
			manifests = append(manifests, d)
		}
	}
	if len(indexes) > 1 && len(indexes) <= 64 {
		indexes = layoutRoots(path, indexes)
	}
	pick := indexes
	if len(pick) == 0 {
		pick = manifests
	}
	if len(pick) != 1 {
		return "", fmt.Errorf("%w: OCI layout %s has no tag and its index.json lists %d images (%d indexes, %d manifests): name one with %s@sha256:DIGEST", ErrNotFound, path, len(pick), len(indexes), len(manifests), path)
	}
	if err := pick[0].Digest.Validate(); err != nil {
		return "", fmt.Errorf("%w: OCI layout %s: index.json: %v", ErrInvalidArtifact, path, err)
	}
	return pick[0].Digest, nil
}

// layoutRoots keeps the indexes that no other of them lists (an index nested in another is not
// the image); an index whose blob cannot be read is kept.
func layoutRoots(path string, indexes []ocispec.Descriptor) []ocispec.Descriptor {
	listed := map[digest.Digest]bool{}
	for _, d := range indexes {
		if d.Digest.Validate() != nil || d.Size > MaxManifestBytes {
			continue
		}
		data, err := fileutil.ReadLimited(filepath.Join(path, "blobs", d.Digest.Algorithm().String(), d.Digest.Encoded()), MaxManifestBytes)
		if err != nil || d.Digest.Algorithm().FromBytes(data) != d.Digest {
			continue
		}
		var idx ocispec.Index
		if json.Unmarshal(data, &idx) != nil {
			continue
		}
		for _, m := range idx.Manifests {
			listed[m.Digest] = true
		}
	}
	var roots []ocispec.Descriptor
	for _, d := range indexes {
		if !listed[d.Digest] {
			roots = append(roots, d)
		}
	}
	return roots
}

// Name returns "registry/repository" or the layout path, for printing REPO@DIGEST
// (the digest-reference form of distribution-spec v1.1).
func (t *Target) Name() string { return t.name }

// IsRegistry reports whether the Target is a registry repository (not an OCI layout).
func (t *Target) IsRegistry() bool { return !t.layout }

// Host returns the registry host ("registry.example:5000"), "" for an OCI layout.
func (t *Target) Host() string { return t.host }

// Reference returns the reference as the user gave it to Open.
func (t *Target) Reference() string { return t.given }

// Tag returns the tag or digest inside the repository or layout that Resolve resolves
// (distribution-spec v1.1 "<reference>"); "latest" when a registry reference had none.
func (t *Target) Tag() string { return t.reference }

// Store returns the underlying oras-go target (a *remote.Repository or a *oci.Store), for
// operations this package does not wrap.
func (t *Target) Store() oras.GraphTarget {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.store
}

// Resolve resolves the reference to the descriptor of its manifest or index (distribution-spec
// v1.1 "Pulling manifests"). On a registry it issues one GET and keeps the manifest, verified
// against its digest, so that FetchIndex does not fetch it again, and in the Session's Cache; a
// digest reference whose content the Cache holds costs no request.
func (t *Target) Resolve(ctx context.Context) (ocispec.Descriptor, error) {
	if dg, err := digest.Parse(t.reference); err == nil && !t.layout {
		// A digest names content that never changes: when the Cache holds it, nothing to ask.
		if data, ok := t.session.Cache.Get(dg, MaxManifestBytes); ok {
			if mt, err := manifestMediaType(data); err == nil {
				t.put(dg, data)
				return ocispec.Descriptor{MediaType: mt, Digest: dg, Size: int64(len(data))}, nil
			}
		}
	}
	if rf, ok := t.Store().(registry.ReferenceFetcher); ok {
		desc, rc, err := rf.FetchReference(ctx, t.reference)
		if err != nil {
			flags := ""
			if repo, ok := t.Store().(*remote.Repository); ok && repo.PlainHTTP {
				flags = "--plain-http "
			}
			return ocispec.Descriptor{}, t.wrap(err, t.given, "check the tag with `oras repo tags "+flags+t.name+"`")
		}
		defer rc.Close()
		if desc.Size > MaxManifestBytes {
			return ocispec.Descriptor{}, fmt.Errorf("%w: %s: manifest of %d bytes, the limit is %d", ErrTooLarge, t.given, desc.Size, MaxManifestBytes)
		}
		data, err := content.ReadAll(rc, desc)
		if err != nil {
			return ocispec.Descriptor{}, t.wrap(err, t.given, "")
		}
		t.put(desc.Digest, data)
		if c := t.session.Cache; c != nil {
			// The content is immutable (it is verified against its digest); what the tag names is
			// not: it is kept as a hint only (Predict).
			c.Put(desc.Digest, data)
			if h, err := json.Marshal(ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}); err == nil {
				c.SetHint(t.resolveHintKey(), h)
			}
		}
		return desc, nil
	}
	desc, err := t.Store().Resolve(ctx, t.reference)
	if err != nil {
		hint := "check the tag with `oras repo tags --oci-layout " + t.name + "`"
		return ocispec.Descriptor{}, t.wrap(err, t.given, hint)
	}
	if !IsManifest(desc.MediaType) && !IsIndex(desc.MediaType) {
		// A manifest a layout holds without listing it in index.json (buildx and oras layouts
		// list only the root) resolves as a plain blob: read its media type from its content.
		return t.sniffManifest(ctx, desc)
	}
	return desc, nil
}

// Predict returns what the reference resolved to the last time this machine resolved it (kept in
// the Session's Cache), when its content is still in the Cache: a prediction to start reading
// early, never an answer (a tag moves; Resolve says what it names now). False for layouts, without
// a Cache, or when the reference was never resolved here.
func (t *Target) Predict() (ocispec.Descriptor, bool) {
	c := t.session.Cache
	if t.layout || c == nil {
		return ocispec.Descriptor{}, false
	}
	b, ok := c.Hint(t.resolveHintKey())
	if !ok {
		return ocispec.Descriptor{}, false
	}
	var d ocispec.Descriptor
	if json.Unmarshal(b, &d) != nil || d.Digest.Validate() != nil || (!IsIndex(d.MediaType) && !IsManifest(d.MediaType)) || d.Size > MaxManifestBytes {
		return ocispec.Descriptor{}, false
	}
	data, ok := c.Get(d.Digest, d.Size)
	if !ok || int64(len(data)) != d.Size {
		return ocispec.Descriptor{}, false
	}
	if mt, err := manifestMediaType(data); err != nil || mt != d.MediaType {
		return ocispec.Descriptor{}, false
	}
	t.put(d.Digest, data)
	return d, true
}

func (t *Target) resolveHintKey() string { return "resolve " + t.name + " " + t.reference }

// sniffManifest fetches the blob desc (at most MaxManifestBytes, digest-checked) and returns its
// descriptor with the media type the content declares, or for a manifest without mediaType
// (optional in image-spec v1.1), the one its fields imply; it caches the content.
func (t *Target) sniffManifest(ctx context.Context, desc ocispec.Descriptor) (ocispec.Descriptor, error) {
	if desc.Size > MaxManifestBytes || desc.Size < 0 {
		return ocispec.Descriptor{}, fmt.Errorf("%w: %s: %d bytes, more than a manifest (%d)", ErrTooLarge, t.given, desc.Size, MaxManifestBytes)
	}
	data, err := content.FetchAll(ctx, t.Store(), desc)
	if err != nil {
		return ocispec.Descriptor{}, t.wrap(err, t.given, "")
	}
	if desc.MediaType, err = manifestMediaType(data); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%w: %s %v", ErrInvalidReference, t.given, err)
	}
	t.put(desc.Digest, data)
	return desc, nil
}

// answerError is a registry's error answer, said for people, with the answer kept for errors.As.
type answerError struct {
	msg string
	er  *errcode.ErrorResponse
}

func (e *answerError) Error() string { return e.msg }
func (e *answerError) Unwrap() error { return e.er }

// manifestMediaType returns the media type a manifest or index declares, or for one without
// mediaType (optional in image-spec v1.1), the one its fields imply; an error when data is
// neither.
func manifestMediaType(data []byte) (string, error) {
	var probe struct {
		MediaType string            `json:"mediaType"`
		Manifests json.RawMessage   `json:"manifests"`
		Config    json.RawMessage   `json:"config"`
		Layers    []json.RawMessage `json:"layers"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return "", fmt.Errorf("is neither a manifest nor an index: %v", err)
	}
	switch {
	case IsManifest(probe.MediaType) || IsIndex(probe.MediaType):
		return probe.MediaType, nil
	case probe.MediaType == "" && probe.Manifests != nil:
		return ocispec.MediaTypeImageIndex, nil
	case probe.MediaType == "" && probe.Config != nil:
		return ocispec.MediaTypeImageManifest, nil
	}
	return "", fmt.Errorf("is neither an image manifest nor an index (media type %q)", probe.MediaType)
}

// FetchIndex returns the image index that desc describes (image-spec v1.1 image-index.md). desc
// must have media type application/vnd.oci.image.index.v1+json (or Docker's manifest list),
// otherwise the error is ErrNotIndex. Every entry must have a valid digest (descriptor.md),
// otherwise the error is ErrInvalidArtifact: a registry that serves one could put newlines in
// every message that names the entry. The index is fetched at most once per Target.
func (t *Target) FetchIndex(ctx context.Context, desc ocispec.Descriptor) (*ocispec.Index, error) {
	if !IsIndex(desc.MediaType) {
		return nil, fmt.Errorf("%w: %s@%s has media type %s: it is a single-platform image, use it directly", ErrNotIndex, t.name, desc.Digest, desc.MediaType)
	}
	data, err := t.fetchManifest(ctx, desc)
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := jsonUnmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%w: %s@%s: index does not decode: %v", ErrInvalidArtifact, t.name, desc.Digest, err)
	}
	if idx.MediaType != "" && idx.MediaType != desc.MediaType {
		return nil, fmt.Errorf("%w: %s@%s: index says mediaType %s, its descriptor %s", ErrInvalidArtifact, t.name, desc.Digest, idx.MediaType, desc.MediaType)
	}
	for i, m := range idx.Manifests {
		if err := m.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %s@%s: manifests[%d] has digest %q: %v", ErrInvalidArtifact, t.name, desc.Digest, i, m.Digest, err)
		}
	}
	return &idx, nil
}

// FetchManifest returns the image manifest that desc describes (image-spec v1.1 manifest.md, or a
// Docker schema-2 manifest, which has the same shape), fetched at most once per Target and
// verified against desc's digest and size.
func (t *Target) FetchManifest(ctx context.Context, desc ocispec.Descriptor) (*ocispec.Manifest, error) {
	if !IsManifest(desc.MediaType) {
		return nil, fmt.Errorf("%w: %s@%s has media type %s, want %s or %s", ErrInvalidArtifact, t.name, desc.Digest, desc.MediaType, ocispec.MediaTypeImageManifest, MediaTypeDockerManifest)
	}
	data, err := t.fetchManifest(ctx, desc)
	if err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := jsonUnmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %s@%s: manifest does not decode: %v", ErrInvalidArtifact, t.name, desc.Digest, err)
	}
	return &m, nil
}

// ForgetManifests drops the manifests the Target keeps (every manifest and index it fetched, by
// digest): a long-lived holder of what was read (an admission webhook's cache of images) keeps
// the parsed result, not the bytes. A later fetch reads them again.
func (t *Target) ForgetManifests() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cache = map[digest.Digest][]byte{}
}

func (t *Target) get(d digest.Digest) ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.cache[d]
	return b, ok
}

func (t *Target) put(d digest.Digest, b []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cache[d] = b
}

// fetchManifest fetches a manifest or index by descriptor, once: size checked before, digest
// verified after (content.FetchAll).
func (t *Target) fetchManifest(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	if b, ok := t.get(desc.Digest); ok {
		return b, nil
	}
	if desc.Size > MaxManifestBytes || desc.Size < 0 {
		return nil, fmt.Errorf("%w: %s@%s: manifest of %d bytes, the limit is %d", ErrTooLarge, t.name, desc.Digest, desc.Size, MaxManifestBytes)
	}
	b, err := t.fetchCached(ctx, desc)
	if err != nil {
		return nil, t.wrap(err, t.name+"@"+desc.Digest.String(), "")
	}
	t.put(desc.Digest, b)
	return b, nil
}

// FetchBlob fetches the blob desc (a spec or bundle layer) when it is at most max bytes, checked on
// the descriptor before downloading and verified against its digest after; from the Session's
// Cache when it holds it.
func (t *Target) FetchBlob(ctx context.Context, desc ocispec.Descriptor, max int64) ([]byte, error) {
	if desc.Size > max || desc.Size < 0 {
		return nil, fmt.Errorf("%w: %s@%s: %d bytes, the limit is %d", ErrTooLarge, t.name, desc.Digest, desc.Size, max)
	}
	b, err := t.fetchCached(ctx, desc)
	if err != nil {
		return nil, t.wrap(err, t.name+"@"+desc.Digest.String(), "")
	}
	return b, nil
}

// fetchCached fetches desc by digest, through the Session's Cache for registries (a layout is on
// disk already).
func (t *Target) fetchCached(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	cache := t.session.Cache
	if t.layout {
		cache = nil
	}
	if b, ok := cache.Get(desc.Digest, desc.Size); ok && int64(len(b)) == desc.Size {
		// What comes from the cache counts as read: the budget bounds the work of a command
		// whatever was cached before.
		if err := t.session.charge(int64(len(b))); err != nil {
			return nil, err
		}
		return b, nil
	}
	b, err := content.FetchAll(ctx, t.Store(), desc)
	if err != nil {
		return nil, err
	}
	cache.Put(desc.Digest, b)
	return b, nil
}

// wrap turns an oras-go or HTTP error into one that names what and where, with a sentinel where
// one applies, and says what to do next (hint, when not empty).
func (t *Target) wrap(err error, what, hint string) error {
	if err == nil {
		return nil
	}
	var ne net.Error
	if !t.layout && errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s: registry %s did not answer in time (timeout): %w: retry later, or raise --timeout", what, t.host, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	sfx := ""
	if hint != "" {
		sfx = ": " + hint
	}
	where := "registry " + t.host
	if t.layout {
		where = "OCI layout " + t.name
	}
	var er *errcode.ErrorResponse
	switch {
	case errors.Is(err, errdef.ErrNotFound):
		return fmt.Errorf("%w: %s (%s)%s", ErrNotFound, what, where, sfx)
	case errors.As(err, &er):
		if er.StatusCode == http.StatusNotFound {
			return fmt.Errorf("%w: %s (%s: %v)%s", ErrNotFound, what, where, er, sfx)
		}
		next := ""
		switch {
		case er.StatusCode == http.StatusUnauthorized || er.StatusCode == http.StatusForbidden:
			next = ": log in with `oras login " + t.host + "` or check your permissions"
		case er.StatusCode >= 500:
			next = ": the registry failed; retry later or ask its operator"
		}
		detail := ""
		if len(er.Errors) > 0 {
			// The registry's words, on one line and escaped: they may say anything.
			detail = ": " + safetext.Line(er.Errors.Error())
		}
		return &answerError{msg: fmt.Sprintf("%s: registry %s answered %d %s to %s %s%s%s", what, t.host, er.StatusCode, http.StatusText(er.StatusCode), er.Method, er.URL.Redacted(), detail, next), er: er}
	case errors.Is(err, content.ErrMismatchedDigest), errors.Is(err, content.ErrTrailingData), errors.Is(err, errdef.ErrSizeExceedsLimit),
		strings.Contains(err.Error(), "mismatch Content-Length"):
		return fmt.Errorf("%s (%s): content does not match its descriptor: %w: the registry or layout is corrupt or tampered with", what, where, err)
	}
	if errors.As(err, &ne) {
		return fmt.Errorf("%s: cannot reach registry %s: %w: check the address, the network, and --plain-http for an HTTP registry", what, t.host, err)
	}
	return fmt.Errorf("%s (%s): %w", what, where, err)
}
