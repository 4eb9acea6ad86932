package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/signing"
	"github.com/compatkit/compatkit/pkg/spec"
)

// The attacks of the review of issue 9's defences (a pusher without a signing key), on both
// registries.

func (sc *attackScene) target(t *testing.T) *oci.Target {
	t.Helper()
	tg, err := oci.Open(context.Background(), sc.image, oci.Options{PlainHTTP: true, HTTPClient: testregistry.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// TestAttackHideSignedSpec: the pusher hides the newer (strict) signed spec from the listing and
// leaves its signature: the spec is found through the signature, with a note. (Hiding the
// signature too is a strip: --require-trusted, or a --signature-repository the pusher cannot
// write, is the defence; SECURITY.md.)
func TestAttackHideSignedSpec(t *testing.T) {
	for _, sc := range attackScenes(t) {
		t.Run(sc.name, func(t *testing.T) {
			sc.rewriteListing(t, sc.img.Manifests[1], func(ds []ocispec.Descriptor) []ocispec.Descriptor {
				var kept []ocispec.Descriptor
				for _, d := range ds {
					if d.Digest.String() != sc.newer {
						kept = append(kept, d)
					}
				}
				return kept
			})
			code, out, stderr, _, _ := sc.check(t, "--key", sc.pub)
			if code != exitIncompatible || !strings.Contains(stderr, "Using spec "+sc.repo+"@"+sc.newer) || !strings.Contains(stderr, "does not show its newest signed spec") {
				t.Fatalf("hidden newer spec: exit %d\n%s%s", code, out, stderr)
			}
		})
	}
}

// TestAttackSignCopy: the pusher copies the older (permissive) spec under a later date; the
// maintainer then signs the permissive document again (a key rotation, several documents in any
// order). The oldest copy is the one signed, the copy is named, and the strict spec stays the
// newest signed one.
func TestAttackSignCopy(t *testing.T) {
	permissive := writeFile(t, t.TempDir(), "permissive.cue", `version: "v1alpha1"
compatibilities: [{weight: 10, rules: [{name: "SSE2", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: SSE2: {op: "Exists"}}]}]}]
`)
	for _, sc := range attackScenes(t) {
		t.Run(sc.name, func(t *testing.T) {
			ctx := context.Background()
			tg := sc.target(t)
			desc, err := tg.Store().Resolve(ctx, sc.older)
			if err != nil {
				t.Fatal(err)
			}
			desc.ArtifactType = spec.ArtifactType
			m, err := tg.FetchManifest(ctx, desc)
			if err != nil {
				t.Fatal(err)
			}
			subject := sc.img.Manifests[1]
			copyDesc, err := oras.PackManifest(ctx, tg.Store(), oras.PackManifestVersion1_1, spec.ArtifactType, oras.PackManifestOptions{
				Subject: &subject, Layers: m.Layers, ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "2026-11-30T00:00:00Z"}})
			if err != nil {
				t.Fatal(err)
			}
			out, stderr, code := runCLI(t, "sign", "--plain-http", sc.image, "--spec", permissive, "--platform", "linux/amd64/v3", "--key", sc.key)
			if code != 0 || !strings.Contains(out, sc.older) || strings.Contains(out, copyDesc.Digest.String()) || !strings.Contains(stderr, copyDesc.Digest.String()) {
				t.Fatalf("sign: exit %d\n%s%s", code, out, stderr)
			}
			code, out, stderr, _, _ = sc.check(t, "--key", sc.pub, "--require-trusted")
			if code != exitIncompatible || !strings.Contains(stderr, "Using spec "+sc.repo+"@"+sc.newer) {
				t.Fatalf("after signing: exit %d\n%s%s", code, out, stderr)
			}
		})
	}
}

// TestAttackRelabel: an index of a v1 and a v3 build, each with a signed spec that relies on the
// platform (kernel only). The pusher tags a new index that lists the v3 build as linux/amd64: on an
// x86-64-v2 host, select --require-trusted must not give it the v3 build; the tag moved straight to
// the v3 manifest, its signed platform is still a requirement.
func TestAttackRelabel(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "pw")
	prefix := filepath.Join(tmp, "maintainer")
	if _, stderr, code := runCLI(t, "generate-key-pair", "--output-key-prefix", prefix); code != 0 {
		t.Fatal(stderr)
	}
	doc := writeFile(t, tmp, "compat.cue", `_kernel: {version: "v1alpha1", compatibilities: [{rules: [{name: "kernel", matchFeatures: [{feature: "kernel.version", matchExpressions: major: {op: "Gt", value: ["3"]}}]}]}]}
platforms: "linux/amd64": _kernel
platforms: "linux/amd64/v3": _kernel
`)
	v2Host := hostFile(t, "amd64", cpuidV2, "6")
	for name, reg := range registries(t) {
		t.Run(name, func(t *testing.T) {
			image := reg.Host() + "/app:1.0"
			img := testregistry.PushShape(t, reg.Host(), "app", "1.0", testregistry.Shape{Platforms: testregistry.Platforms[:2]})
			if _, stderr, code := runCLI(t, "attach", "--plain-http", image, "--spec", doc, "--sign", "--key", prefix+".key"); code != 0 {
				t.Fatal(stderr)
			}
			sel := func() (string, string, int) {
				return runCLI(t, "select", "--plain-http", image, "--features", v2Host, "--key", prefix+".pub", "--require-trusted")
			}
			if out, stderr, code := sel(); code != 0 || !strings.Contains(out, img.Manifests[0].Digest.String()) {
				t.Fatalf("before: exit %d %s%s", code, out, stderr)
			}
			tg, err := oci.Open(context.Background(), image, oci.Options{PlainHTTP: true, HTTPClient: testregistry.Client()})
			if err != nil {
				t.Fatal(err)
			}
			v3 := img.Manifests[1]
			v3.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
			pushIndexTagged(t, tg, "1.0", []ocispec.Descriptor{v3})
			out, stderr, code := sel()
			if code != exitIncompatible || strings.Contains(out, v3.Digest.String()) || !strings.Contains(stderr, "relabelled") {
				t.Fatalf("relabelled v3 build: exit %d\n%s%s", code, out, stderr)
			}
			// The tag names the v3 manifest itself: no index states its platform, the signature does.
			if err := tg.Store().Tag(context.Background(), img.Manifests[1], "1.0"); err != nil {
				t.Fatal(err)
			}
			out, stderr, code = runCLI(t, "check", "--plain-http", image, "--features", v2Host, "--key", prefix+".pub", "--require-trusted")
			if code != exitIncompatible || !strings.Contains(out, "signed for platform linux/amd64/v3") {
				t.Fatalf("the v3 manifest alone: exit %d\n%s%s", code, out, stderr)
			}
		})
	}
}

// pushIndexTagged pushes an OCI index of entries and tags it.
func pushIndexTagged(t *testing.T, tg *oci.Target, tag string, entries []ocispec.Descriptor) ocispec.Descriptor {
	t.Helper()
	data, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: entries})
	if err != nil {
		t.Fatal(err)
	}
	d, err := oras.TagBytes(context.Background(), tg.Store(), ocispec.MediaTypeImageIndex, data, tag)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestAttackBundleFlood: the pusher lists junk bundles (signed with their own key, naming the
// strict spec, dated just ahead) beyond --max-referrers, under the manifest and the index: the
// real bundles are not read, so what counts is unknown (exit 1, saying why), and each junk bundle
// is fetched once however many subjects list it.
func TestAttackBundleFlood(t *testing.T) {
	for _, sc := range attackScenes(t) {
		t.Run(sc.name, func(t *testing.T) {
			ctx := context.Background()
			tg := sc.target(t)
			priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			signer, err := signing.KeySigner(priv)
			if err != nil {
				t.Fatal(err)
			}
			var junk []ocispec.Descriptor
			for i := range 10 {
				payload := fmt.Sprintf(`{"_type": %q, "subject": [], "predicateType": %q, "predicate": {"referrer": {"digest": %q}}, "n": %d}`, signing.StatementType, signing.PredicateType, sc.newer, i)
				bj, err := signer.SignStatement(ctx, []byte(payload))
				if err != nil {
					t.Fatal(err)
				}
				bd, err := signing.PushBundle(ctx, tg, sc.img.Index, bj, "", time.Now().Add(4*time.Minute))
				if err != nil {
					t.Fatal(err)
				}
				bd.ArtifactType = signing.BundleMediaType
				bd.Annotations = map[string]string{signing.AnnotationSpecReferrer: sc.newer, ocispec.AnnotationCreated: time.Now().Add(4 * time.Minute).UTC().Format(time.RFC3339)}
				junk = append(junk, bd)
			}
			sc.rewriteListing(t, sc.img.Manifests[1], func(ds []ocispec.Descriptor) []ocispec.Descriptor { return append(ds, junk...) })
			sc.reg.Reset()
			code, out, stderr, _, _ := sc.check(t, "--key", sc.pub, "--max-referrers", "8")
			if code != exitFailure || !strings.Contains(stderr+out, "--max-referrers") {
				t.Fatalf("bundle flood: exit %d\n%s%s", code, out, stderr)
			}
			blobs := map[string]int{}
			for _, r := range sc.reg.Requests() {
				if r.Method == http.MethodGet && strings.Contains(r.Path, "/blobs/") {
					blobs[r.Path]++
				}
			}
			for p, n := range blobs {
				if n > 1 {
					t.Errorf("%s fetched %d times", p, n)
				}
			}
		})
	}
}

// TestAttackBundleUnreadable: the registry fails on the signature bundles (or is made to): the
// signed spec that counts is unknown (exit 1), never "no trusted spec, so as if none".
func TestAttackBundleUnreadable(t *testing.T) {
	for _, sc := range attackScenes(t) {
		t.Run(sc.name, func(t *testing.T) {
			tg := sc.target(t)
			refs, err := tg.Referrers(context.Background(), sc.img.Manifests[1], signing.BundleMediaType)
			if err != nil || len(refs) == 0 {
				t.Fatalf("bundles: %v %v", refs, err)
			}
			bundles := map[string]bool{}
			for _, r := range refs {
				bundles[r.Digest.String()] = true
			}
			sc.reg.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
				if i := strings.LastIndex(r.URL.Path, "/"); i >= 0 && bundles[r.URL.Path[i+1:]] {
					w.WriteHeader(http.StatusServiceUnavailable)
					return true
				}
				return false
			})
			defer sc.reg.SetHook(nil)
			code, out, stderr, _, _ := sc.check(t, "--key", sc.pub, "--timeout", "2s")
			if code != exitFailure || !strings.Contains(stderr+out, "signature bundle") {
				t.Fatalf("unreadable bundles: exit %d\n%s%s", code, out, stderr)
			}
		})
	}
}
