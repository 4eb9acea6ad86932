package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/pkg/spec"
)

// runCLI runs compat-attach with args in-process and returns its stdout, stderr and exit code.
// runCLI runs compat-attach with args in this process, without the content cache (request counts
// stay exact; TestContentCache tests the cache), and returns stdout, stderr and the exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runCLICache(t, append(args, "--no-cache")...)
}

// runCLICache is runCLI with the args as given.
func runCLICache(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	code := exitCode(cmd.ExecuteContext(context.Background()), &errb)
	return out.String(), errb.String(), code
}

const testSpec = `// per-platform specs for the test image
platforms: "linux/amd64/v3": {
	version: "v1alpha1"
	compatibilities: [{
		tag:    "x86-64-v3"
		weight: 90
		rules: [{
			name: "x86-64-v3 flags"
			matchFeatures: [{feature: "cpu.cpuid", matchExpressions: {AVX2: {op: "Exists"}, BMI2: {op: "Exists"}, FMA3: {op: "Exists"}}}]
		}, {
			name: "kernel 3.2 or later"
			matchFeatures: [{feature: "kernel.version", matchExpressions: {full: {op: "Ge", value: ["3.2"], type: "version"}}}]
		}]
	}]
}
platforms: "linux/arm64": {
	version: "v1alpha1"
	compatibilities: [{
		rules: [{name: "ASIMD", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: {ASIMD: {op: "Exists"}}}]}]
	}]
}
`

// features files for a host with and without x86-64-v3, as `nfd export features` writes them:
// without compatkit.platform (--platform gives it).
const (
	featuresV3 = `{"flags": {"cpu.cpuid": {"elements": {` + cpuidV3 + `}}},
 "attributes": {"kernel.version": {"elements": {"full": "6.1.0-18-amd64", "major": "6", "minor": "1"}}}}`
	featuresV2 = `{"flags": {"cpu.cpuid": {"elements": {` + cpuidV2 + `}}},
 "attributes": {"kernel.version": {"elements": {"full": "4.18.0-553.el8", "major": "4", "minor": "18"}}}}`
	// featuresV3Kernel31 is an x86-64-v3 host whose kernel (3.1) is too old for testSpec.
	featuresV3Kernel31 = `{"flags": {"cpu.cpuid": {"elements": {` + cpuidV3 + `}}},
 "attributes": {"kernel.version": {"elements": {"full": "3.1.0", "major": "3", "minor": "1"}}}}`
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// store is one kind of place an image lives in.
type store struct {
	name  string
	flags []string // --plain-http or --oci-layout
	image string
	reg   *testregistry.Registry // nil for a layout
	img   testregistry.Image
	// checkRequests is the most registry requests `check --platform` may make: see stores.
	checkRequests int
}

func stores(t *testing.T) []store {
	var out []store
	oci := testregistry.NewOCI(t)
	out = append(out, store{name: "referrers-api", flags: []string{"--plain-http"}, image: oci.Host() + "/hello:1.0", reg: oci,
		img: testregistry.PushImage(t, oci.Host(), "hello", "1.0"),
		// GET index by tag; GET referrers of the amd64/v3 manifest and of the index, each with
		// its referrers tag at the same time while the capability is not known (a listing that
		// starts after the API answered asks the API alone, and a tag read still unsent when the
		// API answers is dropped); GET the referrer manifest and the spec blob, at the same time
		// (the listing names the spec layer).
		checkRequests: 7})
	dist := testregistry.NewDistribution(t)
	out = append(out, store{name: "tag-fallback", flags: []string{"--plain-http"}, image: dist.Host() + "/hello:1.0", reg: dist,
		img: testregistry.PushImage(t, dist.Host(), "hello", "1.0"),
		// GET index by tag; GET referrers API (404: no referrers API) and, at the same time, the
		// sha256-<hex> fallback tag, for the manifest and for the index (a listing that starts
		// after the 404 reads the tag alone); GET the referrer manifest and the spec blob.
		checkRequests: 7})
	dir := filepath.Join(t.TempDir(), "layout")
	out = append(out, store{name: "oci-layout", flags: []string{"--oci-layout"}, image: dir + ":1.0",
		img: testregistry.WriteLayout(t, dir, "1.0")})
	return out
}

func TestEndToEnd(t *testing.T) {
	tmp := t.TempDir()
	specFile := writeFile(t, tmp, "compat.cue", testSpec)
	v3 := writeFile(t, tmp, "v3.json", featuresV3)
	v2 := writeFile(t, tmp, "v2.json", featuresV2)

	for _, st := range stores(t) {
		t.Run(st.name, func(t *testing.T) {
			with := func(args ...string) []string { return append(args, st.flags...) }
			if st.reg != nil {
				st.reg.Reset()
			}

			out, stderr, code := runCLI(t, with("attach", st.image, "--spec", specFile, "--created", "2026-01-02T03:04:05Z", "-o", "json")...)
			if code != 0 {
				t.Fatalf("attach: exit %d: %s", code, stderr)
			}
			var attached []attachResult
			if err := json.Unmarshal([]byte(out), &attached); err != nil {
				t.Fatalf("attach output %q: %v", out, err)
			}
			if len(attached) != 2 || attached[0].Platform != "linux/amd64/v3" || attached[1].Platform != "linux/arm64" {
				t.Fatalf("attached %+v, want linux/amd64/v3 then linux/arm64", attached)
			}
			if !strings.HasSuffix(attached[0].Subject, st.img.Manifests[1].Digest.String()) {
				t.Fatalf("v3 spec attached to %s, want the v3 manifest %s", attached[0].Subject, st.img.Manifests[1].Digest)
			}

			out, stderr, code = runCLI(t, with("discover", st.image, "-o", "json")...)
			if code != 0 {
				t.Fatalf("discover: exit %d: %s", code, stderr)
			}
			var found []discoverEntry
			if err := json.Unmarshal([]byte(out), &found); err != nil {
				t.Fatal(err)
			}
			if len(found) != 2 || found[0].ArtifactType != spec.ArtifactType || found[0].Created != "2026-01-02T03:04:05Z" ||
				strings.Join(found[0].Tags, ",") != "x86-64-v3" {
				t.Fatalf("discover: %+v", found)
			}

			out, _, code = runCLI(t, with("discover", st.image, "--platform", "linux/amd64/v3", "-o", "json")...)
			found = nil
			if err := json.Unmarshal([]byte(out), &found); code != 0 || err != nil || len(found) != 1 || found[0].Platform != "linux/amd64/v3" {
				t.Fatalf("discover --platform: exit %d, %+v %v", code, found, err)
			}

			out, stderr, code = runCLI(t, with("fetch", st.image, "--platform", "linux/amd64/v3")...)
			if code != 0 {
				t.Fatalf("fetch: exit %d: %s", code, stderr)
			}
			fetched, err := spec.Parse([]byte(out), "fetch output")
			if err != nil {
				t.Fatal(err)
			}
			exported, _, _ := runCLI(t, "export", specFile, "--platform", "linux/amd64/v3")
			if out != exported {
				t.Fatalf("fetched spec differs from the exported one:\n%s\n---\n%s", out, exported)
			}
			if fetched.Compatibilities[0].Tag != "x86-64-v3" {
				t.Fatalf("fetched %+v", fetched)
			}

			if st.reg != nil {
				st.reg.Reset()
			}
			out, stderr, code = runCLI(t, with("check", st.image, "--platform", "linux/amd64/v3", "--features", v3)...)
			if code != 0 || !strings.Contains(out, "Verdict: COMPATIBLE (score 90)") {
				t.Fatalf("check on a v3 host: exit %d\n%s%s", code, out, stderr)
			}
			if st.reg != nil {
				reqs := st.reg.Requests()
				if len(reqs) > st.checkRequests || len(reqs) < st.checkRequests-2 {
					t.Errorf("check made %d requests, want %d to %d: %v", len(reqs), st.checkRequests-2, st.checkRequests, reqs)
				}
				assertNoImageBlob(t, reqs, st.img)
			}

			// The platform is a requirement: a v2 host cannot run the v3 build, whatever its spec.
			out, _, code = runCLI(t, with("check", st.image, "--platform", "linux/amd64/v3", "--features", v2)...)
			if code != exitIncompatible || !strings.Contains(out, "NOT COMPATIBLE: platform linux/amd64/v3 needs an x86-64-v3 CPU; this host is linux/amd64/v2 (x86-64-v2), without AVX AVX2") {
				t.Fatalf("check on a v2 host: exit %d, want 3\n%s", code, out)
			}
			// A v3 host whose kernel is too old: the spec says no.
			out, _, code = runCLI(t, with("check", st.image, "--platform", "linux/amd64/v3", "--features", writeFile(t, tmp, "v3old.json", featuresV3Kernel31))...)
			if code != exitIncompatible || !strings.Contains(out, "FAIL  kernel 3.2 or later") || !strings.Contains(out, "NOT COMPATIBLE: manifest spec: ") {
				t.Fatalf("check on a v3 host with Linux 3.1: exit %d, want 3\n%s", code, out)
			}

			// The amd64 (v1) manifest has no spec: compatible, as runtimes without compatkit behave.
			out, _, code = runCLI(t, with("check", st.image, "--platform", "linux/amd64", "--features", v2)...)
			if code != 0 || !strings.Contains(out, "No compatibility spec is attached") {
				t.Fatalf("check of the image without spec: exit %d\n%s", code, out)
			}

			if st.reg != nil {
				assertNoImageBlob(t, st.reg.Requests(), st.img)
			}
		})
	}
}

// assertNoImageBlob fails when a config or layer blob of the image was requested.
func assertNoImageBlob(t *testing.T, reqs []testregistry.Request, img testregistry.Image) {
	t.Helper()
	for _, r := range reqs {
		for _, d := range img.Blobs() {
			if strings.Contains(r.Path, "/blobs/"+d.String()) {
				t.Errorf("image blob requested: %s", r)
			}
		}
	}
}
