package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/signing"
)

// pushBuildAttested tags, in the repository of image, an index shaped as BuildKit exports a build
// of compatkit's frontend: the image's manifests, then for each manifest in specs an attestation
// manifest (platform unknown/unknown, vnd.docker.reference.type=attestation-manifest,
// vnd.docker.reference.digest=<manifest>) whose layer is an in-toto statement with compatkit's
// predicate; plus one provenance attestation of another predicate type.
func pushBuildAttested(t *testing.T, image string, img testregistry.Image, specByPlatform map[int]string) {
	t.Helper()
	ctx := context.Background()
	tg, err := oci.Open(ctx, image, oci.Options{PlainHTTP: true, HTTPClient: testregistry.Client()})
	if err != nil {
		t.Fatal(err)
	}
	entries := append([]ocispec.Descriptor(nil), img.Manifests...)
	attest := func(subject ocispec.Descriptor, predicateType string, predicate any) {
		st, _ := json.Marshal(map[string]any{
			"_type":         signing.StatementType,
			"subject":       []map[string]any{{"name": "_", "digest": map[string]string{"sha256": subject.Digest.Encoded()}}},
			"predicateType": predicateType,
			"predicate":     predicate,
		})
		layer, err := oras.PushBytes(ctx, tg.Store(), decide.MediaTypeInToto, st)
		if err != nil {
			t.Fatal(err)
		}
		layer.Annotations = map[string]string{decide.AnnotationPredicateType: predicateType}
		m, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			Config: ocispec.DescriptorEmptyJSON, Layers: []ocispec.Descriptor{layer}})
		if _, err := oras.PushBytes(ctx, tg.Store(), ocispec.MediaTypeEmptyJSON, ocispec.DescriptorEmptyJSON.Data); err != nil {
			t.Fatal(err)
		}
		md, err := oras.PushBytes(ctx, tg.Store(), ocispec.MediaTypeImageManifest, m)
		if err != nil {
			t.Fatal(err)
		}
		md.Platform = &ocispec.Platform{OS: "unknown", Architecture: "unknown"}
		md.Annotations = map[string]string{oci.AnnotationReferenceType: "attestation-manifest", decide.AnnotationReferenceDigest: subject.Digest.String()}
		entries = append(entries, md)
	}
	for i, m := range img.Manifests {
		attest(m, "https://slsa.dev/provenance/v1", map[string]any{"buildType": "test"})
		if doc, ok := specByPlatform[i]; ok {
			var sp any
			if err := json.Unmarshal([]byte(doc), &sp); err != nil {
				t.Fatal(err)
			}
			attest(m, signing.PredicateType, map[string]any{"spec": sp, "platform": oci.FormatPlatform(m.Platform)})
		}
	}
	pushIndexTagged(t, tg, "built", entries)
}

// TestBuildAttestations: check, select, fetch and discover read a build's attestations when a
// manifest has no referrer (and not under a trust policy); attach --from-attestations publishes
// them as referrers, once. On both registries.
func TestBuildAttestations(t *testing.T) {
	v3 := `{"version": "v1alpha1", "compatibilities": [{"tag": "v3", "weight": 90, "rules": [{"name": "AVX2", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"AVX2": {"op": "Exists"}}}]}]}]}`
	v1 := `{"version": "v1alpha1", "compatibilities": [{"tag": "v1", "weight": 50, "rules": [{"name": "SSE2", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"SSE2": {"op": "Exists"}}}]}]}]}`
	v3Host, v2Host := hostFile(t, "amd64", cpuidV3, "6"), hostFile(t, "amd64", cpuidV2, "6")
	tmp := t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "pw")
	if _, stderr, code := runCLI(t, "generate-key-pair", "--output-key-prefix", tmp+"/k"); code != 0 {
		t.Fatal(stderr)
	}
	for name, reg := range registries(t) {
		t.Run(name, func(t *testing.T) {
			img := testregistry.PushShape(t, reg.Host(), "app", "1.0", testregistry.Shape{Platforms: testregistry.Platforms[:2]})
			image := reg.Host() + "/app:built"
			pushBuildAttested(t, image, img, map[int]string{0: v1, 1: v3})

			out, stderr, code := runCLI(t, "check", "--plain-http", image, "--platform", "linux/amd64/v3", "--features", v3Host)
			if code != 0 || !strings.Contains(out, "COMPATIBLE (score 90)") || !strings.Contains(out, "a build attestation of the manifest") || !strings.Contains(stderr, "build attestation") {
				t.Fatalf("check: exit %d\n%s%s", code, out, stderr)
			}
			if out, stderr, code := runCLI(t, "select", "--plain-http", image, "--features", v2Host); code != 0 || !strings.Contains(out, img.Manifests[0].Digest.String()) {
				t.Fatalf("select on a v2 host: exit %d %s%s", code, out, stderr)
			}
			if out, _, code := runCLI(t, "fetch", "--plain-http", image, "--platform", "linux/amd64/v3"); code != 0 || !strings.Contains(out, "AVX2") {
				t.Fatalf("fetch: exit %d %s", code, out)
			}
			out, _, code = runCLI(t, "discover", "--plain-http", image, "-o", "json")
			var rows []discoverEntry
			if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil || len(rows) != 2 || rows[0].Kind != "attestation" || rows[1].Platform != "linux/amd64/v3" {
				t.Fatalf("discover: exit %d %v %s", code, err, out)
			}
			// Unsigned: under a policy they do not count.
			if out, stderr, code := runCLI(t, "check", "--plain-http", image, "--platform", "linux/amd64/v3", "--features", v3Host, "--key", tmp+"/k.pub", "--require-trusted"); code != exitIncompatible {
				t.Fatalf("check --require-trusted: exit %d %s%s", code, out, stderr)
			}

			out, stderr, code = runCLI(t, "attach", "--plain-http", image, "--from-attestations", "--sign", "--key", tmp+"/k.key")
			if code != 0 || strings.Count(out, "Attached ") != 2 || strings.Count(out, "Signed ") != 2 {
				t.Fatalf("attach --from-attestations: exit %d %s%s", code, out, stderr)
			}
			if out, stderr, code := runCLI(t, "attach", "--plain-http", image, "--from-attestations"); code != 0 || strings.Contains(out, "Attached ") || !strings.Contains(stderr, "already has this spec") {
				t.Fatalf("attach --from-attestations again: exit %d %s%s", code, out, stderr)
			}
			out, stderr, code = runCLI(t, "check", "--plain-http", image, "--platform", "linux/amd64/v3", "--features", v3Host, "--key", tmp+"/k.pub", "--require-trusted")
			if code != 0 || !strings.Contains(stderr, "VERIFIED") || strings.Contains(out, "build attestation") {
				t.Fatalf("check of the signed referrers: exit %d %s%s", code, out, stderr)
			}
			if _, stderr, code := runCLI(t, "attach", "--plain-http", reg.Host()+"/app:1.0", "--from-attestations"); code != exitFailure || !strings.Contains(stderr, "no compatibility attestation") {
				t.Fatalf("attach --from-attestations of an image without: exit %d %s", code, stderr)
			}
		})
	}
}
