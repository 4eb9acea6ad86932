package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	godigest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"sigs.k8s.io/yaml"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/report"
	"github.com/compatkit/compatkit/pkg/spec"
)

// Host feature files with their platform, as `compat-attach features` writes them.
func hostFile(t *testing.T, arch, flags, kernelMajor string) string {
	t.Helper()
	return writeFile(t, t.TempDir(), "host.json", `{"flags": {"cpu.cpuid": {"elements": {`+flags+`}}},
 "attributes": {"compatkit.platform": {"elements": {"os": "linux", "arch": "`+arch+`"}},
  "kernel.version": {"elements": {"full": "`+kernelMajor+`.1.0", "major": "`+kernelMajor+`", "minor": "1"}}}}`)
}

// registries returns the two kinds of registry the decision must hold on: one with the referrers
// API (in-process) and Debian's docker-registry (the referrers tag schema).
func registries(t *testing.T) map[string]*testregistry.Registry {
	return map[string]*testregistry.Registry{"referrers-api": testregistry.NewOCI(t), "tag-fallback": testregistry.NewDistribution(t)}
}

// TestPlatformRequirement: an index of linux/amd64 and linux/amd64/v3 without any spec gives the
// v3 build to an AVX2 host and the v1 build to one without; an index of the v3 build alone fits
// no host without AVX2 (select and check exit 3). On both registries.
func TestPlatformRequirement(t *testing.T) {
	v3Host := hostFile(t, "amd64", cpuidV3, "6")
	v2Host := hostFile(t, "amd64", cpuidV2, "6")
	amd64, amd64v3 := ocispec.Platform{OS: "linux", Architecture: "amd64"}, ocispec.Platform{OS: "linux", Architecture: "amd64", Variant: "v3"}
	for name, reg := range registries(t) {
		t.Run(name, func(t *testing.T) {
			both := testregistry.PushShape(t, reg.Host(), "both", "1.0", testregistry.Shape{Platforms: []ocispec.Platform{amd64, amd64v3}})
			image := reg.Host() + "/both:1.0"
			for _, tc := range []struct {
				host string
				want ocispec.Descriptor
			}{{v3Host, both.Manifests[1]}, {v2Host, both.Manifests[0]}} {
				out, stderr, code := runCLI(t, "select", "--plain-http", image, "--features", tc.host)
				if code != 0 || strings.TrimSpace(out) != reg.Host()+"/both@"+tc.want.Digest.String() {
					t.Fatalf("select: exit %d %q %s, want %s", code, out, stderr, tc.want.Platform)
				}
				out, _, code = runCLI(t, "check", "--plain-http", image, "--features", tc.host, "-o", "json")
				var rep checkReport
				if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || !strings.HasSuffix(rep.Image, tc.want.Digest.String()) || rep.Verdict != decide.NoSpec {
					t.Fatalf("check: exit %d %+v %v", code, rep, err)
				}
			}
			out, _, code := runCLI(t, "check", "--plain-http", image, "--features", v2Host, "--platform", "linux/amd64/v3")
			if code != exitIncompatible || !strings.Contains(out, "needs an x86-64-v3 CPU") {
				t.Fatalf("check --platform linux/amd64/v3 on a v2 host: exit %d\n%s", code, out)
			}

			testregistry.PushShape(t, reg.Host(), "v3only", "1.0", testregistry.Shape{Platforms: []ocispec.Platform{amd64v3}})
			only := reg.Host() + "/v3only:1.0"
			if out, stderr, code := runCLI(t, "select", "--plain-http", only, "--features", v2Host); code != exitIncompatible || out != "" || !strings.Contains(stderr, "needs an x86-64-v3 CPU") {
				t.Fatalf("select v3-only on a v2 host: exit %d %q %s", code, out, stderr)
			}
			if out, _, code := runCLI(t, "check", "--plain-http", only, "--features", v2Host); code != exitIncompatible || !strings.Contains(out, "NOT COMPATIBLE: platform linux/amd64/v3") {
				t.Fatalf("check v3-only on a v2 host: exit %d\n%s", code, out)
			}
		})
	}
}

// gridSpecs returns compat.cue documents for the grid: one with the per-platform specs (weights;
// -1: no spec), attached to the manifests, and one with the index's spec (kernel major above
// indexKernel, weight index; "" when index is -1), attached to the index.
func gridSpecs(v1, v3, index int, indexKernel string) (platforms, idx string) {
	set := func(tag string, w int, flag string) string {
		return fmt.Sprintf(`{version: "v1alpha1", compatibilities: [{tag: %q, weight: %d, rules: [{name: "%s", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: %s: {op: "Exists"}}]}]}]}`, tag, w, flag, flag)
	}
	var b strings.Builder
	if v1 >= 0 {
		fmt.Fprintf(&b, "platforms: \"linux/amd64\": %s\n", set("v1", v1, "SSE2"))
	}
	if v3 >= 0 {
		fmt.Fprintf(&b, "platforms: \"linux/amd64/v3\": %s\n", set("v3", v3, "AVX2"))
	}
	if index >= 0 {
		idx = fmt.Sprintf(`version: "v1alpha1", compatibilities: [{tag: "index", weight: %d, rules: [{name: "kernel", matchFeatures: [{feature: "kernel.version", matchExpressions: major: {op: "Gt", value: ["%s"]}}]}]}]`+"\n", index, indexKernel)
	}
	return b.String(), idx
}

// attachGrid attaches the grid's documents to image.
func attachGrid(t *testing.T, flag, image string, v1, v3, index int, indexKernel string, extra ...string) {
	t.Helper()
	platforms, idx := gridSpecs(v1, v3, index, indexKernel)
	for _, doc := range []string{platforms, idx} {
		if doc == "" {
			continue
		}
		f := writeFile(t, t.TempDir(), "compat.cue", doc)
		if _, stderr, code := runCLI(t, append([]string{"attach", flag, image, "--spec", f}, extra...)...); code != 0 {
			t.Fatalf("attach: %s", stderr)
		}
	}
}

// TestScoreGrid: check, select and report give the same manifest, verdict and score for the same
// image on the same host, over a grid of specs and hosts.
func TestScoreGrid(t *testing.T) {
	for name, reg := range registries(t) {
		t.Run(name, func(t *testing.T) { scoreGrid(t, reg) })
	}
}

func scoreGrid(t *testing.T, reg *testregistry.Registry) {
	hosts := map[string]string{
		"v4":        hostFile(t, "amd64", cpuidV3+`, "AVX512F": {}, "AVX512BW": {}, "AVX512CD": {}, "AVX512DQ": {}, "AVX512VL": {}`, "6"),
		"v3":        hostFile(t, "amd64", cpuidV3, "6"),
		"v2":        hostFile(t, "amd64", cpuidV2, "6"),
		"v3-old":    hostFile(t, "amd64", cpuidV3, "3"),
		"arm64":     hostFile(t, "arm64", `"ASIMD": {}, "FP": {}`, "6"),
		"no-sse2?!": hostFile(t, "amd64", `"X87": {}`, "6"),
	}
	type want struct{ platform, verdict string }
	configs := []struct {
		name          string
		v1, v3, index int // -1: no spec
		indexKernel   string
	}{
		{"no specs", -1, -1, -1, ""},
		{"v1 50, v3 90", 50, 90, -1, ""},
		{"v3 90 only", -1, 90, -1, ""},
		{"v1 70 beats v3 50", 70, 50, -1, ""},
		{"manifest 90, index 40", 50, 90, 40, "4"},
		{"index spec only", -1, -1, 40, "4"},
		{"index spec needs Linux 7", 50, 90, 40, "6"},
	}
	for i, c := range configs {
		repo := fmt.Sprintf("grid%d", i)
		testregistry.PushShape(t, reg.Host(), repo, "1.0", testregistry.Shape{})
		image := reg.Host() + "/" + repo + ":1.0"
		attachGrid(t, "--plain-http", image, c.v1, c.v3, c.index, c.indexKernel)
		images := writeFile(t, t.TempDir(), "images.txt", image+"\n")
		for hname, hf := range hosts {
			// check (the manifest select picks), select, report: one node, this host's features.
			out, _, ccode := runCLI(t, "check", "--plain-http", image, "--features", hf, "-o", "json")
			var chk checkReport
			_ = json.Unmarshal([]byte(out), &chk)
			out, _, scode := runCLI(t, "select", "--plain-http", image, "--features", hf, "-o", "json")
			var sel selectReport
			_ = json.Unmarshal([]byte(out), &sel)
			out, _, rcode := runCLI(t, "report", "--plain-http", "--images", images, "--nodes", hf, "-o", "json")
			var rep report.Report
			if err := json.Unmarshal([]byte(out), &rep); err != nil || rcode != 0 {
				t.Fatalf("%s on %s: report exit %d: %v", c.name, hname, rcode, err)
			}
			cell := rep.Cell(0, 0)
			where := fmt.Sprintf("%s on %s", c.name, hname)
			// Same manifest.
			if (sel.Selected != "") != chk.Compatible || (sel.Selected != "" && sel.Selected != chk.Image) {
				t.Errorf("%s: select %q, check %s (compatible %v)", where, sel.Selected, chk.Image, chk.Compatible)
			}
			if chk.Platform != cell.Platform {
				t.Errorf("%s: check platform %q, report %q", where, chk.Platform, cell.Platform)
			}
			// Same verdict and score.
			wantStatus := map[decide.Verdict]report.Status{decide.Compatible: report.Compatible, decide.NoSpec: report.NoSpec, decide.Incompatible: report.Incompatible, decide.Unreadable: report.Error}[chk.Verdict]
			if cell.Status != wantStatus || cell.Score != chk.Score {
				t.Errorf("%s: check %s %d, report %s %d", where, chk.Verdict, chk.Score, cell.Status, cell.Score)
			}
			if len(sel.Ranking) > 0 && (sel.Ranking[0].Score != chk.Score || sel.Ranking[0].Verdict != chk.Verdict) {
				t.Errorf("%s: select ranks first %s %d, check says %s %d", where, sel.Ranking[0].Verdict, sel.Ranking[0].Score, chk.Verdict, chk.Score)
			}
			// Exit codes agree.
			if (ccode == 0) != (scode == 0) {
				t.Errorf("%s: check exit %d, select exit %d", where, ccode, scode)
			}
			t.Logf("%-34s %-9s check %-12s %-15s score %2d | select %-15s | report %s %d", c.name, hname, chk.Verdict, chk.Platform, chk.Score, platformOf(sel), cell.Status, cell.Score)
		}
	}
}

func platformOf(sel selectReport) string {
	for _, r := range sel.Ranking {
		if r.Manifest == sel.Selected {
			return r.Platform
		}
	}
	return "-"
}

// TestUnreadableCandidate: a newer referrer of the v3 manifest whose spec cannot be read makes
// that manifest "unreadable": select still picks the v1 build (exit 0) and says why in its
// ranking; check of the v3 entry fails (exit 1), never "no spec, so compatible".
func TestUnreadableCandidate(t *testing.T) {
	for name, reg := range registries(t) {
		t.Run(name, func(t *testing.T) {
			img := testregistry.PushImage(t, reg.Host(), "hello", "1.0")
			image := reg.Host() + "/hello:1.0"
			attachGrid(t, "--plain-http", image, 50, 90, -1, "", "--created", "2026-01-01T00:00:00Z")
			pushRawSpec(t, reg.Host()+"/hello", img.Manifests[1], []byte("version: v1alpha1\ncompatibilities:\n- rules:\n  - name: x\n    matchFeatures: [{feature: cpu.cpuid, matchExpressions: {AVX2: {op: Frobnicate}}}]\n"), "2026-06-01T00:00:00Z")
			v3Host := hostFile(t, "amd64", cpuidV3, "6")
			out, stderr, code := runCLI(t, "select", "--plain-http", image, "--features", v3Host, "-o", "json")
			var sel selectReport
			if err := json.Unmarshal([]byte(out), &sel); code != 0 || err != nil || !strings.HasSuffix(sel.Selected, img.Manifests[0].Digest.String()) {
				t.Fatalf("select: exit %d %s %s", code, out, stderr)
			}
			var bad *rankedEntry
			for i := range sel.Ranking {
				if sel.Ranking[i].Platform == "linux/amd64/v3" {
					bad = &sel.Ranking[i]
				}
			}
			if bad == nil || bad.Verdict != decide.Unreadable || !strings.Contains(bad.Reason, `unknown operator "Frobnicate"`) {
				t.Fatalf("the v3 candidate: %+v", bad)
			}
			out, stderr, code = runCLI(t, "check", "--plain-http", image, "--features", v3Host, "--platform", "linux/amd64/v3")
			if code != exitFailure || !strings.Contains(out, "Verdict: UNKNOWN") || !strings.Contains(stderr, "Frobnicate") {
				t.Fatalf("check of the unreadable entry: exit %d\n%s%s", code, out, stderr)
			}
			// report: the v3 host gets the v1 build; the unreadable spec does not hide it.
			images := writeFile(t, t.TempDir(), "images.txt", image+"\n")
			out, _, code = runCLI(t, "report", "--plain-http", "--images", images, "--nodes", v3Host, "-o", "json")
			var rep report.Report
			if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || rep.Cell(0, 0).Status != report.Compatible || rep.Cell(0, 0).Platform != "linux/amd64" {
				t.Fatalf("report: exit %d %+v", code, rep)
			}
		})
	}
}

// pushRawSpec pushes a compatibility referrer of subject whose spec layer holds data, to a
// registry repository (plain HTTP).
func pushRawSpec(t *testing.T, repo string, subject ocispec.Descriptor, data []byte, created string) {
	t.Helper()
	tg, err := oci.Open(context.Background(), repo+":unused", oci.Options{PlainHTTP: true, HTTPClient: testregistry.Client()})
	if err != nil {
		t.Fatal(err)
	}
	pushRawSpecTo(t, tg, subject, data, created)
}

// pushRawSpecTo pushes a compatibility referrer of subject whose spec layer holds data, as anyone
// with push rights can, whatever compatkit would write, and returns the referrer's descriptor.
func pushRawSpecTo(t *testing.T, tg *oci.Target, subject ocispec.Descriptor, data []byte, created string) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	layer := ocispec.Descriptor{MediaType: spec.MediaTypeSpec, Digest: godigest.FromBytes(data), Size: int64(len(data))}
	if err := tg.Store().Push(ctx, layer, strings.NewReader(string(data))); err != nil {
		t.Fatal(err)
	}
	d, err := oras.PackManifest(ctx, tg.Store(), oras.PackManifestVersion1_1, spec.ArtifactType, oras.PackManifestOptions{
		Subject: &subject, Layers: []ocispec.Descriptor{layer}, ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: created}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDockerManifestList: Docker schema-2 manifests in a Docker manifest list are subjects like
// OCI ones: attach to a child by platform, discover, sign, verify, check and select.
func TestDockerManifestList(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "pw")
	prefix := filepath.Join(tmp, "k")
	if _, stderr, code := runCLI(t, "generate-key-pair", "--output-key-prefix", prefix); code != 0 {
		t.Fatal(stderr)
	}
	doc, _ := gridSpecs(-1, 90, -1, "")
	f := writeFile(t, tmp, "compat.cue", doc)
	v3Host := hostFile(t, "amd64", cpuidV3, "6")
	for name, reg := range registries(t) {
		t.Run(name, func(t *testing.T) {
			img := testregistry.PushShape(t, reg.Host(), "docker", "1.0", testregistry.Shape{Docker: true})
			image := reg.Host() + "/docker:1.0"
			out, stderr, code := runCLI(t, "attach", "--plain-http", image, "--spec", f, "--platform", "linux/amd64/v3", "--sign", "--key", prefix+".key", "-o", "json")
			var attached []attachResult
			if err := json.Unmarshal([]byte(out), &attached); code != 0 || err != nil || len(attached) != 1 || !strings.HasSuffix(attached[0].Subject, img.Manifests[1].Digest.String()) || attached[0].Bundle == "" {
				t.Fatalf("attach to a Docker manifest: exit %d %s%s", code, out, stderr)
			}
			out, _, code = runCLI(t, "discover", "--plain-http", image, "-o", "json")
			var found []discoverEntry
			if err := json.Unmarshal([]byte(out), &found); code != 0 || err != nil || len(found) != 1 || found[0].Platform != "linux/amd64/v3" {
				t.Fatalf("discover: exit %d %s", code, out)
			}
			if out, stderr, code := runCLI(t, "verify", "--plain-http", image, "--key", prefix+".pub"); code != 0 || !strings.Contains(out, "VERIFIED") {
				t.Fatalf("verify: exit %d %s%s", code, out, stderr)
			}
			out, _, code = runCLI(t, "select", "--plain-http", image, "--features", v3Host, "--key", prefix+".pub")
			if code != 0 || strings.TrimSpace(out) != reg.Host()+"/docker@"+img.Manifests[1].Digest.String() {
				t.Fatalf("select: exit %d %s", code, out)
			}
			if out, _, code := runCLI(t, "check", "--plain-http", image, "--features", v3Host, "--key", prefix+".pub", "--require-trusted"); code != 0 || !strings.Contains(out, "COMPATIBLE (score 90)") {
				t.Fatalf("check: exit %d\n%s", code, out)
			}
		})
	}
}

// TestNestedIndexes: a layout whose index.json lists one untagged index, as `cosign save` writes
// it, is read given its path alone; an index nested in an index is descended, in layouts and
// registries, and its spec applies to the manifests under it.
func TestNestedIndexes(t *testing.T) {
	v3Host := hostFile(t, "amd64", cpuidV3, "6")
	oldHost := hostFile(t, "amd64", cpuidV3, "3")
	for name, reg := range registries(t) {
		img := testregistry.PushShape(t, reg.Host(), "nested", "1.0", testregistry.Shape{Nested: true})
		image := reg.Host() + "/nested:1.0"
		attachGrid(t, "--plain-http", image, 50, 90, -1, "")
		// The nested index's own spec (the document's top-level spec goes on the root index; this
		// one is attached by digest).
		_, idx := gridSpecs(-1, -1, 0, "4")
		f := writeFile(t, t.TempDir(), "compat.cue", idx)
		if _, stderr, code := runCLI(t, "attach", "--plain-http", reg.Host()+"/nested@"+img.Nested.Digest.String(), "--spec", f); code != 0 {
			t.Fatalf("%s: attach to the nested index: %s", name, stderr)
		}
		out, stderr, code := runCLI(t, "select", "--plain-http", image, "--features", v3Host)
		if code != 0 || strings.TrimSpace(out) != reg.Host()+"/nested@"+img.Manifests[1].Digest.String() {
			t.Fatalf("%s: select: exit %d %q %s", name, code, out, stderr)
		}
		if out, _, code := runCLI(t, "check", "--plain-http", image, "--features", oldHost); code != exitIncompatible || !strings.Contains(out, "index spec") {
			t.Fatalf("%s: check on Linux 3: exit %d\n%s", name, code, out)
		}
		out, _, code = runCLI(t, "discover", "--plain-http", image, "-o", "json")
		var found []discoverEntry
		if err := json.Unmarshal([]byte(out), &found); code != 0 || err != nil || len(found) != 3 {
			t.Fatalf("%s: discover lists %d specs, want 3 (v1, v3, the nested index): %s", name, len(found), out)
		}
	}
	for _, sh := range []testregistry.Shape{{}, {Nested: true}} {
		dir := filepath.Join(t.TempDir(), "saved")
		img := testregistry.WriteShapeLayout(t, dir, "1.0", sh)
		attachGrid(t, "--oci-layout", dir+":1.0", 50, 90, 0, "4")
		untag(t, dir)
		out, stderr, code := runCLI(t, "select", "--oci-layout", dir, "--features", v3Host)
		if code != 0 || strings.TrimSpace(out) != dir+"@"+img.Manifests[1].Digest.String() {
			t.Fatalf("nested %v: select: exit %d %q %s", sh.Nested, code, out, stderr)
		}
		if out, _, code := runCLI(t, "check", "--oci-layout", dir, "--features", oldHost); code != exitIncompatible || !strings.Contains(out, "index spec") {
			t.Fatalf("nested %v: check on Linux 3: exit %d\n%s", sh.Nested, code, out)
		}
	}
}

// untag removes the tag from a layout's index.json and marks its image index as `cosign save`
// does; the other entries (manifests, referrers) stay.
func untag(t *testing.T, dir string) {
	t.Helper()
	p := filepath.Join(dir, "index.json")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		t.Fatal(err)
	}
	for i, d := range idx.Manifests {
		if d.Annotations[ocispec.AnnotationRefName] != "" {
			idx.Manifests[i].Annotations = map[string]string{"kind": "dev.cosignproject.cosign/imageIndex"}
		}
	}
	out, _ := json.Marshal(idx)
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHostWithoutPlatform: features without a platform (`nfd export features`) are an error for
// an index, which says how to give it; --platform gives it.
func TestHostWithoutPlatform(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "oci")
	testregistry.WriteLayout(t, dir, "1.0")
	nfd := writeFile(t, t.TempDir(), "nfd.json", `{"flags": {"cpu.cpuid": {"elements": {`+cpuidV3+`}}}, "attributes": {"kernel.version": {"elements": {"major": "6"}}}}`)
	for _, cmd := range []string{"check", "select"} {
		_, stderr, code := runCLI(t, cmd, "--oci-layout", dir+":1.0", "--features", nfd)
		if code != exitFailure || !strings.Contains(stderr, "the host's platform is unknown") || !strings.Contains(stderr, "pass --platform os/arch") {
			t.Fatalf("%s without a platform: exit %d %s", cmd, code, stderr)
		}
		if out, stderr, code := runCLI(t, cmd, "--oci-layout", dir+":1.0", "--features", nfd, "--platform", "linux/amd64"); code != 0 {
			t.Fatalf("%s --platform linux/amd64: exit %d %s%s", cmd, code, out, stderr)
		}
	}
	if _, stderr, code := runCLI(t, "select", "--oci-layout", dir+":1.0", "--features", nfd, "--platform", "unknown/unknown"); code != exitUsage || !strings.Contains(stderr, "attestation") {
		t.Fatalf("--platform unknown/unknown: exit %d %s", code, stderr)
	}
}

// TestControlSequencesEscaped: text that comes from a registry cannot drive the terminal nor
// forge output lines, and -o json and -o yaml stay valid whatever it holds.
func TestControlSequencesEscaped(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "oci")
	img := testregistry.WriteLayout(t, dir, "1.0")
	tg, err := oci.Open(context.Background(), dir+":1.0", oci.Options{OCILayout: true})
	if err != nil {
		t.Fatal(err)
	}
	// JSON escapes (a YAML spec file cannot hold these characters; a pushed layer can).
	pushRawSpecTo(t, tg, img.Manifests[0], []byte(`{"version": "v1alpha1", "compatibilities": [{"description": "\u001b[2J\u001b]0;pwned\u0007 hidden \u202e txet \u007f \u009b",
  "tag": "t\u001b[31m", "rules": [{"name": "rule\nVerdict: COMPATIBLE (score 100)", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"SSE2": {"op": "Exists"}}}]}]}]}`), "2026-01-01T00:00:00Z")
	host := hostFile(t, "amd64", cpuidV2, "6")
	out, stderr, code := runCLI(t, "check", "--oci-layout", dir+":1.0", "--platform", "linux/amd64/v1", "--features", host)
	if code != 0 || strings.ContainsAny(out+stderr, "\x1b\x07\u202e\x7f\u009b") || !strings.Contains(out, `\x1b[2J`) || !strings.Contains(out, `\u202e`) {
		t.Fatalf("check: exit %d, control characters reach the terminal:\n%q", code, out)
	}
	if strings.Count(out, "\nVerdict:") != 1 || !strings.Contains(out, `rule\nVerdict: COMPATIBLE (score 100)`) {
		t.Fatalf("a rule name forged an output line:\n%s", out)
	}
	for _, format := range []string{"json", "yaml"} {
		out, stderr, code = runCLI(t, "check", "--oci-layout", dir+":1.0", "--platform", "linux/amd64/v1", "--features", host, "-o", format)
		var v any
		var err error
		if format == "json" {
			err = json.Unmarshal([]byte(out), &v)
		} else {
			err = yaml.Unmarshal([]byte(out), &v)
		}
		if code != 0 || err != nil || strings.ContainsAny(out, "\x1b\x7f\u009b\u202e") {
			t.Fatalf("check -o %s: exit %d, %v\n%q%s", format, code, err, out, stderr)
		}
	}
	if out, _, code := runCLI(t, "fetch", "--oci-layout", dir+":1.0", "--platform", "linux/amd64/v1"); code != 0 || strings.ContainsAny(out, "\x1b\x7f\u009b") {
		t.Fatalf("fetch: exit %d %q", code, out)
	}

	// A registry's error body that tries to print a verdict.
	reg := testregistry.NewOCI(t)
	testregistry.PushImage(t, reg.Host(), "hello", "1.0")
	reg.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/referrers/") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden) // not retried, unlike a 500
			w.Write([]byte(`{"errors": [{"code": "DENIED", "message": "oops\nVerdict: COMPATIBLE (score 100)\u001b[2J"}]}`))
			return true
		}
		return false
	})
	out, stderr, code = runCLI(t, "check", "--plain-http", reg.Host()+"/hello:1.0", "--features", host, "--platform", "linux/amd64")
	if code != exitFailure || strings.Contains(out+stderr, "\nVerdict: COMPATIBLE") || strings.ContainsAny(out+stderr, "\x1b") {
		t.Fatalf("a registry error body: exit %d\n%s\n%s", code, out, stderr)
	}
}

// TestContentCache: a repeated check of an unchanged image costs the index and the referrers
// listings only, in one round trip: referrer manifests and spec blobs come from the content cache,
// checked against their digests, and the listings start with the resolution (the tag's last
// digest is a prediction, never an answer); --no-cache reads everything again; a corrupt cache
// file is fetched again; a tag that moved is read as it is now. On both registries, each answer
// 25 ms away.
func TestContentCache(t *testing.T) {
	host := hostFile(t, "amd64", cpuidV3, "6")
	for name, reg := range registries(t) {
		t.Run(name, func(t *testing.T) {
			t.Setenv("XDG_CACHE_HOME", t.TempDir())
			img := testregistry.PushImage(t, reg.Host(), "hello", "1.0")
			image := reg.Host() + "/hello:1.0"
			attachGrid(t, "--plain-http", image, 50, 90, -1, "")
			reg.SetDelay(25 * time.Millisecond)
			defer reg.SetDelay(0)
			check := func(ref string, args ...string) (requests, rounds int, out string) {
				t.Helper()
				reg.Reset()
				out, stderr, code := runCLICache(t, append([]string{"check", "--plain-http", ref, "--features", host}, args...)...)
				if code != 0 {
					t.Fatalf("check: exit %d %s", code, stderr)
				}
				reqs := reg.Requests()
				return len(reqs), testregistry.Rounds(reqs), out
			}
			// Cold: GET index; the referrers of v1, v3 and the index (with the referrers tag while
			// the capability is unknown); the referrer manifests and spec blobs of v1 and v3, each
			// pair at once: 3 round trips.
			coldN, coldR, _ := check(image)
			warmN, warmR, _ := check(image)
			byDigest, byDigestR, _ := check(reg.Host() + "/hello@" + img.Index.Digest.String())
			bypassN, bypassR, _ := check(image, "--no-cache")
			t.Logf("check: cold %d requests in %d round trips, warm %d in %d, by digest %d in %d, --no-cache %d in %d",
				coldN, coldR, warmN, warmR, byDigest, byDigestR, bypassN, bypassR)
			if coldR != 3 || warmR != 1 || byDigestR != 1 || bypassR != 3 {
				t.Errorf("round trips: cold %d, warm %d, by digest %d, --no-cache %d; want 3, 1, 1, 3", coldR, warmR, byDigestR, bypassR)
			}
			// Warm: the index and the three listings, nothing else (tags and listings are never
			// cached); by digest: the listings alone. Without the referrers API, one listing also
			// asks the API (it is probed once per process).
			wantWarm := 4
			if name == "tag-fallback" {
				wantWarm++
			}
			if warmN != wantWarm || byDigest != wantWarm-1 {
				t.Errorf("requests: warm %d, by digest %d; want %d, %d", warmN, byDigest, wantWarm, wantWarm-1)
			}

			// Damage every cached file: each is found corrupt (its digest) and fetched again.
			dir := filepath.Join(os.Getenv("XDG_CACHE_HOME"), "compatkit", "content")
			filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() && !strings.Contains(p, "hints") {
					os.WriteFile(p, []byte("tampered"), 0o644)
				}
				return nil
			})
			if n, _, _ := check(image); n < 8 {
				t.Fatalf("after the cache was tampered with: %d requests, want 8 or more", n)
			}

			// The tag moves to an index of the v3 build alone, with no spec: the prediction is
			// wrong, and the answer is the new index's (no spec), not the cached one's.
			reg.SetDelay(0)
			testregistry.PushShape(t, reg.Host(), "hello", "1.0", testregistry.Shape{Platforms: testregistry.Platforms[1:2], Salt: "moved"})
			reg.SetDelay(25 * time.Millisecond)
			if _, _, out := check(image); !strings.Contains(out, "no compatibility spec") && !strings.Contains(out, "No compatibility spec") {
				t.Errorf("after the tag moved, check still reads the old index:\n%s", out)
			}
		})
	}
}
