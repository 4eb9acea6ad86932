package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/report"
	"github.com/compatkit/compatkit/pkg/spec"
)

func open(t *testing.T, ref string) *oci.Target {
	t.Helper()
	tg, err := oci.Open(context.Background(), ref, ociOptions())
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func ociOptions() oci.Options {
	return oci.Options{PlainHTTP: true, HTTPClient: testregistry.Client(), Credentials: credentials.NewMemoryStore()}
}

func rule(name, feature, elem string, op spec.Op, values ...string) spec.Rule {
	return spec.Rule{Name: name, MatchFeatures: []spec.FeatureMatcherTerm{{Feature: feature,
		MatchExpressions: map[string]*spec.MatchExpression{elem: {Op: op, Value: values}}}}}
}

func oneSet(weight int, rules ...spec.Rule) *spec.Spec {
	return &spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{{Tag: "main", Weight: weight, Rules: rules}}}
}

// pushRaw pushes blob content and returns its descriptor.
func pushRaw(t *testing.T, tg *oci.Target, mediaType string, data []byte, annotations map[string]string) ocispec.Descriptor {
	t.Helper()
	d := content.NewDescriptorFromBytes(mediaType, data)
	d.Annotations = annotations
	if err := tg.Store().Push(context.Background(), d, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	return d
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The pods of a small cluster, as kubectl get pods -A -o json prints them (trimmed).
const podsJSON = `{"apiVersion": "v1", "kind": "List", "items": [
 {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "namespace": "shop"},
  "spec": {"initContainers": [{"name": "init", "image": "REG/nospec:1.0"}], "containers": [{"name": "app", "image": "REG/hello:1.0"}]}},
 {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-2", "namespace": "shop"},
  "spec": {"containers": [{"name": "app", "image": "REG/hello:1.0"}, {"name": "side", "image": "REG/missing:1.0"}]}},
 {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "batch", "namespace": "jobs"},
  "spec": {"containers": [{"name": "job", "image": "REG/bad:1.0"}]}}
]}`

// The target nodes, as kubectl get nodes -o json prints them: NFD labels and kubernetes.io/arch.
const nodesJSON = `{"apiVersion": "v1", "kind": "List", "items": [
 {"kind": "Node", "metadata": {"name": "amd-new", "labels": {"kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux",
   "feature.node.kubernetes.io/cpu-cpuid.AVX2": "true", "feature.node.kubernetes.io/kernel-version.major": "6"}}},
 {"kind": "Node", "metadata": {"name": "amd-old", "labels": {"kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux",
   "feature.node.kubernetes.io/cpu-cpuid.AVX": "true", "feature.node.kubernetes.io/kernel-version.major": "6"}}},
 {"kind": "Node", "metadata": {"name": "arm", "labels": {"kubernetes.io/arch": "arm64", "kubernetes.io/os": "linux",
   "feature.node.kubernetes.io/cpu-cpuid.ASIMD": "true", "feature.node.kubernetes.io/kernel-version.major": "5"}}},
 {"kind": "Node", "metadata": {"name": "arm-2", "labels": {"kubernetes.io/arch": "arm64", "kubernetes.io/os": "linux",
   "feature.node.kubernetes.io/cpu-cpuid.ASIMD": "true", "feature.node.kubernetes.io/kernel-version.major": "5"}}},
 {"kind": "Node", "metadata": {"name": "mainframe", "labels": {"kubernetes.io/arch": "s390x", "kubernetes.io/os": "linux",
   "feature.node.kubernetes.io/kernel-version.major": "6"}}}
]}`

// Today, amd-old still had AVX2 (it is being replaced by a machine without it).
const baselineJSON = `{"apiVersion": "v1", "kind": "List", "items": [
 {"kind": "Node", "metadata": {"name": "amd-old", "labels": {"kubernetes.io/arch": "amd64",
   "feature.node.kubernetes.io/cpu-cpuid.AVX2": "true", "feature.node.kubernetes.io/kernel-version.major": "5"}}}
]}`

type cluster struct {
	reg    *testregistry.Registry
	img    testregistry.Image
	images []report.Image
	nodes  []report.Node
	base   []report.Node
}

func setup(t *testing.T) *cluster {
	ctx := context.Background()
	reg := testregistry.NewOCI(t)
	c := &cluster{reg: reg}
	c.img = testregistry.PushImage(t, reg.Host(), "hello", "1.0")
	testregistry.PushImage(t, reg.Host(), "nospec", "1.0")
	testregistry.PushImage(t, reg.Host(), "bad", "1.0")
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	hello := open(t, reg.Host()+"/hello:1.0")
	// linux/amd64 (index entry 0): AVX2; linux/arm64 (entry 2): ASIMD; the index: kernel >= 5.
	for _, a := range []struct {
		subject ocispec.Descriptor
		s       *spec.Spec
	}{
		{c.img.Manifests[0], oneSet(80, rule("AVX2", "cpu.cpuid", "AVX2", spec.OpExists))},
		{c.img.Manifests[2], oneSet(60, rule("ASIMD", "cpu.cpuid", "ASIMD", spec.OpExists))},
		{c.img.Index, oneSet(50, rule("kernel 5+", "kernel.version", "major", spec.OpGe, "5"))},
	} {
		if _, err := hello.PushSpec(ctx, a.subject, a.s, nil, created); err != nil {
			t.Fatal(err)
		}
	}
	// bad: a compatibility referrer whose spec does not parse.
	bad := open(t, reg.Host()+"/bad:1.0")
	badRoot, err := bad.Resolve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	layer := pushRaw(t, bad, spec.MediaTypeSpec, []byte("version: v9\ncompatibilities: []\n"), nil)
	if _, err := oras.PackManifest(ctx, bad.Store(), oras.PackManifestVersion1_1, spec.ArtifactType, oras.PackManifestOptions{
		Subject: &badRoot, Layers: []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: created.Format(time.RFC3339)}}); err != nil {
		t.Fatal(err)
	}

	if c.images, err = report.ParseImages([]byte(strings.ReplaceAll(podsJSON, "REG", reg.Host())), "pods.json"); err != nil {
		t.Fatal(err)
	}
	if c.nodes, err = report.ParseNodes([]byte(nodesJSON), "nodes.json"); err != nil {
		t.Fatal(err)
	}
	if c.base, err = report.ParseNodes([]byte(baselineJSON), "today.json"); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReport(t *testing.T) {
	c := setup(t)
	host := c.reg.Host()
	if len(c.images) != 4 {
		t.Fatalf("images %+v", c.images)
	}
	if got := c.images[1]; got.Ref != host+"/hello:1.0" || strings.Join(got.Pods, ",") != "shop/web-1,shop/web-2" {
		t.Errorf("hello is used by %v", got.Pods)
	}
	// The x86-64 level comes from the labelled flags (AVX2 alone, without AVX: v1; AVX: v2 with
	// the flags NFD does not label inferred).
	if c.nodes[0].Platform != "linux/amd64/v1" || c.nodes[1].Platform != "linux/amd64/v2" || c.nodes[2].Platform != "linux/arm64/v8" || c.nodes[4].Platform != "linux/s390x" {
		t.Errorf("platforms from kubernetes.io labels: %+v", c.nodes)
	}

	c.reg.Reset()
	rep, err := report.Build(context.Background(), &report.OCISource{Options: ociOptions()}, c.images, c.nodes, report.Options{Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Reading specs pulls no layer or config of the images.
	for _, r := range c.reg.Requests() {
		for _, b := range c.img.Blobs() {
			if strings.Contains(r.Path, b.Encoded()) {
				t.Errorf("fetched an image blob: %s", r)
			}
		}
	}
	cell := rep.Cell
	// images: nospec, hello, missing, bad (pod order, init containers first)
	// The nospec and bad images are indexes without an s390x manifest: they cannot run on the
	// mainframe whatever their specs say.
	for j := range c.nodes[:4] {
		if s := cell(0, j).Status; s != report.NoSpec {
			t.Errorf("nospec on %s: %s", c.nodes[j].Name, s)
		}
		if s := cell(2, j).Status; s != report.Error {
			t.Errorf("missing on %s: %s", c.nodes[j].Name, s)
		}
		if s := cell(3, j); s.Status != report.Error || !strings.Contains(s.Error, "index spec") {
			t.Errorf("bad on %s: %+v", c.nodes[j].Name, s)
		}
	}
	if cell(0, 4).Status != report.Incompatible || cell(2, 4).Status != report.Error || cell(3, 4).Status != report.Incompatible {
		t.Errorf("on the mainframe: %+v %+v %+v", cell(0, 4), cell(2, 4), cell(3, 4))
	}
	want := []struct {
		status report.Status
		score  int
		detail string
	}{
		{report.Compatible, 80, ""}, // the manifest's own score; the index spec (50) must hold too
		{report.Incompatible, 0, "rule AVX2: cpu.cpuid: AVX2 Exists (not present on the host)"},
		{report.Compatible, 60, ""},
		{report.Compatible, 60, ""},
		{report.Incompatible, 0, "the index has no manifest for linux/s390x"},
	}
	for j, w := range want {
		got := cell(1, j)
		if got.Status != w.status || got.Score != w.score || (w.detail != "" && !strings.Contains(got.Detail(), w.detail)) {
			t.Errorf("hello on %s: %+v %s, want %v %d %q", c.nodes[j].Name, got, got.Detail(), w.status, w.score, w.detail)
		}
	}
	if cell(1, 0).Platform != "linux/amd64" || cell(1, 2).Platform != "linux/arm64/v8" {
		t.Errorf("manifest platforms %q %q", cell(1, 0).Platform, cell(1, 2).Platform)
	}
	// Identical nodes share their cells.
	if cell(1, 2) != cell(1, 3) {
		t.Error("arm and arm-2 have identical features but different cells")
	}
	if got := rep.Images[1].Totals; got != (report.Totals{Compatible: 3, Incompatible: 2}) {
		t.Errorf("hello totals %+v", got)
	}
	if got := rep.Nodes[0].Totals; got != (report.Totals{Compatible: 1, NoSpec: 1, Error: 2}) {
		t.Errorf("amd-new totals %+v", got)
	}
	if s := rep.Summary; s.Totals != (report.Totals{Compatible: 3, Incompatible: 4, NoSpec: 4, Error: 9}) || s.DistinctFeatureSets != 4 || s.DistinctSpecs != 3 {
		t.Errorf("summary %+v", s)
	}

	for _, f := range report.Formats {
		var b bytes.Buffer
		if err := report.Write(&b, rep, f); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, s := range []string{"hello:1.0", "amd-old", "AVX2 Exists"} {
			if !strings.Contains(out, s) {
				t.Errorf("%s output lacks %q:\n%s", f, s, out)
			}
		}
		if f == "json" {
			var back report.Report
			if err := json.Unmarshal(b.Bytes(), &back); err != nil {
				t.Fatal(err)
			}
			if back.Cell(1, 1).Failure.Rule != "AVX2" || back.Images[1].Totals != rep.Images[1].Totals {
				t.Errorf("JSON round trip: %+v", back.Cell(1, 1))
			}
		}
		if f == "table" {
			t.Logf("table:\n%s", out)
		}
	}
}

func TestReportHTMLEscapes(t *testing.T) {
	rep, err := report.Build(context.Background(), &report.OCISource{Options: oci.Options{OCILayout: true}},
		[]report.Image{{Ref: "<script>alert(1)</script>"}}, []report.Node{{Name: "n&<b>", Platform: "linux/amd64"}}, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := report.WriteHTML(&b, rep); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<script>alert") || strings.Contains(b.String(), "<b>") || strings.Contains(b.String(), "http") {
		t.Errorf("not escaped or not self-contained:\n%s", b.String())
	}
}

func TestReportBaseline(t *testing.T) {
	c := setup(t)
	rep, err := report.Build(context.Background(), &report.OCISource{Options: ociOptions()}, c.images, c.nodes, report.Options{Baseline: c.base})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Summary
	// nospec (no spec: it ran on amd-old) breaks on mainframe, which has no manifest of its
	// platform; hello breaks on amd-old (its namesake ran it) and on mainframe (no namesake:
	// hello runs on the baseline's amd-old); missing and bad ran nowhere and break nothing.
	if !s.Baseline || s.BrokenImages != 2 || s.BrokenNodes != 2 || len(rep.Breaks) != 3 {
		t.Fatalf("summary %+v, breaks %+v", s, rep.Breaks)
	}
	if s.String() != "2 images would break on 2 nodes" {
		t.Errorf("summary %q", s)
	}
	b := rep.Breaks[1]
	if b.Node != "amd-old" || b.Baseline != "amd-old" || b.Was.Status != report.Compatible || b.Now.Failure.Rule != "AVX2" || b.Was.Score != 80 {
		t.Errorf("break %+v", b)
	}
	if b := rep.Breaks[0]; b.Node != "mainframe" || b.Baseline != "amd-old" || b.Was.Status != report.NoSpec || !strings.HasSuffix(b.Image, "/nospec:1.0") {
		t.Errorf("break %+v", b)
	}
	// Broken images come first.
	if !strings.HasSuffix(rep.Images[1].Ref, "/hello:1.0") || rep.Breaks[1].ImageIndex != 1 || rep.Images[1].Totals.Breaks != 2 {
		t.Errorf("order %v %+v", rep.Images[1].Ref, rep.Breaks[1])
	}
	var out bytes.Buffer
	if err := report.WriteTable(&out, rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out.String())
	if !strings.HasPrefix(out.String(), "Summary: 2 images would break on 2 nodes\n\nWould break") {
		t.Errorf("table:\n%s", out.String())
	}
}

// TestSBOMs builds an image whose index holds a BuildKit attestation manifest (SPDX predicate) for
// its amd64 manifest, and attaches an SPDX referrer to the arm64 manifest and a CycloneDX one to
// the index.
func TestSBOMs(t *testing.T) {
	ctx := context.Background()
	reg := testregistry.NewOCI(t)
	img := testregistry.PushImage(t, reg.Host(), "app", "build")
	tg := open(t, reg.Host()+"/app:1.0")

	doc := pushRaw(t, tg, "application/vnd.in-toto+json", []byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document"}`),
		map[string]string{report.AnnotationPredicateType: "https://spdx.dev/Document"})
	prov := pushRaw(t, tg, "application/vnd.in-toto+json", []byte(`{"predicateType":"https://slsa.dev/provenance/v0.2"}`),
		map[string]string{report.AnnotationPredicateType: "https://slsa.dev/provenance/v0.2"})
	cfg := pushRaw(t, tg, ocispec.MediaTypeImageConfig, []byte(`{"architecture":"unknown","os":"unknown","rootfs":{"type":"layers","diff_ids":[]}}`), nil)
	att := pushRaw(t, tg, ocispec.MediaTypeImageManifest, mustJSON(t, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{doc, prov}}), nil)
	att.Platform = &ocispec.Platform{OS: "unknown", Architecture: "unknown"}
	att.Annotations = map[string]string{report.AnnotationReferenceType: report.AttestationManifest,
		report.AnnotationReferenceDigest: img.Manifests[0].Digest.String()}
	idx := mustJSON(t, ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: append(append([]ocispec.Descriptor(nil), img.Manifests...), att)})
	idxDesc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageIndex, idx)
	if err := tg.Store().Push(ctx, idxDesc, bytes.NewReader(idx)); err != nil {
		t.Fatal(err)
	}
	if err := tg.Store().Tag(ctx, idxDesc, "1.0"); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		subject      ocispec.Descriptor
		artifactType string
	}{{img.Manifests[2], "application/spdx+json"}, {idxDesc, "application/vnd.cyclonedx+json"}} {
		l := pushRaw(t, tg, r.artifactType, []byte(`{"sbom":true}`), nil)
		s := r.subject
		if _, err := oras.PackManifest(ctx, tg.Store(), oras.PackManifestVersion1_1, r.artifactType, oras.PackManifestOptions{Subject: &s, Layers: []ocispec.Descriptor{l}}); err != nil {
			t.Fatal(err)
		}
	}

	nodes := []report.Node{{Name: "x86", Platform: "linux/amd64", Features: nil}, {Name: "arm", Platform: "linux/arm64", Features: nil}}
	rep, err := report.Build(ctx, &report.OCISource{Options: ociOptions()}, []report.Image{{Ref: reg.Host() + "/app:1.0"}}, nodes, report.Options{SBOMs: true})
	if err != nil {
		t.Fatal(err)
	}
	row := rep.Images[0]
	if row.SBOMError != "" {
		t.Fatal(row.SBOMError)
	}
	got := map[string]report.SBOM{}
	for _, s := range row.SBOMs {
		got[s.Format+"/"+s.Source] = s
	}
	if s, ok := got["spdx/attestation"]; !ok || s.Subject != img.Manifests[0].Digest.String() || s.Layer != doc.Digest.String() || s.Type != "https://spdx.dev/Document" {
		t.Errorf("attestation: %+v", row.SBOMs)
	}
	if s, ok := got["spdx/referrer"]; !ok || s.Subject != img.Manifests[2].Digest.String() || s.Platform != "linux/arm64/v8" {
		t.Errorf("spdx referrer: %+v", row.SBOMs)
	}
	if s, ok := got["cyclonedx/referrer"]; !ok || s.Subject != idxDesc.Digest.String() {
		t.Errorf("cyclonedx referrer: %+v", row.SBOMs)
	}
	if len(row.SBOMs) != 3 {
		t.Errorf("want 3 SBOMs (not the provenance), got %+v", row.SBOMs)
	}
	var b bytes.Buffer
	report.WriteTable(&b, rep)
	t.Logf("\n%s", b.String())
}
