package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatkit/compatkit/internal/testregistry"
)

const selectSpec = `
_kernel: {name: "kernel", matchFeatures: [{feature: "kernel.version", matchExpressions: major: {op: "Gt", value: ["3"]}}]}
platforms: "linux/amd64": {
	version: "v1alpha1"
	compatibilities: [{tag: "x86-64-v1", weight: 50, rules: [_kernel, {name: "SSE2", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: SSE2: {op: "Exists"}}]}]}]
}
platforms: "linux/amd64/v3": {
	version: "v1alpha1"
	compatibilities: [{tag: "x86-64-v3", weight: 90, rules: [_kernel, {name: "x86-64-v3", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: {AVX2: {op: "Exists"}, BMI2: {op: "Exists"}, FMA3: {op: "Exists"}}}]}]}]
}
platforms: "linux/arm64": {
	version: "v1alpha1"
	compatibilities: [{weight: 50, rules: [_kernel, {name: "ASIMD", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: ASIMD: {op: "Exists"}}]}]}]
}
`

const (
	hostV3 = `{"flags": {"cpu.cpuid": {"elements": {` + cpuidV3 + `}}},
 "attributes": {"kernel.version": {"elements": {"major": "6"}}, "compatkit.platform": {"elements": {"os": "linux", "arch": "amd64"}}}}`
	hostV2 = `{"flags": {"cpu.cpuid": {"elements": {` + cpuidV2 + `}}},
 "attributes": {"kernel.version": {"elements": {"major": "5"}}, "compatkit.platform": {"elements": {"os": "linux", "arch": "amd64"}}}}`
	hostARM = `{"flags": {"cpu.cpuid": {"elements": {"ASIMD": {}, "FP": {}}}},
 "attributes": {"kernel.version": {"elements": {"major": "6"}}, "compatkit.platform": {"elements": {"os": "linux", "arch": "arm64"}}}}`
	hostOld = `{"flags": {"cpu.cpuid": {"elements": {` + cpuidV1 + `}}},
 "attributes": {"kernel.version": {"elements": {"major": "2"}}, "compatkit.platform": {"elements": {"os": "linux", "arch": "amd64"}}}}`
)

func TestSelect(t *testing.T) {
	reg := testregistry.NewOCI(t)
	img := testregistry.PushImage(t, reg.Host(), "hello", "1.0")
	image := reg.Host() + "/hello:1.0"
	tmp := t.TempDir()
	specFile := writeFile(t, tmp, "compat.cue", selectSpec)
	if _, stderr, code := runCLI(t, "attach", image, "--plain-http", "--spec", specFile, "--created", "2026-01-01T00:00:00Z"); code != 0 {
		t.Fatalf("attach: %s", stderr)
	}
	v1, v3, arm := img.Manifests[0].Digest.String(), img.Manifests[1].Digest.String(), img.Manifests[2].Digest.String()
	want := map[string]string{hostV3: v3, hostV2: v1, hostARM: arm}
	for h, digest := range want {
		f := writeFile(t, tmp, "host.json", h)
		reg.Reset()
		out, stderr, code := runCLI(t, "select", image, "--plain-http", "--features", f)
		if code != 0 || strings.TrimSpace(out) != reg.Host()+"/hello@"+digest {
			t.Fatalf("select: exit %d, %q (%s), want %s", code, out, stderr, digest)
		}
		reqs := reg.Requests()
		// GET the index by tag; for the index and each candidate the host can run (v1 and v3 on
		// the v3 host, v1 alone on the v2 host: its platform rules v3 out before any spec is
		// read; arm64 on arm64): GET referrers, and the referrers tag at the same time while the
		// capability is not known (a tag read still unsent when the API answers is dropped); for
		// each candidate with a spec: GET its referrer manifest and the spec blob.
		listings, withSpec := 3, 2
		if h == hostARM || h == hostV2 {
			listings, withSpec = 2, 1
		}
		most := 1 + 2*listings + 2*withSpec
		if len(reqs) > most || len(reqs) < most-listings {
			t.Errorf("select made %d requests, want %d to %d: %v", len(reqs), most-listings, most, reqs)
		}
		assertNoImageBlob(t, reqs, img)
		seen := map[string]bool{}
		for _, r := range reqs {
			if seen[r.String()] {
				t.Errorf("request repeated: %s", r)
			}
			seen[r.String()] = true
		}
	}

	// Kubernetes nodes from `kubectl get nodes -o json`: the platform comes from the kubelet's
	// labels, the cpuid flags NFD does not label are inferred from those it does.
	nodes := writeFile(t, tmp, "nodes.json", `{"kind": "List", "items": [
 {"kind": "Node", "metadata": {"name": "arm-1", "labels": {"kubernetes.io/arch": "arm64", "kubernetes.io/os": "linux",
   "feature.node.kubernetes.io/cpu-cpuid.ASIMD": "true", "feature.node.kubernetes.io/kernel-version.major": "6"}}},
 {"kind": "Node", "metadata": {"name": "x86-1", "labels": {"kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux",
   "feature.node.kubernetes.io/cpu-cpuid.AVX": "true", "feature.node.kubernetes.io/cpu-cpuid.AVX2": "true",
   "feature.node.kubernetes.io/cpu-cpuid.FMA3": "true", "feature.node.kubernetes.io/cpu-cpuid.MOVBE": "true",
   "feature.node.kubernetes.io/cpu-cpuid.OSXSAVE": "true", "feature.node.kubernetes.io/kernel-version.major": "6"}}}]}`)
	for node, digest := range map[string]string{"arm-1": arm, "x86-1": v3} {
		out, stderr, code := runCLI(t, "select", image, "--plain-http", "--node", node, "--nodes", nodes)
		if code != 0 || strings.TrimSpace(out) != reg.Host()+"/hello@"+digest {
			t.Fatalf("select --node %s: exit %d, %q (%s), want %s", node, code, out, stderr, digest)
		}
	}

	// Nothing fits: exit 3 and every manifest's reason.
	f := writeFile(t, tmp, "old.json", hostOld)
	out, stderr, code := runCLI(t, "select", image, "--plain-http", "--features", f, "-o", "json")
	if code != exitIncompatible || !strings.Contains(stderr, "No manifest of") || !strings.Contains(stderr, `rule "kernel"`) {
		t.Fatalf("nothing fits: exit %d, stderr %q", code, stderr)
	}
	var rep selectReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Selected != "" || len(rep.Ranking) != 2 {
		t.Fatalf("json %q: %v", out, err)
	}

	// Fast path: annotate, then select --use-annotations needs the index alone.
	out, stderr, code = runCLI(t, "annotate", image, "--plain-http")
	if code != 0 {
		t.Fatalf("annotate: %s", stderr)
	}
	f = writeFile(t, tmp, "v3.json", hostV3)
	reg.Reset()
	out, stderr, code = runCLI(t, "select", image, "--plain-http", "--features", f, "--use-annotations")
	if code != 0 || strings.TrimSpace(out) != reg.Host()+"/hello@"+v3 || len(reg.Requests()) != 1 {
		t.Fatalf("select on the annotated index: exit %d %q %s, %d requests: %v", code, out, stderr, len(reg.Requests()), reg.Requests())
	}

	// A newer spec on the v3 manifest that this host fails: the annotations are stale. By default
	// (and with --verify-annotations, kept for scripts) the referrer wins and the mismatch is
	// reported; check agrees; only --use-annotations takes the stale annotation.
	newer := writeFile(t, tmp, "newer.cue", `version: "v1alpha1"
compatibilities: [{weight: 95, rules: [{name: "AMX", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: AMXTILE: {op: "Exists"}}]}]}]
`)
	if _, stderr, code := runCLI(t, "attach", image, "--plain-http", "--spec", newer, "--platform", "linux/amd64/v3", "--created", "2026-06-01T00:00:00Z"); code != 0 {
		t.Fatalf("attach newer: %s", stderr)
	}
	for _, extra := range [][]string{nil, {"--verify-annotations"}} {
		out, stderr, code = runCLI(t, append([]string{"select", image, "--plain-http", "--features", f}, extra...)...)
		if code != 0 || strings.TrimSpace(out) != reg.Host()+"/hello@"+v1 || !strings.Contains(stderr, "differs from referrer") && !strings.Contains(stderr, "names referrer") {
			t.Fatalf("stale annotations %v: exit %d, %q, stderr %q", extra, code, out, stderr)
		}
	}
	if out, stderr, code := runCLI(t, "check", image, "--plain-http", "--features", f, "--platform", "linux/amd64/v3"); code != exitIncompatible {
		t.Fatalf("check with stale annotations: exit %d\n%s%s", code, out, stderr)
	}
	if out, _, code := runCLI(t, "select", image, "--plain-http", "--features", f, "--use-annotations"); code != 0 || strings.TrimSpace(out) != reg.Host()+"/hello@"+v3 {
		t.Fatalf("--use-annotations: exit %d %q", code, out)
	}
}

func TestSelectIndexSpecAppliesToAll(t *testing.T) {
	reg := testregistry.NewOCI(t)
	testregistry.PushImage(t, reg.Host(), "hello", "1.0")
	image := reg.Host() + "/hello:1.0"
	tmp := t.TempDir()
	// A spec without platforms, attached without --platform, goes on the index itself.
	idxSpec := writeFile(t, tmp, "index.cue", `version: "v1alpha1"
compatibilities: [{rules: [{name: "AVX-512", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: AVX512F: {op: "Exists"}}]}]}]
`)
	out, stderr, code := runCLI(t, "attach", image, "--plain-http", "--spec", idxSpec)
	if code != 0 || !strings.Contains(out, "(index)") {
		t.Fatalf("attach to the index: %s %s", out, stderr)
	}
	f := writeFile(t, tmp, "v3.json", hostV3)
	_, stderr, code = runCLI(t, "select", image, "--plain-http", "--features", f)
	if code != exitIncompatible || !strings.Contains(stderr, "AVX512F") {
		t.Fatalf("the index's spec must apply to every manifest: exit %d, %s", code, stderr)
	}
}

// TestSelectExample attaches the shipped example's compat.cue to an index of the example's shape
// (linux/amd64, linux/amd64/v3, linux/arm64/v8) and selects for the shipped machine profiles.
func TestSelectExample(t *testing.T) {
	reg := testregistry.NewOCI(t)
	img := testregistry.PushImage(t, reg.Host(), "hello", "1.0")
	image := reg.Host() + "/hello:1.0"
	if _, stderr, code := runCLI(t, "attach", image, "--plain-http", "--spec", "../../examples/hello/compat.cue"); code != 0 {
		t.Fatalf("attach the example's spec: %s", stderr)
	}
	v1, v3, arm := img.Manifests[0].Digest.String(), img.Manifests[1].Digest.String(), img.Manifests[2].Digest.String()
	for profile, want := range map[string]string{
		"aws-c5-xeon-platinum-8275cl":     v3,  // x86-64-v4: the v3 image
		"amd-epyc-7763-nvidia-a100":       v3,  // Zen 3, x86-64-v3
		"intel-xeon-e5-2670-sandy-bridge": v1,  // AVX but no AVX2: the v1 image
		"x86-64-v2-no-avx2":               v1,  // no AVX at all
		"aws-c6g-graviton2":               arm, // arm64
	} {
		out, stderr, code := runCLI(t, "select", image, "--plain-http", "--features", "../../examples/profiles/"+profile+".json")
		if code != 0 || strings.TrimSpace(out) != reg.Host()+"/hello@"+want {
			t.Errorf("%s: exit %d, %q (%s), want %s", profile, code, out, stderr, want)
		}
	}
}

// Under a trust policy, an unsigned newer spec cannot steer select.
func TestSelectUnderPolicy(t *testing.T) {
	dir, img, tmp, keys := layoutWithKeys(t)
	image := dir + ":1.0"
	if _, stderr, code := runCLI(t, "attach", "--oci-layout", image, "--spec", writeFile(t, tmp, "compat.cue", selectSpec), "--sign", "--key", keys+".key", "--created", "2026-01-01T00:00:00Z"); code != 0 {
		t.Fatal(stderr)
	}
	impossible := writeFile(t, tmp, "newer.cue", `version: "v1alpha1"
compatibilities: [{rules: [{name: "AMX", matchFeatures: [{feature: "cpu.cpuid", matchExpressions: AMXTILE: {op: "Exists"}}]}]}]
`)
	if _, stderr, code := runCLI(t, "attach", "--oci-layout", image, "--spec", impossible, "--platform", "linux/amd64/v3", "--created", "2026-06-01T00:00:00Z"); code != 0 {
		t.Fatal(stderr)
	}
	host := writeFile(t, tmp, "v3.json", hostV3)
	out, _, _ := runCLI(t, "select", "--oci-layout", image, "--features", host)
	if !strings.HasSuffix(strings.TrimSpace(out), img.Manifests[0].Digest.String()) {
		t.Fatalf("without a policy the newest (unsigned) spec counts: want v1, got %q", out)
	}
	out, stderr, code := runCLI(t, "select", "--oci-layout", image, "--features", host, "--key", keys+".pub")
	if code != 0 || !strings.HasSuffix(strings.TrimSpace(out), img.Manifests[1].Digest.String()) || !strings.Contains(stderr, "Ignoring spec") {
		t.Fatalf("under --key the unsigned spec is ignored: want v3, got exit %d %q\n%s", code, out, stderr)
	}
}

// TestSelectExampleFromDumps: profiles made by `features --host-root` from real /proc/cpuinfo
// dumps (archspec's suite) and kernel releases NFD cannot split (Debian 13, WSL2) select from the
// shipped example's index: a Haswell gets the v3 build, a Piledriver (AVX, no AVX2) the v1 build,
// a Neoverse N1 the arm64 build; the example's kernel rules hold on those releases.
func TestSelectExampleFromDumps(t *testing.T) {
	reg := testregistry.NewOCI(t)
	img := testregistry.PushImage(t, reg.Host(), "hello", "1.0")
	image := reg.Host() + "/hello:1.0"
	if _, stderr, code := runCLI(t, "attach", image, "--plain-http", "--spec", "../../examples/hello/compat.cue"); code != 0 {
		t.Fatalf("attach the example's spec: %s", stderr)
	}
	v1, v3, arm := img.Manifests[0].Digest.String(), img.Manifests[1].Digest.String(), img.Manifests[2].Digest.String()
	tmp := t.TempDir()
	for _, c := range []struct{ dump, release, want string }{
		{"linux-rhel7-haswell", "6.12.95+deb13-amd64", v3},
		{"linux-ubuntu20.04-zen3", "5.15.90.1-microsoft-standard-WSL2", v3},
		{"linux-rhel6-piledriver", "6.12.95+deb13-amd64", v1},
		{"linux-amazon-neoverse_n1", "6.1.90-99.173.amzn2023.aarch64", arm},
	} {
		data, err := os.ReadFile("../../third_party/archspec/tests/targets/" + c.dump)
		if err != nil {
			t.Fatal(err)
		}
		root := filepath.Join(tmp, c.dump)
		if err := os.MkdirAll(filepath.Join(root, "proc", "sys", "kernel"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, "proc"), "cpuinfo", string(data))
		writeFile(t, filepath.Join(root, "proc", "sys", "kernel"), "osrelease", c.release+"\n")
		profile, stderr, code := runCLI(t, "features", "--host-root", root, "-q")
		if code != 0 {
			t.Fatalf("features --host-root %s: exit %d: %s", c.dump, code, stderr)
		}
		file := writeFile(t, tmp, c.dump+".json", profile)
		out, stderr, code := runCLI(t, "select", image, "--plain-http", "--features", file)
		if code != 0 || strings.TrimSpace(out) != reg.Host()+"/hello@"+c.want {
			t.Errorf("%s (kernel %s): exit %d, %q (%s), want %s", c.dump, c.release, code, out, stderr, c.want)
		}
		out, stderr, code = runCLI(t, "check", image, "--plain-http", "--features", file)
		if code != 0 || !strings.Contains(out, "COMPATIBLE") {
			t.Errorf("%s: check exit %d: %s %s", c.dump, code, out, stderr)
		}
	}
}
