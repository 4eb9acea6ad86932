package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/pkg/report"
)

func profile(platform, flags, kernel string) string {
	parts := strings.Split(platform, "/")
	p := `"os": "` + parts[0] + `", "arch": "` + parts[1] + `"`
	if len(parts) == 3 {
		p += `, "variant": "` + parts[2] + `"`
	}
	return `{"flags": {"cpu.cpuid": {"elements": {` + flags + `}}},
 "attributes": {"compatkit.platform": {"elements": {` + p + `}},
  "kernel.version": {"elements": {"full": "` + kernel + `", "major": "6", "minor": "1"}}}}`
}

// reportImages pushes hello:1.0, with testSpec attached, and plain:1.0 (no spec) to a fresh
// registry, and returns it with a temporary directory for the test's files.
func reportImages(t *testing.T) (*testregistry.Registry, string) {
	t.Helper()
	reg := testregistry.NewOCI(t)
	testregistry.PushImage(t, reg.Host(), "hello", "1.0")
	testregistry.PushImage(t, reg.Host(), "plain", "1.0")
	tmp := t.TempDir()
	specFile := writeFile(t, tmp, "compat.cue", testSpec)
	if _, stderr, code := runCLI(t, "attach", "--plain-http", reg.Host()+"/hello:1.0", "--spec", specFile, "--created", "2026-01-02T03:04:05Z"); code != 0 {
		t.Fatalf("attach: %d %s", code, stderr)
	}
	return reg, tmp
}

func TestReportCommand(t *testing.T) {
	reg, tmp := reportImages(t)
	pods := `{"kind": "List", "items": [{"kind": "Pod", "metadata": {"name": "a", "namespace": "ns"}, "spec": {
	  "containers": [{"image": "HOST/hello:1.0"}, {"image": "HOST/plain:1.0"}]}}]}`
	podsFile := writeFile(t, tmp, "pods.json", strings.ReplaceAll(pods, "HOST", reg.Host()))
	nodes := filepath.Join(tmp, "nodes")
	if err := os.Mkdir(nodes, 0o755); err != nil {
		t.Fatal(err)
	}
	// new-v3 runs the v3 build; replaced (x86-64-v2, no AVX2) is served by the plain linux/amd64
	// build, which has no spec: not a failure; old-arm lacks ASIMD, which the arm64 spec needs.
	writeFile(t, nodes, "new-v3.json", profile("linux/amd64", cpuidV3, "6.1.0"))
	writeFile(t, nodes, "replaced.json", profile("linux/amd64", cpuidV2, "6.1.0"))
	writeFile(t, nodes, "graviton.json", profile("linux/arm64", `"ASIMD": {}`, "6.1.0"))
	writeFile(t, nodes, "old-arm.json", profile("linux/arm64", `"FP": {}`, "6.1.0"))
	base := writeFile(t, tmp, "old-arm.json", profile("linux/arm64", `"ASIMD": {}`, "5.15.0"))

	out, stderr, code := runCLI(t, "report", "--plain-http-registry", reg.Host(), "--images", podsFile, "--nodes", nodes, "-o", "json")
	if code != 0 {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	// Columns in file name order: graviton, new-v3, old-arm, replaced. The cells say which
	// manifest each node gets: the one select picks.
	for j, want := range []struct {
		status   report.Status
		platform string
	}{
		{report.Compatible, "linux/arm64/v8"}, {report.Compatible, "linux/amd64/v3"}, {report.Incompatible, "linux/arm64/v8"}, {report.NoSpec, "linux/amd64"},
	} {
		if c := rep.Cell(0, j); c.Status != want.status || c.Platform != want.platform {
			t.Errorf("hello on %s: %s %s, want %s %s", rep.Nodes[j].Name, c.Status, c.Platform, want.status, want.platform)
		}
	}
	out, stderr, code = runCLI(t, "report", "--plain-http-registry", reg.Host(), "--images", podsFile, "--nodes", nodes)
	if code != 0 {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	t.Logf("\n%s", out)
	for _, want := range []string{
		"2 images on 4 nodes: 2 compatible, 1 not compatible, 5 without spec, 0 errors",
		"hello:1.0 on old-arm:",
		"rule ASIMD: cpu.cpuid: ASIMD Exists (not present on the host)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if strings.Contains(stderr, "resolving images") || strings.TrimSpace(stderr) != unverifiedNote {
		t.Errorf("progress on a non-terminal stderr, or more than the note on unverified specs: %q", stderr)
	}

	out, stderr, code = runCLI(t, "report", "--plain-http", "--images", podsFile, "--nodes", nodes, "--baseline", base, "-o", "json")
	if code != exitIncompatible {
		t.Fatalf("report --baseline: exit %d, want 3: %s", code, stderr)
	}
	rep = report.Report{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Summary.String() != "1 image would break on 1 node" || len(rep.Breaks) != 1 || rep.Breaks[0].Node != "old-arm" {
		t.Errorf("baseline: %s %+v", rep.Summary, rep.Breaks)
	}
	// nodes are read in name order: graviton, new-v3, old-arm, replaced
	if c := rep.Cell(0, 1); c.Status != report.Compatible || c.Score != 90 || c.Platform != "linux/amd64/v3" {
		t.Errorf("hello on new-v3: %+v", c)
	}
	if c := rep.Cell(0, 0); c.Status != report.Compatible || c.Platform != "linux/arm64/v8" {
		t.Errorf("hello on graviton: %+v", c)
	}
	if rep.Images[1].Totals.NoSpec != 4 {
		t.Errorf("plain: %+v", rep.Images[1].Totals)
	}

	for _, f := range []string{"markdown", "html"} {
		out, stderr, code = runCLI(t, "report", "--plain-http", "--images", podsFile, "--nodes", nodes, "--baseline", base, "-o", f)
		if code != exitIncompatible || !strings.Contains(out, "1 image would break on 1 node") {
			t.Errorf("-o %s: exit %d %s\n%s", f, code, stderr, out)
		}
	}

	if _, stderr, code = runCLI(t, "report", "--images", podsFile); code != exitUsage || !strings.Contains(stderr, "--nodes") {
		t.Errorf("without --nodes: exit %d %q", code, stderr)
	}
}

func TestAffinityCommand(t *testing.T) {
	reg := testregistry.NewOCI(t)
	testregistry.PushImage(t, reg.Host(), "hello", "1.0")
	tmp := t.TempDir()
	specFile := writeFile(t, tmp, "compat.cue", testSpec)
	image := reg.Host() + "/hello:1.0"
	if _, stderr, code := runCLI(t, "attach", "--plain-http", image, "--spec", specFile); code != 0 {
		t.Fatalf("attach: %d %s", code, stderr)
	}
	out, stderr, code := runCLI(t, "affinity", "--plain-http", image)
	if code != 0 {
		t.Fatalf("affinity: exit %d: %s", code, stderr)
	}
	t.Logf("stdout:\n%s\nstderr:\n%s", out, stderr)
	for _, want := range []string{
		"# Not expressed", "BMI2 Exists", "full Ge [3.2] (version)",
		"key: feature.node.kubernetes.io/cpu-cpuid.AVX2", "key: kubernetes.io/arch",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("yaml lacks %q", want)
		}
	}
	if !strings.Contains(stderr, "not expressed: set x86-64-v3, rule x86-64-v3 flags: cpu.cpuid: BMI2 Exists") {
		t.Errorf("stderr %q", stderr)
	}
	out, _, code = runCLI(t, "affinity", "--plain-http", image, "--platform", "linux/arm64", "-o", "json")
	var got affinityOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 {
		t.Fatalf("json %d %v\n%s", code, err, out)
	}
	terms := got.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 1 || len(got.Omitted) != 0 || len(terms[0].MatchExpressions) != 3 ||
		terms[0].MatchExpressions[0].Key != "feature.node.kubernetes.io/cpu-cpuid.ASIMD" {
		t.Errorf("arm64 affinity %s", out)
	}
}
