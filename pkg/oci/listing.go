package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// Limits of a referrers listing (distribution-spec v1.1 "Listing Referrers"), so that a registry
// cannot make a reader page or read without end.
const (
	// DefaultMaxReferrerPages is how many pages of one referrers listing are followed when
	// Options.MaxReferrerPages is 0.
	DefaultMaxReferrerPages = 64
	// MaxListedReferrers is the most descriptors one listing may hold (all pages together).
	MaxListedReferrers = 20000
)

// ErrTooManyPages means a referrers listing chains more pages than allowed, or loops.
var ErrTooManyPages = errors.New("referrers listing too long")

// errNoReferrersAPI means the registry answered the referrers API as a registry without it does
// (404 without NAME_UNKNOWN, or something other than an image index on the first page).
var errNoReferrersAPI = errors.New("no referrers API")

// Session is what readers and writers share within one process: what each registry repository
// was found to support, so that it is probed once, and the content cache. The zero value is ready
// to use; it is safe for concurrent use.
type Session struct {
	// Cache keeps immutable content (manifests fetched by digest, spec blobs) across commands;
	// nil keeps nothing on disk.
	Cache *Cache
	// MaxBytes bounds what the Session reads from registries, in bytes; 0 means DefaultMaxBytes.
	MaxBytes int64
	// Timeout bounds the wait for each registry answer; 0 means DefaultRequestTimeout.
	Timeout time.Duration

	read         atomic.Int64
	mu           sync.Mutex
	referrersAPI map[string]bool      // "host/repository" → has the referrers API
	probes       map[string]*apiProbe // "host/repository" → the listing that asks the API first
}

// apiProbe is the first listing of a repository whose referrers API is not known: the others
// wait for done, then read Session.api.
type apiProbe struct {
	done chan struct{}
}

// probe returns the repository's probe and whether the caller is the one to run it (and close
// done when the API has answered).
func (s *Session) probe(key string) (*apiProbe, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.probes[key]; ok {
		return p, false
	}
	if s.probes == nil {
		s.probes = map[string]*apiProbe{}
	}
	p := &apiProbe{done: make(chan struct{})}
	s.probes[key] = p
	return p, true
}

func (s *Session) api(key string) (supported, known bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	supported, known = s.referrersAPI[key]
	return
}

func (s *Session) setAPI(key string, supported bool) {
	s.mu.Lock()
	if s.referrersAPI == nil {
		s.referrersAPI = map[string]bool{}
	}
	s.referrersAPI[key] = supported
	s.mu.Unlock()
	v := []byte("no")
	if supported {
		v = []byte("yes")
	}
	s.Cache.SetHint("referrers-api "+key, v)
}

// apiHint says whether this machine found the referrers API in the repository before (a hint kept
// in the Cache): "yes", "no", or "" when it does not know. It only schedules requests: without the
// API, the tag schema is read as always; with it, only the API's answer counts.
func (s *Session) apiHint(key string) string {
	b, _ := s.Cache.Hint("referrers-api " + key)
	return string(b)
}

// listReferrers lists every referrer of subject in a registry repository: through the referrers
// API when the registry has it, else through the referrers tag schema. It differs from oras-go
// v2.7.0 where registries answer unlike the spec: an index served as application/json (Harbor) is
// used; a first page that is not an index means "no API", a later one fails; pages are followed
// within Options.MaxReferrerPages, never in a loop, only on the same origin; an error is an error,
// never a listing completed from elsewhere.
func (t *Target) listReferrers(ctx context.Context, repo *remote.Repository, subject ocispec.Descriptor, artifactType string) ([]ocispec.Descriptor, error) {
	key := t.host + "/" + repo.Reference.Repository
	supported, known := t.session.api(key)
	hint := t.session.apiHint(key)
	switch {
	case known && !supported:
		return t.referrersByTagSchema(ctx, repo, subject)
	case known || hint == "yes":
		refs, err := t.referrersByAPI(ctx, repo, subject, artifactType)
		switch {
		case err == nil:
			t.session.setAPI(key, true)
			return refs, nil
		case errors.Is(err, errNoReferrersAPI) && !known:
			t.session.setAPI(key, false)
			return t.referrersByTagSchema(ctx, repo, subject)
		}
		return nil, err
	}
	// Not known, and this machine did not see the API here before: read the tag schema at once,
	// while the API is asked, so that a registry without the API costs one round trip, not two.
	// When this machine found no API here before, one listing of the repository asks it and the
	// others wait for its answer (fewer requests); otherwise each asks. The tag schema's answer is
	// used only when the API's says there is no API.
	type tagResult struct {
		refs []ocispec.Descriptor
		err  error
	}
	tagCtx, cancel := context.WithCancel(ctx)
	var tag tagResult
	var wg sync.WaitGroup
	wg.Go(func() { tag.refs, tag.err = t.referrersByTagSchema(tagCtx, repo, subject) })
	defer func() {
		cancel()
		wg.Wait() // nothing left running when the listing returns
	}()
	fromTag := func() ([]ocispec.Descriptor, error) {
		wg.Wait()
		return tag.refs, tag.err
	}
	var pr *apiProbe
	first := true
	if hint == "no" {
		pr, first = t.session.probe(key)
	}
	if !first {
		select {
		case <-pr.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if supported, known := t.session.api(key); known && !supported {
			return fromTag()
		}
		// The API answered (or the probe failed): ask it for this subject too.
	}
	refs, err := t.referrersByAPI(ctx, repo, subject, artifactType)
	switch {
	case err == nil:
		t.session.setAPI(key, true)
	case errors.Is(err, errNoReferrersAPI):
		t.session.setAPI(key, false)
	}
	if pr != nil && first {
		close(pr.done)
	}
	switch {
	case err == nil:
		return refs, nil
	case errors.Is(err, errNoReferrersAPI):
		return fromTag()
	}
	return nil, err
}

// referrersByAPI follows the pages of GET /v2/<name>/referrers/<digest>.
func (t *Target) referrersByAPI(ctx context.Context, repo *remote.Repository, subject ocispec.Descriptor, artifactType string) ([]ocispec.Descriptor, error) {
	ref := repo.Reference
	ref.Reference = subject.Digest.String()
	ctx = auth.AppendRepositoryScope(ctx, ref, auth.ActionPull)
	scheme := "https"
	if repo.PlainHTTP {
		scheme = "http"
	}
	next := fmt.Sprintf("%s://%s/v2/%s/referrers/%s", scheme, ref.Host(), ref.Repository, ref.Reference)
	if artifactType != "" {
		next += "?" + url.Values{"artifactType": {artifactType}}.Encode()
	}
	maxPages := t.maxPages
	var out []ocispec.Descriptor
	seen := map[string]bool{}
	for page := 0; next != ""; page++ {
		if page >= maxPages {
			return nil, fmt.Errorf("%w: the referrers of %s@%s take more than %d pages (--max-referrer-pages)", ErrTooManyPages, t.name, subject.Digest, maxPages)
		}
		if seen[next] {
			return nil, fmt.Errorf("%w: the referrers listing of %s@%s links back to %s", ErrTooManyPages, t.name, subject.Digest, next)
		}
		seen[next] = true
		refs, link, err := t.referrersPage(ctx, repo.Client, next, page)
		if err != nil {
			return nil, err
		}
		if out = append(out, refs...); len(out) > MaxListedReferrers {
			return nil, fmt.Errorf("%w: %s@%s lists more than %d referrers", ErrTooLarge, t.name, subject.Digest, MaxListedReferrers)
		}
		next = link
	}
	return out, nil
}

// referrersPage gets one page and returns its descriptors and the next page's URL ("" at the end).
func (t *Target) referrersPage(ctx context.Context, client remote.Client, pageURL string, page int) ([]ocispec.Descriptor, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pageURL, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", ocispec.MediaTypeImageIndex+", application/json;q=0.9")
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", t.wrap(err, "listing referrers ("+pageURL+")", "")
	}
	defer resp.Body.Close()
	what := fmt.Sprintf("referrers page %d of %s (%s)", page+1, t.name, pageURL)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var er errcode.Errors
		var wrapped struct {
			Errors errcode.Errors `json:"errors"`
		}
		if json.Unmarshal(body, &wrapped) == nil {
			er = wrapped.Errors
		}
		for _, e := range er {
			if e.Code == errcode.ErrorCodeNameUnknown {
				return nil, "", fmt.Errorf("%w: %s: repository unknown to the registry", ErrNotFound, what)
			}
		}
		if page == 0 {
			return nil, "", errNoReferrersAPI
		}
		return nil, "", fmt.Errorf("%s: answered 404 after earlier pages: the listing is incomplete", what)
	default:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		return nil, "", t.wrap(&errcode.ErrorResponse{Method: req.Method, URL: req.URL, StatusCode: resp.StatusCode, Errors: decodeErrors(body)}, what, "")
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifestBytes+1))
	if err != nil {
		return nil, "", t.wrap(err, what, "")
	}
	if len(body) > MaxManifestBytes {
		return nil, "", fmt.Errorf("%w: %s is more than %d bytes", ErrTooLarge, what, MaxManifestBytes)
	}
	idx, ok := decodeReferrersIndex(body)
	if !ok {
		if page == 0 {
			// Whatever answered is not the referrers API (an HTML page, a redirect to a login).
			return nil, "", errNoReferrersAPI
		}
		return nil, "", fmt.Errorf("%s: the answer (Content-Type %q) is not an image index: the listing is incomplete", what, resp.Header.Get("Content-Type"))
	}
	link, err := nextLink(resp)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", what, err)
	}
	return idx.Manifests, link, nil
}

// decodeReferrersIndex decodes a referrers answer: an image index, whatever the Content-Type the
// registry gave it (Harbor says application/json), with its manifests list present.
func decodeReferrersIndex(body []byte) (*ocispec.Index, bool) {
	var probe struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Manifests     json.RawMessage `json:"manifests"` // present, an array or null (an empty list)
	}
	if json.Unmarshal(body, &probe) != nil || len(probe.Manifests) == 0 || (probe.MediaType != "" && !IsIndex(probe.MediaType)) {
		return nil, false
	}
	var idx ocispec.Index
	if json.Unmarshal(body, &idx) != nil {
		return nil, false
	}
	return &idx, true
}

// DecodeReferrersList decodes a referrers API answer or a referrers tag schema index (an image
// index, distribution-spec v1.1), as the listing does; false when data is not one. It exists for
// fuzzing and for tools that read listings themselves.
func DecodeReferrersList(data []byte) ([]ocispec.Descriptor, bool) {
	idx, ok := decodeReferrersIndex(data)
	if !ok {
		return nil, false
	}
	return idx.Manifests, true
}

// nextLink returns the URL of the next page from the Link header (RFC 8288, rel="next"), "" when
// there is none; a link to another origin is an error (a registry must not send the reader
// elsewhere).
func nextLink(resp *http.Response) (string, error) {
	link := resp.Header.Get("Link")
	if link == "" {
		return "", nil
	}
	start, end := strings.IndexByte(link, '<'), strings.IndexByte(link, '>')
	if start != 0 || end < 0 {
		return "", fmt.Errorf("invalid Link header %q", link)
	}
	u, err := resp.Request.URL.Parse(link[1:end])
	if err != nil {
		return "", fmt.Errorf("invalid Link header %q: %v", link, err)
	}
	if u.Scheme != resp.Request.URL.Scheme || u.Host != resp.Request.URL.Host {
		return "", fmt.Errorf("the Link header %q leads to another origin than %s://%s: refused", link, resp.Request.URL.Scheme, resp.Request.URL.Host)
	}
	return u.String(), nil
}

// decodeErrors reads a distribution-spec error body; nil when it is not one.
func decodeErrors(body []byte) errcode.Errors {
	var wrapped struct {
		Errors errcode.Errors `json:"errors"`
	}
	if json.Unmarshal(body, &wrapped) != nil {
		return nil
	}
	return wrapped.Errors
}

// referrersByTagSchema reads the referrers tag schema index "<alg>-<hex>" of subject
// (distribution-spec v1.1 "Referrers Tag Schema"): no tag means no referrers.
func (t *Target) referrersByTagSchema(ctx context.Context, repo *remote.Repository, subject ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	tag := subject.Digest.Algorithm().String() + "-" + subject.Digest.Encoded()
	desc, rc, err := repo.FetchReference(ctx, tag)
	if err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			return nil, nil
		}
		return nil, t.wrap(err, "listing referrers of "+t.name+"@"+subject.Digest.String()+" (tag "+tag+")", "")
	}
	defer rc.Close()
	what := "the referrers tag index " + t.name + ":" + tag
	if desc.Size > MaxManifestBytes || desc.Size < 0 {
		return nil, fmt.Errorf("%w: %s is %d bytes, the limit is %d", ErrTooLarge, what, desc.Size, MaxManifestBytes)
	}
	if desc.Digest == subject.Digest {
		return nil, nil // a registry that resolves the tag to the subject itself has no tag index
	}
	body, err := io.ReadAll(io.LimitReader(rc, MaxManifestBytes+1))
	if err != nil {
		return nil, t.wrap(err, what, "")
	}
	if desc.Digest.Algorithm().FromBytes(body) != desc.Digest {
		return nil, fmt.Errorf("%s: content does not match its digest %s: the registry is corrupt or tampered with", what, desc.Digest)
	}
	idx, ok := decodeReferrersIndex(body)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not an image index (media type %s)", ErrInvalidArtifact, what, desc.MediaType)
	}
	return idx.Manifests, nil
}
