package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/spec"
)

const baseSpec = `version: "v1alpha1"
compatibilities: [{
	rules: [{
		name: "kernel"
		matchFeatures: [{feature: "kernel.version", matchExpressions: major: {op: "Gt", value: ["4"]}}]
	}, {
		name: "glibc"
		matchFeatures: [{feature: "compatkit.libc", matchExpressions: name: {op: "In", value: ["glibc"]}}]
	}]
}]
`

// derived specs: a stricter kernel rule (tighten), a weaker one (conflict), and one that relaxes
// the base's glibc rule.
const (
	derivedTighten = `version: "v1alpha1"
compatibilities: [{weight: 80, rules: [{
	name: "kernel"
	matchFeatures: [{feature: "kernel.version", matchExpressions: major: {op: "Gt", value: ["5"]}}]
}, {
	name: "AVX2"
	matchFeatures: [{feature: "cpu.cpuid", matchExpressions: AVX2: {op: "Exists"}}]
}]}]
`
	derivedConflict = `version: "v1alpha1"
compatibilities: [{rules: [{
	name: "kernel"
	matchFeatures: [{feature: "kernel.version", matchExpressions: major: {op: "Gt", value: ["3"]}}]
}]}]
`
	derivedRelax = `version: "v1alpha1"
relax: ["glibc"]
compatibilities: [{rules: [{
	name: "musl"
	matchFeatures: [{feature: "compatkit.libc", matchExpressions: name: {op: "In", value: ["musl"]}}]
}]}]
`
)

func TestInheritFromBaseImage(t *testing.T) {
	reg := testregistry.NewOCI(t)
	base := testregistry.PushImage(t, reg.Host(), "base", "1.0")
	testregistry.PushImage(t, reg.Host(), "app", "1.0")
	tmp := t.TempDir()
	baseRef, appRef := reg.Host()+"/base:1.0", reg.Host()+"/app:1.0"
	if _, stderr, code := runCLI(t, "attach", baseRef, "--plain-http", "--platform", "linux/amd64/v3", "--spec", writeFile(t, tmp, "base.cue", baseSpec)); code != 0 {
		t.Fatalf("attach base: %s", stderr)
	}

	// Conflict: nothing is pushed, and the error names both sides.
	reg.Reset()
	conflict := writeFile(t, tmp, "conflict.cue", derivedConflict)
	_, stderr, code := runCLI(t, "attach", appRef, "--plain-http", "--platform", "linux/amd64/v3", "--spec", conflict, "--base", baseRef)
	if code != exitFailure || !strings.Contains(stderr, "conflict.cue:2:28") || !strings.Contains(stderr, base.Manifests[1].Digest.String()) {
		t.Fatalf("conflict: exit %d, stderr %q: want the derived position and the base digest", code, stderr)
	}
	for _, r := range reg.Requests() {
		if r.Method != "GET" && r.Method != "HEAD" {
			t.Fatalf("a conflicting spec was pushed: %s", r)
		}
	}

	// Tighten: the derived spec keeps its stricter kernel rule and gains the base's glibc rule.
	tighten := writeFile(t, tmp, "tighten.cue", derivedTighten)
	_, stderr, code = runCLI(t, "attach", appRef, "--plain-http", "--platform", "linux/amd64/v3", "--spec", tighten, "--base", baseRef, "--created", "2026-01-01T00:00:00Z")
	if code != 0 {
		t.Fatalf("tighten: exit %d: %s", code, stderr)
	}
	s, prov := fetchWithProvenance(t, appRef)
	names := ruleNames(s)
	if names != "AVX2,glibc,kernel" || ruleByName(s, "kernel").MatchFeatures[0].MatchExpressions["major"].Value[0] != "5" {
		t.Fatalf("tightened spec has rules %s: %+v", names, s)
	}
	if prov.Base == nil || prov.Base.Digest != base.Manifests[1].Digest.String() || prov.Base.Referrer == "" || strings.Join(prov.Base.Inherited, ",") != "glibc" {
		t.Fatalf("provenance does not record the base: %+v", prov.Base)
	}

	// Relax: explicit, warned about, recorded.
	relax := writeFile(t, tmp, "relax.cue", derivedRelax)
	_, stderr, code = runCLI(t, "attach", appRef, "--plain-http", "--platform", "linux/amd64/v3", "--spec", relax, "--base", baseRef, "--created", "2026-01-02T00:00:00Z")
	if code != 0 || !strings.Contains(stderr, "warning: glibc") {
		t.Fatalf("relax: exit %d, stderr %q: want a warning", code, stderr)
	}
	s, prov = fetchWithProvenance(t, appRef)
	if names := ruleNames(s); names != "kernel,musl" {
		t.Fatalf("relaxed spec has rules %s", names)
	}
	if prov.Base == nil || strings.Join(prov.Base.Relaxed, ",") != "glibc" {
		t.Fatalf("provenance does not record the relaxation: %+v", prov.Base)
	}
}

// ruleNames lists the rule names of the first set, sorted.
func ruleNames(s *spec.Spec) string {
	var n []string
	for _, r := range s.Compatibilities[0].Rules {
		n = append(n, r.Name)
	}
	sort.Strings(n)
	return strings.Join(n, ",")
}

func ruleByName(s *spec.Spec, name string) *spec.Rule {
	for i, r := range s.Compatibilities[0].Rules {
		if r.Name == name {
			return &s.Compatibilities[0].Rules[i]
		}
	}
	return &spec.Rule{MatchFeatures: []spec.FeatureMatcherTerm{{}}}
}

// fetchWithProvenance reads the newest spec of the v3 manifest of ref and its provenance layer.
func fetchWithProvenance(t *testing.T, ref string) (*spec.Spec, spec.Provenance) {
	t.Helper()
	ctx := context.Background()
	tg, err := oci.Open(ctx, ref, oci.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	root, err := tg.Resolve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := tg.FetchIndex(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	m := idx.Manifests[1] // linux/amd64/v3
	s, refDesc, err := tg.NewestSpec(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	_, man, err := tg.FetchSpec(ctx, refDesc)
	if err != nil {
		t.Fatal(err)
	}
	var prov spec.Provenance
	for _, l := range man.Layers {
		if l.MediaType == spec.MediaTypeProvenance {
			b, err := content.FetchAll(ctx, tg.Store(), l)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &prov); err != nil {
				t.Fatal(err)
			}
		}
	}
	return s, prov
}

// TestBaseOnAnotherRegistry: attaching to an image of an OCI layout whose manifest names its base
// on a registry contacts that registry only with --base or --base-from-annotations, and says so.
func TestBaseOnAnotherRegistry(t *testing.T) {
	ctx := context.Background()
	far := testregistry.NewFailing(t, http.StatusNotFound)
	dir := filepath.Join(t.TempDir(), "oci")
	img := testregistry.WriteLayout(t, dir, "1.0")
	tg, err := oci.Open(ctx, dir+":1.0", oci.Options{OCILayout: true})
	if err != nil {
		t.Fatal(err)
	}
	// A copy of the amd64 manifest that names its base, as BuildKit writes it.
	m, err := tg.FetchManifest(ctx, img.Manifests[0])
	if err != nil {
		t.Fatal(err)
	}
	m.Annotations = map[string]string{ocispec.AnnotationBaseImageName: far.Host() + "/base:1.0",
		ocispec.AnnotationBaseImageDigest: "sha256:" + strings.Repeat("a", 64)}
	data, _ := json.Marshal(m)
	d := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, data)
	if err := tg.Store().Push(ctx, d, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	doc := writeFile(t, t.TempDir(), "compat.cue", `version: "v1alpha1"
compatibilities: [{rules: [{name: "sse2", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: SSE2: {op: "Exists"}}]}]}]
`)
	ref := dir + "@" + d.Digest.String()
	_, stderr, code := runCLI(t, "attach", "--oci-layout", ref, "--spec", doc)
	if code != 0 || len(far.Requests()) != 0 || !strings.Contains(stderr, "on another registry than the image's") || !strings.Contains(stderr, "--base-from-annotations") {
		t.Fatalf("attach: exit %d, %d requests to the base's registry, stderr %s", code, len(far.Requests()), stderr)
	}
	_, stderr, code = runCLI(t, "attach", "--oci-layout", ref, "--spec", doc, "--base-from-annotations", "--plain-http")
	if code == 0 || len(far.Requests()) == 0 {
		t.Fatalf("--base-from-annotations did not follow the base: exit %d, %d requests, %s", code, len(far.Requests()), stderr)
	}
}
