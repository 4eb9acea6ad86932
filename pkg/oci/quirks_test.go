package oci_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/spec"
)

// Registries as they really are: each quirk seen on public registries, reproduced by rewriting
// the answers of a real registry, and faults. Nothing may end as "no referrers" after an error.

func quirkTarget(t *testing.T, reg *testregistry.Registry, opts oci.Options) *oci.Target {
	t.Helper()
	opts.PlainHTTP = true
	if opts.Credentials == nil {
		opts.Credentials = credentials.NewMemoryStore()
	}
	tg, err := oci.Open(context.Background(), reg.Host()+"/hello:1.0", opts)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func created(i int) time.Time { return time.Date(2026, 1, 1, 0, i, 0, 0, time.UTC) }

// A registry that answers a manifest PUT with OCI-Subject but has no referrers API (seen on
// Docker Hub): oras-go then writes no tag index; the attach is read back and the tag index
// written, so readers find it.
func TestQuirkOCISubjectWithoutAPI(t *testing.T) {
	reg := testregistry.NewDistribution(t)
	img := testregistry.PushImage(t, reg.Host(), "hello", "1.0")
	reg.SetRewrite(func(r *http.Request, status int, h http.Header, body []byte) []byte {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/sha256:") && status == http.StatusCreated {
			h.Set("OCI-Subject", img.Manifests[0].Digest.String())
		}
		return body
	})
	d, err := quirkTarget(t, reg, oci.Options{}).PushSpec(context.Background(), img.Manifests[0], testregistry.SampleSpec(10), nil, created(1))
	if err != nil {
		t.Fatal(err)
	}
	refs, err := quirkTarget(t, reg, oci.Options{}).Referrers(context.Background(), img.Manifests[0], spec.ArtifactType)
	if err != nil || len(refs) != 1 || refs[0].Digest != d.Digest {
		t.Fatalf("a fresh reader lists %v, %v; want %s", refs, err, d.Digest)
	}
}

// distribution refuses DELETE by default: a second attach to the same subject succeeds (the old
// tag index is left in place), and both are listed.
func TestQuirkDeleteDisabled(t *testing.T) {
	reg := testregistry.NewDistribution(t)
	img := testregistry.PushImage(t, reg.Host(), "hello", "1.0")
	reg.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return true
		}
		return false
	})
	for i := range 2 {
		if _, err := quirkTarget(t, reg, oci.Options{}).PushSpec(context.Background(), img.Manifests[0], testregistry.SampleSpec(10+i), nil, created(i)); err != nil {
			t.Fatalf("attach %d: %v", i+1, err)
		}
	}
	refs, err := quirkTarget(t, reg, oci.Options{}).Referrers(context.Background(), img.Manifests[0], spec.ArtifactType)
	if err != nil || len(refs) != 2 {
		t.Fatalf("listed %v, %v", refs, err)
	}
}

// Harbor answers the referrers API with Content-Type application/json: the index is used (oras-go
// v2.7.0 takes it for "no API" and lists nothing from the tag schema).
func TestQuirkReferrersAsJSON(t *testing.T) {
	reg := testregistry.NewOCI(t)
	img := testregistry.PushImage(t, reg.Host(), "hello", "1.0")
	d, err := quirkTarget(t, reg, oci.Options{}).PushSpec(context.Background(), img.Manifests[0], testregistry.SampleSpec(10), nil, created(1))
	if err != nil {
		t.Fatal(err)
	}
	reg.SetRewrite(func(r *http.Request, status int, h http.Header, body []byte) []byte {
		if strings.Contains(r.URL.Path, "/referrers/") {
			h.Set("Content-Type", "application/json")
		}
		return body
	})
	// The tag schema fails: the listing must come from the API's answer alone (the tag is read
	// at the same time while the capability is unknown, and must not count).
	reg.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/manifests/sha256-") {
			w.WriteHeader(http.StatusInternalServerError)
			return true
		}
		return false
	})
	defer reg.SetHook(nil)
	refs, err := quirkTarget(t, reg, oci.Options{}).Referrers(context.Background(), img.Manifests[0], spec.ArtifactType)
	if err != nil || len(refs) != 1 || refs[0].Digest != d.Digest {
		t.Fatalf("listed %v, %v", refs, err)
	}
}

// pagedRewrite serves the referrers of the answer one per page, with relative Link headers, and
// lets page(n, link) change page n and its Link.
func pagedRewrite(page func(n int, link string) (body []byte, newLink string, ok bool)) testregistry.Rewrite {
	return func(r *http.Request, status int, h http.Header, body []byte) []byte {
		if !strings.Contains(r.URL.Path, "/referrers/") || status != http.StatusOK {
			return body
		}
		var idx ocispec.Index
		json.Unmarshal(body, &idx)
		n, _ := strconv.Atoi(r.URL.Query().Get("page"))
		link := ""
		if n+1 < len(idx.Manifests) {
			link = fmt.Sprintf("<%s?page=%d>; rel=\"next\"", r.URL.Path, n+1)
		}
		if page != nil {
			if b, l, ok := page(n, link); ok {
				h.Set("Link", l)
				if l == "" {
					h.Del("Link")
				}
				return b
			}
		}
		if n < len(idx.Manifests) {
			idx.Manifests = idx.Manifests[n : n+1]
		}
		if link != "" {
			h.Set("Link", link)
		}
		out, _ := json.Marshal(idx)
		return out
	}
}

func TestQuirkPagination(t *testing.T) {
	reg := testregistry.NewOCI(t)
	img := testregistry.PushImage(t, reg.Host(), "hello", "1.0")
	for i := range 3 {
		if _, err := quirkTarget(t, reg, oci.Options{}).PushSpec(context.Background(), img.Manifests[0], testregistry.SampleSpec(10+i), nil, created(i)); err != nil {
			t.Fatal(err)
		}
	}
	list := func(opts oci.Options) ([]ocispec.Descriptor, error) {
		return quirkTarget(t, reg, opts).Referrers(context.Background(), img.Manifests[0], spec.ArtifactType)
	}
	// Relative links are followed: three pages, three referrers.
	reg.SetRewrite(pagedRewrite(nil))
	if refs, err := list(oci.Options{}); err != nil || len(refs) != 3 {
		t.Fatalf("paged: %v %v", refs, err)
	}
	// An HTML error page as page 2: the listing fails; it is never completed from the tag schema.
	reg.SetRewrite(pagedRewrite(func(n int, link string) ([]byte, string, bool) {
		if n == 1 {
			return []byte("<html><body>502 Bad Gateway</body></html>"), "", true
		}
		return nil, "", false
	}))
	if refs, err := list(oci.Options{}); err == nil || !strings.Contains(err.Error(), "not an image index") {
		t.Fatalf("HTML page 2: %v, %v", refs, err)
	}
	// A Link back to the same page: a loop, refused at once.
	reg.SetRewrite(pagedRewrite(func(n int, link string) ([]byte, string, bool) {
		return []byte(`{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}`), "<?page=0>; rel=\"next\"", true
	}))
	reg.Reset()
	if _, err := list(oci.Options{}); !errors.Is(err, oci.ErrTooManyPages) || len(reg.Requests()) > 5 {
		t.Fatalf("a loop: %v after %d requests", err, len(reg.Requests()))
	}
	// Endless pages: stopped at the limit.
	reg.SetRewrite(pagedRewrite(func(n int, link string) ([]byte, string, bool) {
		return []byte(`{"schemaVersion": 2, "manifests": []}`), fmt.Sprintf("<?page=%d>; rel=\"next\"", n+1), true
	}))
	reg.Reset()
	if _, err := list(oci.Options{MaxReferrerPages: 5}); !errors.Is(err, oci.ErrTooManyPages) || len(reg.Requests()) > 8 {
		t.Fatalf("endless pages: %v after %d requests", err, len(reg.Requests()))
	}
	// A Link to another origin is refused.
	reg.SetRewrite(pagedRewrite(func(n int, link string) ([]byte, string, bool) {
		return []byte(`{"schemaVersion": 2, "manifests": []}`), "<http://169.254.169.254/latest/meta-data>; rel=\"next\"", true
	}))
	if _, err := list(oci.Options{}); err == nil || !strings.Contains(err.Error(), "another origin") {
		t.Fatalf("another origin: %v", err)
	}
}

// Two writers adding referrers to the same subject at once on a registry without the referrers
// API (each rewrites the tag index): every referrer is listed at the end.
func TestQuirkConcurrentWriters(t *testing.T) {
	reg := testregistry.NewDistribution(t)
	img := testregistry.PushImage(t, reg.Host(), "hello", "1.0")
	var wg sync.WaitGroup
	pushed := make([]digest.Digest, 6)
	errs := make([]error, 6)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := quirkTarget(t, reg, oci.Options{}).PushSpec(context.Background(), img.Manifests[0], testregistry.SampleSpec(10+i), nil, created(i))
			pushed[i], errs[i] = d.Digest, err
		}()
	}
	wg.Wait()
	refs, err := quirkTarget(t, reg, oci.Options{}).Referrers(context.Background(), img.Manifests[0], spec.ArtifactType)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[digest.Digest]bool{}
	for _, r := range refs {
		listed[r.Digest] = true
	}
	for i, d := range pushed {
		if errs[i] != nil {
			t.Errorf("writer %d: %v", i, errs[i])
		} else if !listed[d] {
			t.Errorf("writer %d's referrer %s is lost", i, d)
		}
	}
}

// Faults: each ends as an error for the subject (never as "no referrers"), within a bound.
func TestFaults(t *testing.T) {
	reg := testregistry.NewOCI(t)
	img := testregistry.PushImage(t, reg.Host(), "hello", "1.0")
	d, err := quirkTarget(t, reg, oci.Options{}).PushSpec(context.Background(), img.Manifests[0], testregistry.SampleSpec(10), nil, created(1))
	if err != nil {
		t.Fatal(err)
	}
	fast := &http.Client{Timeout: 2 * time.Second}
	read := func(opts oci.Options) error {
		if opts.HTTPClient == nil {
			opts.HTTPClient = fast
		}
		_, _, err := quirkTarget(t, reg, opts).NewestSpec(context.Background(), img.Manifests[0])
		return err
	}
	for _, tc := range []struct {
		name string
		hook testregistry.Hook
		opts oci.Options
		want string
	}{
		{"500 on the listing", func(w http.ResponseWriter, r *http.Request) bool {
			if strings.Contains(r.URL.Path, "/referrers/") {
				w.WriteHeader(http.StatusInternalServerError)
				return true
			}
			return false
		}, oci.Options{}, "500"},
		{"truncated spec blob", func(w http.ResponseWriter, r *http.Request) bool {
			if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet {
				w.Header().Set("Content-Length", "10")
				w.Write([]byte("version: v"))
				return true
			}
			return false
		}, oci.Options{}, "does not match"},
		{"a manifest that is not its digest", func(w http.ResponseWriter, r *http.Request) bool {
			if strings.HasSuffix(r.URL.Path, "/manifests/"+d.Digest.String()) {
				w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
				w.Write([]byte(`{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": "application/vnd.nfd.image-compatibility.v1alpha1"}`))
				return true
			}
			return false
		}, oci.Options{}, "does not match"},
		{"a slow registry", func(w http.ResponseWriter, r *http.Request) bool {
			if strings.Contains(r.URL.Path, "/referrers/") {
				select {
				case <-time.After(10 * time.Second):
				case <-r.Context().Done():
				}
				return true
			}
			return false
		}, oci.Options{Session: &oci.Session{Timeout: 500 * time.Millisecond}, HTTPClient: nil}, "timeout"},
		{"a redirect loop", func(w http.ResponseWriter, r *http.Request) bool {
			if strings.Contains(r.URL.Path, "/referrers/") {
				http.Redirect(w, r, r.URL.String(), http.StatusFound)
				return true
			}
			return false
		}, oci.Options{Session: &oci.Session{}}, "redirect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg.SetHook(tc.hook)
			defer reg.SetHook(nil)
			opts := tc.opts
			if opts.Session != nil {
				opts.HTTPClient = oci.NewHTTPClient(opts.Session.Timeout)
			}
			start := time.Now()
			err := read(opts)
			if err == nil || errors.Is(err, oci.ErrNoSpec) || !strings.Contains(strings.ToLower(err.Error()), tc.want) {
				t.Fatalf("%v, want an error about %q", err, tc.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
	// 429 with Retry-After, once: the default client waits and succeeds.
	var once sync.Once
	reg.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		hit := false
		if strings.Contains(r.URL.Path, "/referrers/") {
			once.Do(func() {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				hit = true
			})
		}
		return hit
	})
	if err := read(oci.Options{HTTPClient: oci.NewHTTPClient(0)}); err != nil {
		t.Fatalf("429 then OK: %v", err)
	}
	reg.SetHook(nil)
	// The byte budget of a command.
	if err := read(oci.Options{Session: &oci.Session{MaxBytes: 100}}); !errors.Is(err, oci.ErrByteBudget) {
		t.Fatalf("a budget of 100 bytes: %v", err)
	}
	// Cancelled (Ctrl-C) while the registry is slow: back at once.
	reg.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/referrers/") {
			select {
			case <-time.After(10 * time.Second):
			case <-r.Context().Done():
			}
			return true
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = quirkTarget(t, reg, oci.Options{}).NewestSpec(ctx, img.Manifests[0])
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("cancelled: %v after %v", err, time.Since(start))
	}
	reg.SetHook(nil)
}

// 10,000 referrers in one listing are read, each digest once, in bounded time.
func TestTenThousandReferrers(t *testing.T) {
	reg := testregistry.NewOCI(t)
	img := testregistry.PushImage(t, reg.Host(), "hello", "1.0")
	reg.SetRewrite(func(r *http.Request, status int, h http.Header, body []byte) []byte {
		if !strings.Contains(r.URL.Path, "/referrers/") {
			return body
		}
		idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
		idx.SchemaVersion = 2
		for i := range 10000 {
			idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: spec.ArtifactType,
				Digest: digest.FromString(strconv.Itoa(i % 9000)), Size: 500, Annotations: map[string]string{ocispec.AnnotationCreated: created(i % 60).Format(time.RFC3339)}})
		}
		out, _ := json.Marshal(idx)
		return out
	})
	start := time.Now()
	refs, err := quirkTarget(t, reg, oci.Options{}).Referrers(context.Background(), img.Manifests[0], spec.ArtifactType)
	if err != nil || len(refs) != 9000 {
		t.Fatalf("%d referrers, %v, after %v", len(refs), err, time.Since(start))
	}
	t.Logf("10,000 listed (9,000 distinct) in %v", time.Since(start))
}

func FuzzDecodeReferrersList(f *testing.F) {
	f.Add([]byte(`{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": null}`))
	f.Add([]byte(`{"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:` + strings.Repeat("a", 64) + `", "size": 1, "artifactType": "x", "annotations": {"org.opencontainers.image.created": "2099-01-01T00:00:00Z"}}]}`))
	f.Add([]byte(`<html>502</html>`))
	f.Add([]byte(`{"manifests": {}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		refs, ok := oci.DecodeReferrersList(data)
		if !ok && refs != nil {
			t.Fatal("descriptors from a refused list")
		}
		var probe map[string]json.RawMessage
		if ok && json.Unmarshal(data, &probe) != nil {
			t.Fatal("accepted what is not a JSON object")
		}
	})
}
