package oci_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/spec"
)

// kind is one way to store an image: a registry with the referrers API, one without, a layout.
type kind struct {
	name string
	reg  *testregistry.Registry // nil for a layout
	ref  string
	opts oci.Options
	img  testregistry.Image
}

func registryOptions() oci.Options {
	return oci.Options{PlainHTTP: true, HTTPClient: testregistry.Client(), Credentials: credentials.NewMemoryStore()}
}

func newKind(t *testing.T, name string) *kind {
	t.Helper()
	k := &kind{name: name}
	switch name {
	case "ociregistry":
		k.reg = testregistry.NewOCI(t)
	case "distribution":
		k.reg = testregistry.NewDistribution(t)
	case "layout":
		dir := filepath.Join(t.TempDir(), "layout")
		k.img = testregistry.WriteLayout(t, dir, "v1")
		k.ref = dir + ":v1"
		k.opts = oci.Options{OCILayout: true}
		return k
	}
	k.img = testregistry.PushImage(t, k.reg.Host(), "hello", "v1")
	k.reg.Reset()
	k.ref = k.reg.Host() + "/hello:v1"
	k.opts = registryOptions()
	return k
}

func (k *kind) open(t *testing.T, ref string) *oci.Target {
	t.Helper()
	tg, err := oci.Open(t.Context(), ref, k.opts)
	if err != nil {
		t.Fatalf("Open(%q): %v", ref, err)
	}
	return tg
}

// mustSelect returns the entry of idx whose platform prints as p (tests name exact platforms).
func mustSelect(t *testing.T, idx *ocispec.Index, p string) ocispec.Descriptor {
	t.Helper()
	for _, m := range idx.Manifests {
		if oci.FormatPlatform(m.Platform) == p {
			return m
		}
	}
	t.Fatalf("no entry for %s", p)
	return ocispec.Descriptor{}
}

func TestRoundTrip(t *testing.T) {
	for _, name := range []string{"ociregistry", "distribution", "layout"} {
		t.Run(name, func(t *testing.T) {
			testRoundTrip(t, newKind(t, name))
		})
	}
}

func testRoundTrip(t *testing.T, k *kind) {
	ctx := t.Context()
	var all []testregistry.Request // every request after the image was pushed
	drain := func() []testregistry.Request {
		if k.reg == nil {
			return nil
		}
		r := k.reg.Requests()
		all = append(all, r...)
		k.reg.Reset()
		return r
	}

	// Write: two specs on linux/amd64 (older, then newer), one on the index.
	tg := k.open(t, k.ref)
	root, err := tg.Resolve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if root.Digest != k.img.Index.Digest || root.MediaType != ocispec.MediaTypeImageIndex {
		t.Fatalf("Resolve = %v, want the index %s", root, k.img.Index.Digest)
	}
	idx, err := tg.FetchIndex(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	amd := mustSelect(t, idx, "linux/amd64")
	if amd.Digest != k.img.Manifests[0].Digest {
		t.Fatalf("linux/amd64 selected %s, want %s", amd.Digest, k.img.Manifests[0].Digest)
	}
	t1 := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Hour)
	prov := &spec.Provenance{Tool: "compat-attach/test", Source: []spec.SourceFile{{Path: "compat.cue", Digest: digest.FromString("x").String()}}}
	oldDesc, err := tg.PushSpec(ctx, amd, testregistry.SampleSpec(10), prov, t1)
	if err != nil {
		t.Fatal(err)
	}
	// Pushed in the "wrong" order on purpose: the newer one is pushed second, the order of the
	// list must come from the annotation, not from push order.
	newDesc, err := tg.PushSpec(ctx, amd, testregistry.SampleSpec(20), nil, t2)
	if err != nil {
		t.Fatal(err)
	}
	idxDesc, err := tg.PushSpec(ctx, root, testregistry.SampleSpec(30), nil, t1)
	if err != nil {
		t.Fatal(err)
	}
	// Reproducible: the same push gives the same digest.
	again, err := tg.PushSpec(ctx, amd, testregistry.SampleSpec(20), nil, t2)
	if err != nil || again.Digest != newDesc.Digest {
		t.Fatalf("pushing the same spec again = %v, %v; want %s", again.Digest, err, newDesc.Digest)
	}
	writes := drain()
	if k.reg != nil {
		t.Logf("%s: 4 PushSpec calls made %d requests:\n%s", k.name, len(writes), joinReqs(writes))
	}

	if k.name == "distribution" {
		// No referrers API: oras-go keeps the referrers of amd in the tag sha256-<hex>.
		fallback := "sha256-" + amd.Digest.Encoded()
		req, _ := http.NewRequest(http.MethodHead, k.reg.URL()+"/v2/hello/manifests/"+fallback, nil)
		req.Header.Set("Accept", ocispec.MediaTypeImageIndex)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("HEAD fallback tag %s: %d, want 200", fallback, resp.StatusCode)
		}
		drain()
	}

	// Read path, on a fresh Target (empty cache, referrers capability unknown).
	rd := k.open(t, k.ref)
	root2, err := rd.Resolve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	idx2, err := rd.FetchIndex(ctx, root2)
	if err != nil {
		t.Fatal(err)
	}
	amd2 := mustSelect(t, idx2, "linux/amd64")
	refs, err := rd.Referrers(ctx, amd2, spec.ArtifactType)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 2 || refs[0].Digest != newDesc.Digest || refs[1].Digest != oldDesc.Digest {
		t.Fatalf("Referrers = %v, want newest %s then %s", refs, newDesc.Digest, oldDesc.Digest)
	}
	got, man, err := rd.FetchSpec(ctx, refs[0])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, testregistry.SampleSpec(20)) {
		t.Fatalf("FetchSpec = %+v, want the spec pushed last", got)
	}
	if man.Subject == nil || man.Subject.Digest != amd.Digest || man.Annotations[ocispec.AnnotationCreated] != "2025-05-01T11:00:00Z" {
		t.Fatalf("referrer manifest subject/created = %v %v", man.Subject, man.Annotations)
	}
	if k.reg != nil {
		reads := drain()
		// 5 requests on both: GET manifests/v1 (resolve the tag; the index is kept, FetchIndex
		// does not fetch it again); GET referrers/<amd64>?artifactType=... and, at the same time
		// (the capability is not known yet), GET manifests/sha256-<hex> (the referrers tag, used
		// only when the API answers 404: distribution); GET manifests/<newest referrer> and
		// GET blobs/<spec>, at the same time too (the listing names the spec layer).
		// Through the API, the tag read may be dropped before it is sent when the API answers first.
		want := 5
		if len(reads) != want && !(k.name == "ociregistry" && len(reads) == want-1) {
			t.Errorf("%s: read path made %d requests, want %d:\n%s", k.name, len(reads), want, joinReqs(reads))
		} else {
			t.Logf("%s: read path made %d requests:\n%s", k.name, len(reads), joinReqs(reads))
		}
	}
	// The older one still reads back, with its provenance layer.
	old, oldMan, err := rd.FetchSpec(ctx, refs[1])
	if err != nil || !reflect.DeepEqual(old, testregistry.SampleSpec(10)) || len(oldMan.Layers) != 2 || oldMan.Layers[1].MediaType != spec.MediaTypeProvenance {
		t.Fatalf("older spec: %+v %v %v", old, oldMan, err)
	}

	// Discover on the index: the index's spec, then amd64's two, newest first.
	ents, err := k.open(t, k.ref).Discover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var gotEnts []string
	for _, e := range ents {
		gotEnts = append(gotEnts, e.Subject.Digest.String()+" "+e.Referrer.Digest.String()+" "+e.Created.Format(time.RFC3339))
	}
	wantEnts := []string{
		root.Digest.String() + " " + idxDesc.Digest.String() + " " + t1.Format(time.RFC3339),
		amd.Digest.String() + " " + newDesc.Digest.String() + " " + t2.Format(time.RFC3339),
		amd.Digest.String() + " " + oldDesc.Digest.String() + " " + t1.Format(time.RFC3339),
	}
	if !reflect.DeepEqual(gotEnts, wantEnts) {
		t.Fatalf("Discover =\n%s\nwant\n%s", strings.Join(gotEnts, "\n"), strings.Join(wantEnts, "\n"))
	}
	if ents[1].Subject.Platform == nil || oci.FormatPlatform(ents[1].Subject.Platform) != "linux/amd64" {
		t.Fatalf("Discover subject platform = %v", ents[1].Subject.Platform)
	}
	drain()

	// Never a layer or config blob of the image.
	for _, r := range all {
		for _, d := range k.img.Blobs() {
			if strings.Contains(r.Path, d.Encoded()) {
				t.Errorf("%s requested image blob %s", r, d)
			}
		}
	}
}

func joinReqs(rs []testregistry.Request) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString("  " + r.String() + "\n")
	}
	return b.String()
}

func TestParsePlatform(t *testing.T) {
	for _, bad := range []string{"", "linux", "linux/", "/amd64", "linux/amd64/v3/x", "linux/amd64\nVerdict: OK", "linux/amd64/v3\x1b[2J", "linux/amd64\u2028x"} {
		if _, err := oci.ParsePlatform(bad); err == nil {
			t.Errorf("ParsePlatform(%q) succeeded", bad)
		} else if strings.ContainsAny(err.Error(), "\n\x1b\u2028") {
			t.Errorf("ParsePlatform(%q): the error holds the raw input: %q", bad, err)
		}
	}
}

// TestFormatPlatformOneLine: the parts of a platform come from an index, which any pusher writes;
// formatted, they never hold a control character, a newline or a line separator.
func TestFormatPlatformOneLine(t *testing.T) {
	for _, tc := range []struct {
		p    ocispec.Platform
		want string
	}{
		{ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "linux/arm64/v8"},
		{ocispec.Platform{OS: "linux", Architecture: "amd64", Variant: "v9\n\nVerdict: COMPATIBLE (score 100)\n"}, `linux/amd64/v9\n\nVerdict: COMPATIBLE (score 100)\n`},
		{ocispec.Platform{OS: "linux\r", Architecture: "amd64\u2028hostPID: true\u0085#\x1b[2J"}, `linux\r/amd64\u2028hostPID: true\x85#\x1b[2J`},
	} {
		if got := oci.FormatPlatform(&tc.p); got != tc.want {
			t.Errorf("FormatPlatform(%+v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}

func TestNotFound(t *testing.T) {
	for _, name := range []string{"distribution", "ociregistry"} {
		k := newKind(t, name)
		for _, ref := range []string{k.reg.Host() + "/hello:nope", k.reg.Host() + "/nothere:v1"} {
			_, err := k.open(t, ref).Resolve(t.Context())
			if !errors.Is(err, oci.ErrNotFound) || !strings.Contains(err.Error(), ref) {
				t.Errorf("%s: Resolve(%s) = %v, want ErrNotFound naming the reference", name, ref, err)
			}
		}
	}
	k := newKind(t, "ociregistry")
	l := newKind(t, "layout")
	ref := strings.TrimSuffix(l.ref, ":v1") + ":nope"
	if _, err := l.open(t, ref).Resolve(t.Context()); !errors.Is(err, oci.ErrNotFound) || !strings.Contains(err.Error(), ref) {
		t.Errorf("Resolve(%s) = %v", ref, err)
	}
	if _, err := oci.Open(t.Context(), filepath.Join(t.TempDir(), "none")+":v1", oci.Options{OCILayout: true}); !errors.Is(err, oci.ErrNotFound) {
		t.Errorf("Open(missing layout) = %v", err)
	}
	// FetchIndex on a manifest.
	tg := k.open(t, k.ref)
	if _, err := tg.FetchIndex(t.Context(), k.img.Manifests[0]); !errors.Is(err, oci.ErrNotIndex) {
		t.Errorf("FetchIndex(manifest) = %v", err)
	}
	// No referrers is an empty list.
	refs, err := tg.Referrers(t.Context(), k.img.Manifests[2], spec.ArtifactType)
	if err != nil || len(refs) != 0 {
		t.Errorf("Referrers of a bare manifest = %v, %v", refs, err)
	}
	if _, _, err := tg.NewestSpec(t.Context(), k.img.Manifests[2]); !errors.Is(err, oci.ErrNoSpec) {
		t.Errorf("NewestSpec of a bare manifest = %v, want ErrNoSpec", err)
	}
}

func TestFailingRegistry(t *testing.T) {
	reg := testregistry.NewFailing(t, http.StatusInternalServerError)
	ref := reg.Host() + "/hello:v1"
	tg, err := oci.Open(t.Context(), ref, registryOptions())
	if err != nil {
		t.Fatal(err)
	}
	_, err = tg.Resolve(t.Context())
	if err == nil || !strings.Contains(err.Error(), reg.Host()) || !strings.Contains(err.Error(), "500") {
		t.Fatalf("Resolve against a failing registry = %v, want the registry and status named", err)
	}
	t.Log(err)
	subject := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, []byte("{}"))
	_, err = tg.PushSpec(t.Context(), subject, testregistry.SampleSpec(1), nil, time.Unix(0, 0))
	if err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("PushSpec against a failing registry = %v", err)
	}
	// Blobs go up while the subject is checked; the manifest never does.
	for _, r := range reg.Requests() {
		if r.Method == http.MethodPut && strings.Contains(r.Path, "/manifests/") {
			t.Errorf("PushSpec tried to write a manifest: %s", r)
		}
	}
}

// pushArtifact pushes a hand-made referrer of subject whose layers[0] has mediaType and data.
func pushArtifact(t *testing.T, k *kind, subject ocispec.Descriptor, mediaType string, data []byte) ocispec.Descriptor {
	t.Helper()
	tg := k.open(t, k.ref)
	l := content.NewDescriptorFromBytes(mediaType, data)
	if err := tg.Store().Push(t.Context(), l, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	d, err := oras.PackManifest(t.Context(), tg.Store(), oras.PackManifestVersion1_1, spec.ArtifactType, oras.PackManifestOptions{
		Subject: &subject, Layers: []ocispec.Descriptor{l},
		ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "2025-01-01T00:00:00Z"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func onlyReferrer(t *testing.T, tg *oci.Target, subject ocispec.Descriptor) ocispec.Descriptor {
	t.Helper()
	refs, err := tg.Referrers(t.Context(), subject, spec.ArtifactType)
	if err != nil || len(refs) != 1 {
		t.Fatalf("Referrers = %v, %v; want one", refs, err)
	}
	return refs[0]
}

func TestBadArtifacts(t *testing.T) {
	k := newKind(t, "ociregistry")
	ctx := t.Context()

	t.Run("wrong layer media type", func(t *testing.T) {
		subject := k.img.Manifests[0]
		y, _ := testregistry.SampleSpec(1).MarshalYAML()
		pushArtifact(t, k, subject, "text/plain", y)
		tg := k.open(t, k.ref)
		_, _, err := tg.FetchSpec(ctx, onlyReferrer(t, tg, subject))
		if !errors.Is(err, oci.ErrInvalidArtifact) || !strings.Contains(err.Error(), "text/plain") {
			t.Fatalf("FetchSpec = %v, want ErrInvalidArtifact", err)
		}
	})

	t.Run("spec over the limit", func(t *testing.T) {
		subject := k.img.Manifests[1]
		big := bytes.Repeat([]byte("#"), spec.MaxSpecBytes+1)
		pushArtifact(t, k, subject, spec.MediaTypeSpec, big)
		tg := k.open(t, k.ref)
		ref := onlyReferrer(t, tg, subject)
		k.reg.Reset()
		_, _, err := tg.FetchSpec(ctx, ref)
		if !errors.Is(err, oci.ErrTooLarge) {
			t.Fatalf("FetchSpec = %v, want ErrTooLarge", err)
		}
		bigDigest := digest.FromBytes(big)
		for _, r := range k.reg.Requests() {
			if strings.Contains(r.Path, bigDigest.Encoded()) {
				t.Errorf("the oversized blob was requested: %s", r)
			}
		}
	})

	t.Run("blob not matching its digest", func(t *testing.T) {
		subject := k.img.Manifests[2]
		tg := k.open(t, k.ref)
		y, _ := testregistry.SampleSpec(5).MarshalYAML()
		if _, err := tg.PushSpec(ctx, subject, testregistry.SampleSpec(5), nil, time.Unix(1, 0)); err != nil {
			t.Fatal(err)
		}
		blob := digest.FromBytes(y)
		k.reg.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+blob.String()) {
				return false
			}
			bad := bytes.ToUpper(y) // same length, other bytes
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Docker-Content-Digest", blob.String())
			w.Header().Set("Content-Length", fmt.Sprint(len(bad)))
			w.Write(bad)
			return true
		})
		defer k.reg.SetHook(nil)
		tg = k.open(t, k.ref)
		_, _, err := tg.FetchSpec(ctx, onlyReferrer(t, tg, subject))
		if err == nil || !errors.Is(err, content.ErrMismatchedDigest) {
			t.Fatalf("FetchSpec of a tampered blob = %v, want a digest mismatch", err)
		}
		t.Log(err)
	})
}

func TestLayoutReference(t *testing.T) {
	for _, c := range []struct{ in, path, ref string }{
		{"dir:v1", "dir", "v1"},
		{"a/b/dir", "a/b/dir", ""},
		{"dir@sha256:" + strings.Repeat("a", 64), "dir", "sha256:" + strings.Repeat("a", 64)},
		{"a:b/dir", "a:b/dir", ""},
		{"a:b/dir:v1", "a:b/dir", "v1"},
		{"/tmp/x/dir:1.0_rc-2", "/tmp/x/dir", "1.0_rc-2"},
	} {
		p, r, err := oci.ParseLayoutReference(c.in)
		if err != nil || p != c.path || r != c.ref {
			t.Errorf("ParseLayoutReference(%q) = %q, %q, %v; want %q, %q", c.in, p, r, err, c.path, c.ref)
		}
	}
	for _, bad := range []string{"", ":v1", "dir:", "dir@sha256:zz", "dir@", "dir:bad!tag", "dir:-x"} {
		if _, _, err := oci.ParseLayoutReference(bad); !errors.Is(err, oci.ErrInvalidReference) || !strings.Contains(err.Error(), "PATH:TAG") {
			t.Errorf("ParseLayoutReference(%q) = %v, want ErrInvalidReference saying the form", bad, err)
		}
	}
	if _, err := oci.Open(context.Background(), "dir:bad!tag", oci.Options{OCILayout: true}); !errors.Is(err, oci.ErrInvalidReference) {
		t.Errorf("Open(malformed layout ref) = %v", err)
	}
	if _, err := oci.Open(context.Background(), "not a/reference!", oci.Options{}); !errors.Is(err, oci.ErrInvalidReference) {
		t.Errorf("Open(malformed registry ref) = %v", err)
	}

	// "path" alone: the only tag; with two tags, an error listing them.
	dir := filepath.Join(t.TempDir(), "layout")
	img := testregistry.WriteLayout(t, dir, "v1")
	tg, err := oci.Open(t.Context(), dir, oci.Options{OCILayout: true})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := tg.Resolve(t.Context()); err != nil || d.Digest != img.Index.Digest {
		t.Fatalf("Resolve(%s) = %v, %v", dir, d, err)
	}
	byDigest, err := oci.Open(t.Context(), dir+"@"+img.Manifests[2].Digest.String(), oci.Options{OCILayout: true})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := byDigest.Resolve(t.Context()); err != nil || d.Digest != img.Manifests[2].Digest {
		t.Fatalf("Resolve by digest = %v, %v", d, err)
	}
	testregistry.WriteLayout(t, dir, "v2")
	if _, err := oci.Open(t.Context(), dir, oci.Options{OCILayout: true}); err == nil || !strings.Contains(err.Error(), "v1, v2") {
		t.Fatalf("Open(layout with two tags) = %v, want the tags listed", err)
	}
}

// A manifest a layout holds without listing it in index.json (buildx, oras) is named by digest.
func TestLayoutUnlistedManifest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "oci")
	img := testregistry.WriteLayout(t, dir, "1.0")
	// Keep only the tagged index in index.json.
	p := filepath.Join(dir, "index.json")
	data, _ := os.ReadFile(p)
	var idx ocispec.Index
	json.Unmarshal(data, &idx)
	idx.Manifests = idx.Manifests[:1]
	out, _ := json.Marshal(idx)
	os.WriteFile(p, out, 0o644)
	tg, err := oci.Open(t.Context(), dir+"@"+img.Manifests[1].Digest.String(), oci.Options{OCILayout: true})
	if err != nil {
		t.Fatal(err)
	}
	d, err := tg.Resolve(t.Context())
	if err != nil || d.MediaType != ocispec.MediaTypeImageManifest || d.Digest != img.Manifests[1].Digest {
		t.Fatalf("Resolve: %+v %v", d, err)
	}
	if _, err := tg.FetchManifest(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	// A blob that is not a manifest is refused by name.
	tg, _ = oci.Open(t.Context(), dir+"@"+img.Layers[0].Digest.String(), oci.Options{OCILayout: true})
	if _, err := tg.Resolve(t.Context()); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Fatalf("a layer blob: %v", err)
	}
}
