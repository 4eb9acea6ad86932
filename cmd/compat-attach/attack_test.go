package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	godigest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/spec"
)

// The attacks of issue 9, as someone who can push to the repository but holds no signing key
// would mount them, against both registries: with the referrers tag schema (docker-registry: the
// attacker rewrites the sha256-<hex> tag index) and with the referrers API (the answers are
// rewritten on the way, as a hostile registry would).

// attackScene is an image whose linux/amd64/v3 manifest has two signed specs: an older permissive
// one (SSE2) and a newer strict one (AMXTILE, which the host lacks).
type attackScene struct {
	name, image, repo string
	reg               *testregistry.Registry
	img               testregistry.Image
	pub, key          string
	host              string // an x86-64-v3 host without AMX
	older, newer      string // referrer digests
	tagSchema         bool
}

func attackScenes(t *testing.T) []*attackScene {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "pw")
	prefix := filepath.Join(tmp, "maintainer")
	if _, stderr, code := runCLI(t, "generate-key-pair", "--output-key-prefix", prefix); code != 0 {
		t.Fatal(stderr)
	}
	permissive := writeFile(t, tmp, "permissive.cue", `version: "v1alpha1"
compatibilities: [{weight: 10, rules: [{name: "SSE2", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: SSE2: {op: "Exists"}}]}]}]
`)
	strict := writeFile(t, tmp, "strict.cue", `version: "v1alpha1"
compatibilities: [{weight: 90, rules: [{name: "AMX", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: AMXTILE: {op: "Exists"}}]}]}]
`)
	var out []*attackScene
	for name, reg := range registries(t) {
		sc := &attackScene{name: name, reg: reg, repo: reg.Host() + "/app", image: reg.Host() + "/app:1.0", pub: prefix + ".pub", key: prefix + ".key",
			host: hostFile(t, "amd64", cpuidV3, "6"), tagSchema: name == "tag-fallback"}
		sc.img = testregistry.PushImage(t, reg.Host(), "app", "1.0")
		for i, f := range []string{permissive, strict} {
			created := []string{"2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z"}[i]
			out, stderr, code := runCLI(t, "attach", "--plain-http", sc.image, "--spec", f, "--platform", "linux/amd64/v3", "--created", created, "--sign", "--key", sc.key, "-o", "json")
			var res []attachResult
			if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil {
				t.Fatalf("%s: attach: %s", name, stderr)
			}
			ref := res[0].Referrer[strings.LastIndex(res[0].Referrer, "@")+1:]
			if i == 0 {
				sc.older = ref
			} else {
				sc.newer = ref
			}
		}
		out = append(out, sc)
	}
	return out
}

// check runs `check` of the v3 entry on the scene's host with args, and returns its exit code,
// output and how long it took and allocated.
func (sc *attackScene) check(t *testing.T, args ...string) (int, string, string, time.Duration, uint64) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	out, stderr, code := runCLI(t, append([]string{"check", "--plain-http", sc.image, "--platform", "linux/amd64/v3", "--features", sc.host}, args...)...)
	d := time.Since(start)
	runtime.ReadMemStats(&after)
	return code, out, stderr, d, after.TotalAlloc - before.TotalAlloc
}

// tagIndex returns the repository client and the referrers tag schema index of subject.
func (sc *attackScene) tagIndex(t *testing.T, subject ocispec.Descriptor) (*remote.Repository, string, ocispec.Index) {
	t.Helper()
	repo, err := remote.NewRepository(sc.repo)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP, repo.Client = true, testregistry.Client()
	tag := strings.Replace(subject.Digest.String(), ":", "-", 1)
	_, rc, err := repo.FetchReference(context.Background(), tag)
	var idx ocispec.Index
	if err == nil {
		json.NewDecoder(rc).Decode(&idx)
		rc.Close()
	}
	return repo, tag, idx
}

// putTagIndex replaces the referrers tag schema index of the tag (the attacker has push rights).
func putTagIndex(t *testing.T, repo *remote.Repository, tag string, idx ocispec.Index) {
	t.Helper()
	idx.Versioned, idx.MediaType = specs.Versioned{SchemaVersion: 2}, ocispec.MediaTypeImageIndex
	if idx.Manifests == nil {
		idx.Manifests = []ocispec.Descriptor{}
	}
	data, _ := json.Marshal(idx)
	d := content.NewDescriptorFromBytes(ocispec.MediaTypeImageIndex, data)
	if err := repo.PushReference(context.Background(), d, bytes.NewReader(data), tag); err != nil {
		t.Fatal(err)
	}
}

// rewriteListing changes what subject's referrers listing says: the tag index on docker-registry,
// the referrers API's answer on the other.
func (sc *attackScene) rewriteListing(t *testing.T, subject ocispec.Descriptor, change func([]ocispec.Descriptor) []ocispec.Descriptor) {
	t.Helper()
	if sc.tagSchema {
		repo, tag, idx := sc.tagIndex(t, subject)
		idx.Manifests = change(idx.Manifests)
		putTagIndex(t, repo, tag, idx)
		return
	}
	sc.reg.SetRewrite(func(r *http.Request, status int, _ http.Header, body []byte) []byte {
		if status != http.StatusOK || !strings.HasSuffix(r.URL.Path, "/referrers/"+subject.Digest.String()) {
			return body
		}
		var idx ocispec.Index
		if json.Unmarshal(body, &idx) != nil {
			return body
		}
		idx.Manifests = change(idx.Manifests)
		out, _ := json.Marshal(idx)
		return out
	})
	t.Cleanup(func() { sc.reg.SetRewrite(nil) })
}

func TestAttackRollback(t *testing.T) {
	for _, sc := range attackScenes(t) {
		t.Run(sc.name, func(t *testing.T) {
			if code, out, stderr, _, _ := sc.check(t, "--key", sc.pub); code != exitIncompatible || !strings.Contains(stderr, "Using spec "+sc.repo+"@"+sc.newer) {
				t.Fatalf("before the attack: exit %d\n%s%s", code, out, stderr)
			}
			// Date the older (permissive) signed spec 2099 in the listing, and the newer 2020.
			sc.rewriteListing(t, sc.img.Manifests[1], func(ds []ocispec.Descriptor) []ocispec.Descriptor {
				for i := range ds {
					switch ds[i].Digest.String() {
					case sc.older:
						ds[i].Annotations[ocispec.AnnotationCreated] = "2099-01-01T00:00:00Z"
					case sc.newer:
						ds[i].Annotations[ocispec.AnnotationCreated] = "2020-01-01T00:00:00Z"
					}
				}
				return ds
			})
			code, out, stderr, _, _ := sc.check(t, "--key", sc.pub)
			if code != exitIncompatible || !strings.Contains(stderr, "Using spec "+sc.repo+"@"+sc.newer) || !strings.Contains(out, "FAIL  AMX") {
				t.Fatalf("rollback: the older signed spec was used: exit %d\n%s%s", code, out, stderr)
			}
		})
	}
}

func TestAttackStrip(t *testing.T) {
	for _, sc := range attackScenes(t) {
		t.Run(sc.name, func(t *testing.T) {
			sc.rewriteListing(t, sc.img.Manifests[1], func([]ocispec.Descriptor) []ocispec.Descriptor { return nil })
			code, out, stderr, _, _ := sc.check(t, "--key", sc.pub, "--require-trusted")
			if code != exitIncompatible || !strings.Contains(out, "NOT COMPATIBLE: no trusted spec") {
				t.Fatalf("strip, check --require-trusted: exit %d\n%s%s", code, out, stderr)
			}
			if _, stderr, code := runCLI(t, "select", "--plain-http", sc.image, "--features", sc.host, "--platform", "linux/amd64/v3", "--key", sc.pub, "--require-trusted"); code != exitIncompatible || !strings.Contains(stderr, "no trusted spec") {
				t.Fatalf("strip, select --require-trusted: exit %d %s", code, stderr)
			}
			images := writeFile(t, t.TempDir(), "images.txt", sc.image+"\n")
			out, _, _ = runCLI(t, "report", "--plain-http", "--images", images, "--nodes", sc.host, "--key", sc.pub, "--require-trusted", "-o", "json")
			if !strings.Contains(out, `"status": "incompatible"`) || !strings.Contains(out, "no trusted spec") {
				t.Fatalf("strip, report --require-trusted:\n%s", out)
			}
		})
	}
}

// bombSpec is a spec layer of aliases that expands to about 10^10 nodes.
func bombSpec() []byte {
	var b strings.Builder
	b.WriteString("a0: &a0 [" + strings.Repeat("x, ", 9999) + "x]\n")
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [%s*a%d]\n", i, i, strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 99), i-1)
	}
	b.WriteString("version: v1alpha1\ncompatibilities: [{rules: [{name: r, matchFeatures: [{feature: cpu.cpuid, matchExpressions: {X: {op: In, value: *a5}}}]}]}]\n")
	return []byte(b.String())
}

// regexpSpec is a 270 KB spec of InRegexp expressions.
func regexpSpec() []byte {
	var b strings.Builder
	b.WriteString("version: v1alpha1\ncompatibilities:\n- rules:\n  - name: r\n    matchFeatures:\n    - feature: kernel.loadedmodule\n      matchExpressions:\n")
	for i := 0; b.Len() < 270<<10; i++ {
		fmt.Fprintf(&b, "        m%d: {op: InRegexp, value: [\"^((a|b|c)+(d|e)*){1,100}%s$\"]}\n", i, strings.Repeat("x?", 200))
	}
	return []byte(b.String())
}

func TestAttackBombs(t *testing.T) {
	for _, sc := range attackScenes(t) {
		t.Run(sc.name, func(t *testing.T) {
			tg, err := oci.Open(context.Background(), sc.image, oci.Options{PlainHTTP: true, HTTPClient: testregistry.Client()})
			if err != nil {
				t.Fatal(err)
			}
			// An alias bomb and a regexp-heavy spec, newer than the signed ones, unsigned.
			pushRawSpecTo(t, tg, sc.img.Manifests[1], bombSpec(), "2026-07-01T00:00:00Z")
			code, out, stderr, d, mem := sc.check(t, "--key", sc.pub)
			if code != exitIncompatible || d > 5*time.Second || mem > 256<<20 || !strings.Contains(stderr, "Using spec "+sc.repo+"@"+sc.newer) {
				t.Fatalf("alias bomb under a policy: exit %d after %v, %d MB\n%s%s", code, d, mem>>20, out, stderr)
			}
			code, _, stderr, d, mem = sc.check(t)
			if code != exitFailure || d > 5*time.Second || mem > 256<<20 || !strings.Contains(stderr, "anchors and aliases are not allowed") {
				t.Fatalf("alias bomb without a policy: exit %d after %v, %d MB: %s", code, d, mem>>20, stderr)
			}
			t.Logf("alias bomb: refused in %v, %d MB allocated", d, mem>>20)

			heavy := regexpSpec()
			layer := content.NewDescriptorFromBytes(spec.MediaTypeSpec, heavy)
			pushRawSpecTo(t, tg, sc.img.Manifests[1], heavy, "2026-08-01T00:00:00Z")
			// The same referrer listed ten times.
			sc.rewriteListing(t, sc.img.Manifests[1], func(ds []ocispec.Descriptor) []ocispec.Descriptor {
				for _, x := range ds {
					if x.Annotations[ocispec.AnnotationCreated] == "2026-08-01T00:00:00Z" {
						for range 9 {
							ds = append(ds, x)
						}
					}
				}
				return ds
			})
			code, _, stderr, d, _ = sc.check(t)
			if code != exitFailure || d > 5*time.Second || !strings.Contains(stderr, "regexps") {
				t.Fatalf("regexp-heavy spec (%d bytes, %s) listed ten times: exit %d after %v: %s", len(heavy), layer.Digest, code, d, stderr)
			}
			t.Logf("regexp-heavy spec of %d KB listed ten times: refused in %v", len(heavy)>>10, d)
			code, _, _, d, _ = sc.check(t, "--key", sc.pub)
			if code != exitIncompatible || d > 5*time.Second {
				t.Fatalf("regexp-heavy spec under a policy: exit %d after %v", code, d)
			}
		})
	}
}

func TestAttackManyUnsigned(t *testing.T) {
	for _, sc := range attackScenes(t) {
		t.Run(sc.name, func(t *testing.T) {
			// 2,000 unsigned referrers listed, newer than the signed specs. docker-registry lists
			// only manifests it holds: they are pushed (without subject, so that the tag index is
			// written once); through the referrers API they need not exist: under a policy they
			// are never fetched.
			var extra []ocispec.Descriptor
			if sc.tagSchema {
				extra = pushUnsigned(t, sc, 2000)
			} else {
				for i := range 2000 {
					extra = append(extra, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: spec.ArtifactType,
						Digest: godigest.FromString(fmt.Sprint("unsigned", i)), Size: 500,
						Annotations: map[string]string{ocispec.AnnotationCreated: "2026-09-01T00:00:00Z"}})
				}
			}
			sc.rewriteListing(t, sc.img.Manifests[1], func(ds []ocispec.Descriptor) []ocispec.Descriptor { return append(ds, extra...) })
			sc.reg.Reset()
			code, out, stderr, d, mem := sc.check(t, "--key", sc.pub)
			lines := strings.Count(stderr, "\n")
			if code != exitIncompatible || d > 5*time.Second || lines > 12 || !strings.Contains(stderr, "more specs") {
				t.Fatalf("2,000 unsigned referrers: exit %d after %v, %d MB, %d lines on stderr\n%s%s", code, d, mem>>20, lines, out, stderr)
			}
			t.Logf("2,000 unsigned referrers under a policy: %v, %d MB, %d lines on stderr, %d requests", d, mem>>20, lines, len(sc.reg.Requests()))
			if n := len(sc.reg.Requests()); n > 20 {
				t.Fatalf("%d requests: unsigned specs were fetched", n)
			}
			if _, _, code := runCLI(t, "verify", "--plain-http", sc.image, "--platform", "linux/amd64/v3", "--key", sc.pub, "-o", "json"); code != exitFailure {
				t.Fatalf("verify: exit %d, want 1 (2,000 specs do not verify)", code)
			}
		})
	}
}

// pushUnsigned pushes n unsigned spec referrer manifests of the scene's v3 manifest, without
// updating its referrers tag index, and returns their descriptors as a listing would give them.
func pushUnsigned(t *testing.T, sc *attackScene, n int) []ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	repo, _, _ := sc.tagIndex(t, sc.img.Manifests[1])
	layerData := []byte(`{"version": "v1alpha1", "compatibilities": [{"rules": []}]}`)
	layer := content.NewDescriptorFromBytes(spec.MediaTypeSpec, layerData)
	empty := ocispec.DescriptorEmptyJSON
	for _, b := range []struct {
		d    ocispec.Descriptor
		data []byte
	}{{layer, layerData}, {empty, empty.Data}} {
		if err := repo.Push(ctx, b.d, bytes.NewReader(b.data)); err != nil {
			t.Fatal(err)
		}
	}
	out := make([]ocispec.Descriptor, n)
	subject := sc.img.Manifests[1]
	parallelPush := make(chan int)
	errs := make(chan error, n)
	for range 8 {
		go func() {
			for i := range parallelPush {
				ann := map[string]string{ocispec.AnnotationCreated: "2026-09-01T00:00:00Z", "n": fmt.Sprint(i)}
				m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
					ArtifactType: spec.ArtifactType, Config: empty, Layers: []ocispec.Descriptor{layer}, Subject: &ocispec.Descriptor{
						MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}, Annotations: ann}
				data, _ := json.Marshal(m)
				d := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, data)
				d.ArtifactType, d.Annotations = spec.ArtifactType, ann
				out[i] = d
				// A plain PUT: oras-go would rewrite the referrers tag index at each push.
				req, _ := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+sc.reg.Host()+"/v2/app/manifests/"+d.Digest.String(), bytes.NewReader(data))
				req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
				resp, err := testregistry.Client().Do(req)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						err = fmt.Errorf("PUT manifest: %s", resp.Status)
					}
				}
				errs <- err
			}
		}()
	}
	go func() {
		for i := range n {
			parallelPush <- i
		}
		close(parallelPush)
	}()
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestAttackHijack(t *testing.T) {
	for _, sc := range attackScenes(t) {
		t.Run(sc.name, func(t *testing.T) {
			tmp := t.TempDir()
			mine := writeFile(t, tmp, "mine.cue", `version: "v1alpha1"
compatibilities: [{weight: 50, rules: [{name: "SSE42", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: SSE42: {op: "Exists"}}]}]}]
`)
			if _, stderr, code := runCLI(t, "attach", "--plain-http", sc.image, "--spec", mine, "--platform", "linux/amd64", "--created", "2026-07-01T00:00:00Z"); code != 0 {
				t.Fatal(stderr)
			}
			// The attacker's newer spec, unsigned.
			tg, _ := oci.Open(context.Background(), sc.image, oci.Options{PlainHTTP: true, HTTPClient: testregistry.Client()})
			pushRawSpecTo(t, tg, sc.img.Manifests[0], []byte(`{"version": "v1alpha1", "compatibilities": [{"rules": []}]}`), "2026-08-01T00:00:00Z")
			if _, stderr, code := runCLI(t, "sign", "--plain-http", sc.image, "--platform", "linux/amd64", "--key", sc.key); code != exitUsage {
				t.Fatalf("sign without saying what: exit %d %s", code, stderr)
			}
			if _, stderr, code := runCLI(t, "sign", "--plain-http", sc.image, "--platform", "linux/amd64", "--key", sc.key, "--spec", mine); code != 0 {
				t.Fatalf("sign --spec: %s", stderr)
			}
			out, _, _ := runCLI(t, "verify", "--plain-http", sc.image, "--platform", "linux/amd64", "--key", sc.pub, "-o", "json")
			var rows []verifiedEntry
			json.Unmarshal([]byte(out), &rows)
			if len(rows) != 2 || rows[0].Status != "VERIFIED" || rows[0].Created != "2026-07-01T00:00:00Z" || rows[1].Status == "VERIFIED" {
				t.Fatalf("the attacker's spec was signed, or the maintainer's not: %s", out)
			}
			// A spec dated in the future is never signed.
			pushRawSpecTo(t, tg, sc.img.Manifests[0], []byte(`{"version": "v1alpha1", "compatibilities": [{"rules": []}]}`), "2099-01-01T00:00:00Z")
			out, _, _ = runCLI(t, "discover", "--plain-http", sc.image, "--platform", "linux/amd64", "-o", "json")
			var found []discoverEntry
			json.Unmarshal([]byte(out), &found)
			var future string
			for _, f := range found {
				if f.Created == "2099-01-01T00:00:00Z" {
					future = f.Referrer[strings.LastIndex(f.Referrer, "@")+1:]
				}
			}
			if _, stderr, code := runCLI(t, "sign", "--plain-http", sc.image, "--referrer", future, "--key", sc.key); code != exitFailure || !strings.Contains(stderr, "in the future") {
				t.Fatalf("sign --referrer of a spec dated 2099: exit %d %s", code, stderr)
			}
		})
	}
}
