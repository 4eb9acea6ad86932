package admission

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/match"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/signing"
)

// ErrNotAllowed means an image's registry is not in the allowlist (Options.AllowRegistries): the
// webhook never contacts it.
var ErrNotAllowed = errors.New("registry not in the webhook's allowlist")

// ImageRef is a container image reference as a pod names it, normalised as a container runtime
// does (distribution/reference: "nginx" is docker.io/library/nginx:latest).
type ImageRef struct {
	// Given is the reference as written in the pod.
	Given string
	// Registry is the registry host[:port] ("docker.io" for Docker Hub).
	Registry string
	// Repository is the repository path inside the registry.
	Repository string
	// Tag is the tag ("" when the reference has only a digest).
	Tag string
	// Digest is the digest the reference pins ("" for a tag).
	Digest digest.Digest
}

// ParseImageRef normalises a pod's image reference (the registry host lower-cased, without the
// default port 443). The error names the reference.
func ParseImageRef(s string) (ImageRef, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return ImageRef{}, fmt.Errorf("image %q: %w", s, err)
	}
	// Host names are case-insensitive and 443 is HTTPS's port: LOCALHOST:5000 and ghcr.io:443
	// are the registries localhost:5000 and ghcr.io, for the allowlist as for connections.
	host := strings.ToLower(reference.Domain(named))
	host = strings.TrimSuffix(host, ":443")
	r := ImageRef{Given: s, Registry: host, Repository: reference.Path(named)}
	if t, ok := named.(reference.Tagged); ok {
		r.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		r.Digest = d.Digest()
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest"
	}
	return r, nil
}

// Name is "registry/repository".
func (r ImageRef) Name() string { return r.Registry + "/" + r.Repository }

// String is the normalised reference: name:tag, name@digest or name:tag@digest.
func (r ImageRef) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// Pinned returns the reference as a pod may run it once resolved to d: the given text with
// "@d" added (the tag kept for people; the runtime pulls the digest).
func (r ImageRef) Pinned(d digest.Digest) string {
	if r.Digest != "" {
		return r.Given
	}
	return r.Given + "@" + d.String()
}

// allowed returns the first of the allowlist's patterns that r matches, "" when none does: a
// host[:port] ("ghcr.io"), a shell pattern ("*.example.com", path.Match), or
// "registry/repository-prefix/" ending in "/" (only repositories below it), or "*". An empty
// allowlist allows nothing.
func allowed(patterns []string, r ImageRef) string {
	for _, p := range patterns {
		if strings.HasSuffix(p, "/") {
			if strings.HasPrefix(r.Name()+"/", p) {
				return p
			}
			continue
		}
		if p == "*" || p == r.Registry {
			return p
		}
		if ok, _ := path.Match(p, r.Registry); ok {
			return p
		}
	}
	return ""
}

// endpoint is the host the webhook connects to for registry: Docker Hub's registry API is served
// by registry-1.docker.io, as Docker and containerd resolve "docker.io".
func endpoint(registry string) string {
	if registry == "docker.io" {
		return "registry-1.docker.io"
	}
	return registry
}

// ImageInfo is what the webhook knows about one image digest: its tree, the specs read under the
// trust policy, and the affinity derived from them. It is kept in the cache and shared by the
// requests that name the same digest with the same credentials; it is safe for concurrent use.
type ImageInfo struct {
	// Ref is the reference (normalised) that was resolved.
	Ref ImageRef
	// Digest is what Ref resolved to (the index or manifest).
	Digest digest.Digest
	// Image is the image read for decisions (its specs are read as decisions need them, once).
	Image *decide.Image
	// Affinity is the image's node affinity (decide.Image.Affinity); nil with AffinityErr set
	// when it has none (too large, unreadable specs, no trusted spec under RequireTrusted).
	Affinity    *decide.ImageAffinity
	AffinityErr error
	// Read is when the image was read.
	Read time.Time

	mu        sync.Mutex
	decisions map[string]*decide.Decision // by node feature set
}

// Decide returns the decision for the host of one node feature set, computed once per set.
func (ii *ImageInfo) Decide(ctx context.Context, set *FeatureSet, opts decide.Options) (*decide.Decision, error) {
	ii.mu.Lock()
	d, ok := ii.decisions[set.ID]
	ii.mu.Unlock()
	if ok {
		return d, nil
	}
	d, err := ii.Image.Decide(ctx, set.Host, opts)
	if err != nil {
		return nil, err
	}
	ii.mu.Lock()
	if ii.decisions == nil {
		ii.decisions = map[string]*decide.Decision{}
	}
	ii.decisions[set.ID] = d
	ii.mu.Unlock()
	return d, nil
}

// images reads images through pkg/decide and caches them: a tag's resolution for TagTTL, an
// image read by digest for SpecTTL (its referrers may change: a spec attached or signed later is
// seen when the entry expires), each keyed by the credentials used too, so that a namespace never
// sees what only another namespace's pull secret could read. Concurrent requests for one key
// share one read.
type images struct {
	opts    *Options
	metrics *metrics
	hc      *http.Client

	// reads bounds the registry reads in flight (MaxConcurrentReads), whatever the pods name;
	// nsReads those of each namespace (MaxReadsPerNamespace).
	reads   chan struct{}
	nsReads map[string]chan struct{}

	mu    sync.Mutex
	tags  map[string]tagEntry
	byD   map[string]*imageEntry
	bytes int64 // the sizes of the entries of byD
}

// acquire takes a read slot of namespace ns (at most MaxReadsPerNamespace of them at once), then
// one of all (MaxConcurrentReads), or fails when ctx ends first: one namespace's pods cannot hold
// every slot and starve the others.
func (c *images) acquire(ctx context.Context, ns string) error {
	c.mu.Lock()
	nsSlots, ok := c.nsReads[ns]
	if !ok {
		nsSlots = make(chan struct{}, c.opts.MaxReadsPerNamespace)
		c.nsReads[ns] = nsSlots
	}
	c.mu.Unlock()
	select {
	case nsSlots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting for one of the %d registry reads namespace %q may have in flight: %w", cap(nsSlots), ns, ctx.Err())
	}
	select {
	case c.reads <- struct{}{}:
		return nil
	case <-ctx.Done():
		<-nsSlots
		return fmt.Errorf("waiting for one of the %d registry reads in flight: %w", cap(c.reads), ctx.Err())
	}
}

func (c *images) release(ns string) {
	<-c.reads
	c.mu.Lock()
	nsSlots := c.nsReads[ns]
	c.mu.Unlock()
	<-nsSlots
}

type tagEntry struct {
	d       digest.Digest
	expires time.Time
}

type imageEntry struct {
	done    chan struct{}
	info    *ImageInfo
	err     error
	expires time.Time
	size    int64 // bytes read from the registry for it: what it holds, roughly
}

// credKey fingerprints the credentials for a registry: requests with other credentials do not
// share cache entries.
func credKey(store credentials.Store, registry string) string {
	if store == nil {
		return "-"
	}
	c, err := store.Get(context.Background(), registry)
	if err != nil || (c.Username == "" && c.Password == "" && c.AccessToken == "" && c.RefreshToken == "") {
		return "-"
	}
	h := sha256.Sum256([]byte(c.Username + "\x00" + c.Password + "\x00" + c.AccessToken + "\x00" + c.RefreshToken))
	return hex.EncodeToString(h[:8])
}

// get returns the image r names, read with creds (nil: anonymous), from the cache when fresh.
// hit reports a cache hit (no registry request was made).
func (c *images) get(ctx context.Context, ns string, r ImageRef, creds credentials.Store) (info *ImageInfo, hit bool, err error) {
	pattern := allowed(c.opts.AllowRegistries, r)
	if pattern == "" {
		return nil, false, fmt.Errorf("%w: %s (allowed: %s)", ErrNotAllowed, r.Registry, strings.Join(c.opts.AllowRegistries, ", "))
	}
	ck := credKey(creds, r.Registry)
	now := time.Now()
	d := r.Digest
	hit = true
	if d == "" {
		c.mu.Lock()
		te, ok := c.tags[ck+" "+r.String()]
		c.mu.Unlock()
		if ok && now.Before(te.expires) {
			d = te.d
		} else {
			hit = false
			t, err := c.target(ctx, endpoint(r.Registry)+"/"+r.Repository+":"+r.Tag, r, creds, nil)
			if err != nil {
				return nil, false, err
			}
			if err := c.acquire(ctx, ns); err != nil {
				return nil, false, fmt.Errorf("resolving %s: %w", r.Given, err)
			}
			start := time.Now()
			root, err := t.Resolve(ctx)
			c.release(ns)
			c.metrics.observeRegistry(pattern, "resolve", time.Since(start), err)
			if err != nil {
				return nil, false, fmt.Errorf("resolving %s: %w%s", r.Given, err, authHint(err, r.Registry))
			}
			d = root.Digest
			c.mu.Lock()
			c.tags[ck+" "+r.String()] = tagEntry{d: d, expires: now.Add(c.opts.TagTTL)}
			c.mu.Unlock()
		}
	}
	key := ck + " " + r.Name() + "@" + d.String()
	c.mu.Lock()
	e, ok := c.byD[key]
	if ok && e.expires.IsZero() { // being read
		c.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
		return e.info, hit, e.err
	}
	if ok && now.Before(e.expires) {
		c.mu.Unlock()
		return e.info, hit, e.err
	}
	e = &imageEntry{done: make(chan struct{})}
	c.byD[key] = e
	if len(c.byD) > c.opts.MaxCachedImages || c.bytes > c.opts.MaxCacheBytes {
		c.evictLocked(now)
	}
	c.mu.Unlock()

	// A read slot is taken within the request's budget: a request that finds none free fails
	// (the failure policy decides) and starts nothing. The read then runs on its own budget, not
	// the request's: a slow registry makes this request time out, and the next one finds the read
	// done.
	if err := c.acquire(ctx, ns); err != nil {
		c.mu.Lock()
		if c.byD[key] == e {
			delete(c.byD, key)
		}
		e.err, e.expires = fmt.Errorf("reading %s: %w", r.Given, err), now
		c.mu.Unlock()
		close(e.done)
		return nil, false, e.err
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.ReadTimeout)
	go func() {
		defer cancel()
		info, size, err := c.read(rctx, r, d, creds, pattern)
		c.release(ns)
		c.mu.Lock()
		e.info, e.err, e.size = info, err, size
		if c.byD[key] == e {
			c.bytes += size
		}
		if err != nil {
			e.expires = time.Now().Add(c.opts.ErrorTTL)
		} else {
			e.expires = time.Now().Add(c.opts.SpecTTL)
		}
		c.mu.Unlock()
		close(e.done)
	}()
	select {
	case <-e.done:
		return e.info, false, e.err
	case <-ctx.Done():
		return nil, false, fmt.Errorf("reading %s: %w", r.Given, ctx.Err())
	}
}

// evictLocked drops expired entries, then half of the others when still over a bound.
func (c *images) evictLocked(now time.Time) {
	for k, e := range c.byD {
		if !e.expires.IsZero() && now.After(e.expires) {
			c.bytes -= e.size
			delete(c.byD, k)
		}
	}
	for k, t := range c.tags {
		if now.After(t.expires) {
			delete(c.tags, k)
		}
	}
	if len(c.byD) <= c.opts.MaxCachedImages && c.bytes <= c.opts.MaxCacheBytes {
		return
	}
	n := len(c.byD) / 2
	for k, e := range c.byD {
		if n == 0 {
			break
		}
		if !e.expires.IsZero() {
			c.bytes -= e.size
			delete(c.byD, k)
			n--
		}
	}
}

// target opens the repository of r for one read, on a Session of its own (its byte budget is the
// read's) sharing the content cache.
func (c *images) target(ctx context.Context, ref string, r ImageRef, creds credentials.Store, sess *oci.Session) (*oci.Target, error) {
	if creds == nil {
		creds = credentials.NewMemoryStore()
	}
	if sess == nil {
		sess = c.session(creds, r.Registry)
	}
	return oci.Open(ctx, ref, oci.Options{
		PlainHTTP:   c.opts.plainHTTP(r.Registry),
		HTTPClient:  c.hc,
		Credentials: creds,
		Session:     sess,
	})
}

// session is a Session for one read: its byte budget is the read's, and its on-disk cache (when
// Options.Cache is set) is the one of these credentials, so that content read with one
// namespace's pull secret is never served to a request without it.
func (c *images) session(creds credentials.Store, registry string) *oci.Session {
	s := &oci.Session{MaxBytes: c.opts.MaxBytesPerImage, Timeout: c.opts.RequestTimeout}
	if c.opts.Cache != nil {
		s.Cache = &oci.Cache{Dir: filepath.Join(c.opts.Cache.Dir, credKey(creds, registry)), MaxBytes: c.opts.Cache.MaxBytes}
	}
	return s
}

// read reads the image at digest d: its tree, the specs of every subject (concurrently), and
// its affinity; size is what it read from the registry, in bytes.
func (c *images) read(ctx context.Context, r ImageRef, d digest.Digest, creds credentials.Store, pattern string) (*ImageInfo, int64, error) {
	start := time.Now()
	sess := c.session(creds, r.Registry)
	size := func() int64 { return sess.BytesRead() }
	t, err := c.target(ctx, endpoint(r.Registry)+"/"+r.Repository+"@"+d.String(), r, creds, sess)
	if err != nil {
		return nil, 0, err
	}
	// Decisions keep the parsed tree and specs; the manifests' bytes go once read.
	defer t.ForgetManifests()
	img, err := decide.Open(ctx, t, c.opts.Trust)
	if err != nil {
		c.metrics.observeRegistry(pattern, "read", time.Since(start), err)
		return nil, size(), fmt.Errorf("reading %s: %w", r.Given, err)
	}
	if n := len(img.Tree.Manifests); n > c.opts.MaxManifestsPerImage {
		return nil, size(), fmt.Errorf("reading %s: its index lists %d manifests, more than the %d the webhook reads for one image", r.Given, n, c.opts.MaxManifestsPerImage)
	}
	subjects := []ocispec.Descriptor{img.Tree.Root}
	for _, e := range img.Tree.Manifests {
		subjects = append(subjects, e.Descriptor)
		subjects = append(subjects, e.Indexes...)
	}
	img.Reader().Specs(ctx, subjects)
	info := &ImageInfo{Ref: r, Digest: d, Image: img, Read: time.Now()}
	info.Affinity, info.AffinityErr = img.Affinity(ctx, decide.AffinityOptions{RequireTrusted: c.opts.RequireTrusted})
	c.metrics.observeRegistry(pattern, "read", time.Since(start), ctx.Err())
	if err := ctx.Err(); err != nil {
		return nil, size(), fmt.Errorf("reading %s: %w", r.Given, err)
	}
	// What the image says (too large an affinity, no trusted spec) is cached with it; a spec that
	// could not be read is an error, retried after ErrorTTL, never an image without spec.
	var tl *match.TooLargeError
	if err := info.AffinityErr; err != nil && !errors.As(err, &tl) && !errors.Is(err, signing.ErrNoTrustedSpec) {
		return nil, size(), err
	}
	return info, size(), nil
}

// authHint says where the webhook takes credentials from when the registry refused it.
func authHint(err error, registry string) string {
	var ec errcode.Error
	msg := err.Error()
	if (errors.As(err, &ec) && ec.Code == "UNAUTHORIZED") || strings.Contains(msg, "credential not found") || strings.Contains(msg, "401") {
		return " (the webhook reads with the pod's imagePullSecrets and its service account's: none gives credentials " + registry + " accepts)"
	}
	return ""
}
