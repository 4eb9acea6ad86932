package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatkit/compatkit/internal/testregistry"
)

// check --spec FILE gives, on every shipped profile and platform, the verdict and score check
// gives once FILE is attached to an image of its shape: no image is needed to try a spec.
func TestCheckSpecAgreesWithAttached(t *testing.T) {
	// The example, and a document with a top-level spec beside platforms (attach gives it to the
	// entries the platforms do not name: here linux/arm64).
	mixed := writeFile(t, t.TempDir(), "mixed.cue", `required: [{name: "kernel >= 5", matchFeatures: [{feature: "kernel.version", matchExpressions: major: {op: "Ge", value: ["5"]}}]}]
platforms: {
	"linux/amd64/v3": {version: "v1alpha1", compatibilities: [{weight: 80, rules: [{name: "avx512", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: AVX512F: {op: "Exists"}}]}]}]}
	"linux/amd64": {version: "v1alpha1", compatibilities: [{weight: 40, rules: [{name: "sse2", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: SSE2: {op: "Exists"}}]}]}]}
}
`)
	for _, doc := range []string{"../../examples/hello/compat.cue", mixed} {
		checkSpecAgrees(t, doc)
	}
}

func checkSpecAgrees(t *testing.T, doc string) {
	dir := t.TempDir() + "/layout"
	testregistry.WriteLayout(t, dir, "1.0")
	if _, stderr, code := runCLI(t, "attach", "--oci-layout", dir+":1.0", "--spec", doc); code != 0 {
		t.Fatalf("attach: %s", stderr)
	}
	type verdict struct {
		Platform   string `json:"platform"`
		Verdict    string `json:"verdict"`
		Compatible bool   `json:"compatible"`
		Score      int    `json:"score"`
	}
	profiles, _ := filepath.Glob("../../examples/profiles/*.json")
	if len(profiles) < 5 {
		t.Fatalf("%d profiles", len(profiles))
	}
	for _, p := range profiles {
		for _, platform := range []string{"", "linux/amd64/v3", "linux/amd64", "linux/arm64"} {
			extra := []string{"--features", p, "-o", "json"}
			if platform != "" {
				extra = append(extra, "--platform", platform)
			}
			a, ea, ca := runCLI(t, append([]string{"check", "--oci-layout", dir + ":1.0"}, extra...)...)
			b, eb, cb := runCLI(t, append([]string{"check", "--spec", doc}, extra...)...)
			var va, vb verdict
			if err := json.Unmarshal([]byte(a), &va); err != nil {
				t.Fatalf("%s %s: attached: %v %s", filepath.Base(p), platform, err, ea)
			}
			if err := json.Unmarshal([]byte(b), &vb); err != nil {
				t.Fatalf("%s %s: --spec: %v %s", filepath.Base(p), platform, err, eb)
			}
			if va != vb || ca != cb {
				t.Errorf("%s %s: attached %+v exit %d, --spec %+v exit %d", filepath.Base(p), platform, va, ca, vb, cb)
			}
		}
	}
}

// check --spec in words, for documents with and without platforms, and its usage errors.
func TestCheckSpec(t *testing.T) {
	dir := t.TempDir() + "/layout"
	testregistry.WriteLayout(t, dir, "1.0")
	const doc = "../../examples/hello/compat.cue"
	profiles, _ := filepath.Glob("../../examples/profiles/*.json")
	// The v3 build on a host without AVX2: NOT COMPATIBLE, exit 3, in words.
	out, _, code := runCLI(t, "check", "--spec", doc, "--features", "../../examples/profiles/x86-64-v2-no-avx2.json", "--platform", "linux/amd64/v3")
	if code != exitIncompatible || !strings.Contains(out, "Document: ../../examples/hello/compat.cue") || !strings.Contains(out, "NOT COMPATIBLE") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	// A document without platforms is one manifest: any host's platform.
	single := writeFile(t, t.TempDir(), "single.cue", `version: "v1alpha1"
compatibilities: [{tag: "new-kernel", weight: 10, rules: [{name: "kernel 6", matchFeatures: [{feature: "kernel.version", matchExpressions: major: {op: "Gt", value: ["5"]}}]}]}]
`)
	out, _, code = runCLI(t, "check", "--spec", single, "--features", "../../examples/profiles/aws-c6g-graviton2.json")
	if !strings.Contains(out, "The document's top-level spec") || (code != 0 && code != exitIncompatible) {
		t.Errorf("single document: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{
		{"check"},
		{"check", "--oci-layout", dir + ":1.0", "--spec", doc},
		{"check", "--spec", doc, "--key", "cosign.pub"},
	} {
		if _, stderr, code := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage): %s", args, code, stderr)
		}
	}
	if _, stderr, code := runCLI(t, "check", "--spec", writeFile(t, t.TempDir(), "bad.cue", "compatibilities: [{weigth: 1}]\n"), "--features", profiles[0]); code != 1 || !strings.Contains(stderr, "bad.cue:1:") {
		t.Errorf("bad document: exit %d %s", code, stderr)
	}
}

// report --spec FILE --nodes DIR: the document's verdict on every node, as check --spec gives it.
func TestReportSpec(t *testing.T) {
	const doc = "../../examples/hello/compat.cue"
	out, stderr, code := runCLI(t, "report", "--spec", doc, "--nodes", "../../examples/profiles/", "--fail-on", "incompatible", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out)
	}
	type outcome struct {
		Status   string `json:"status"`
		Score    int    `json:"score"`
		Platform string `json:"platform"`
	}
	var rep struct {
		Nodes []struct {
			Name string `json:"name"`
		} `json:"nodes"`
		Outcomes []outcome `json:"outcomes"`
		Cells    [][]int   `json:"cells"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rep.Cells) != 1 || len(rep.Cells[0]) != len(rep.Nodes) || len(rep.Nodes) < 5 {
		t.Fatalf("cells %+v nodes %+v", rep.Cells, rep.Nodes)
	}
	for i, n := range rep.Nodes {
		var c struct {
			Verdict  string `json:"verdict"`
			Score    int    `json:"score"`
			Platform string `json:"platform"`
		}
		b, _, _ := runCLI(t, "check", "--spec", doc, "--features", "../../examples/profiles/"+n.Name+".json", "-o", "json")
		if err := json.Unmarshal([]byte(b), &c); err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		got := rep.Outcomes[rep.Cells[0][i]]
		if c.Verdict != got.Status || c.Score != got.Score || c.Platform != got.Platform {
			t.Errorf("%s: report %+v, check %+v", n.Name, got, c)
		}
	}
	if _, stderr, code := runCLI(t, "report", "--spec", doc, "--images", "x.txt", "--nodes", "../../examples/profiles/"); code != 2 {
		t.Errorf("--spec with --images: exit %d %s", code, stderr)
	}
}

// export --summary: one line per compatibility set, with its platform, tag, weight and rules.
func TestExportSummary(t *testing.T) {
	out, stderr, code := runCLI(t, "export", "../../examples/hello/compat.cue", "--summary")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "PLATFORM") ||
		!strings.Contains(lines[2], "linux/amd64/v3") || !strings.Contains(lines[2], "x86-64-v3") || !strings.Contains(lines[2], " 90 ") ||
		!strings.Contains(lines[2], "x86-64-v3 instruction set; kernel new enough for the Go runtime") {
		t.Errorf("summary:\n%s", out)
	}
	out, _, code = runCLI(t, "export", "../../examples/hello/compat.cue", "--summary", "--platform", "linux/arm64/v8")
	if code != 0 || strings.Count(strings.TrimSpace(out), "\n") != 1 || !strings.Contains(out, "armv8") {
		t.Errorf("--platform: exit %d\n%s", code, out)
	}
}
