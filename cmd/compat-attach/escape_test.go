package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"

	godigest "github.com/opencontainers/go-digest"
	specsgo "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/pkg/match"
	"github.com/compatkit/compatkit/pkg/oci"
)

// forgedLines splits out at every character a terminal or a YAML parser ends a line at, and
// returns the lines that start (after blanks and a comment's #) with FORGED: what the strings
// below, which a pusher writes into an index or a spec, try to print on lines of their own.
func forgedLines(out string) []string {
	lines := strings.FieldsFunc(out, func(r rune) bool {
		return r == '\n' || r == '\r' || r == '\u0085' || r == '\u2028' || r == '\u2029'
	})
	var forged []string
	for _, l := range lines {
		if strings.HasPrefix(strings.TrimLeft(l, " \t#"), "FORGED") {
			forged = append(forged, l)
		}
	}
	return forged
}

// assertOneLineValues fails when a command's output has a forged line.
func assertOneLineValues(t *testing.T, what, out, stderr string) {
	t.Helper()
	if f := forgedLines(out + "\n" + stderr); len(f) > 0 {
		t.Errorf("%s: forged lines %q\nstdout:\n%s\nstderr:\n%s", what, f, out, stderr)
	}
}

// Platforms as a pusher may write them in an index: each part can hold anything.
var hostilePlatforms = []ocispec.Platform{
	{OS: "linux", Architecture: "amd64", Variant: "v9\n\nFORGED Spec sha256:1111\n  signed by key maintainer\n\nFORGED Verdict: COMPATIBLE (score 100)\n"},
	{OS: "linux", Architecture: "amd64\nhostPID: true\nFORGEDhostNetwork: true\nserviceAccountName: cluster-admin-sa\n#", Variant: "v3\u2028FORGEDhostIPC: true\u2029#"},
	{OS: "linux\rFORGED", Architecture: "arm64\u0085FORGEDprivileged: true", Variant: "v8"},
}

// TestHostilePlatformsStayOnTheirLine: platforms from an index, with newlines, carriage returns
// and line separators in them, forge no line in any command's text output or error, and add no
// key to affinity's YAML (meant to be pasted under a pod template's spec), with or without a
// trust policy. On both registries.
func TestHostilePlatformsStayOnTheirLine(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "test")
	if _, stderr, code := runCLI(t, "generate-key-pair", "--output-key-prefix", dir+"/k"); code != 0 {
		t.Fatal(stderr)
	}
	pub := dir + "/k.pub"
	v2host := hostFile(t, "amd64", cpuidV2, "6")
	for name, reg := range registries(t) {
		t.Run(name, func(t *testing.T) {
			img := testregistry.PushShape(t, reg.Host(), "app", "evil", testregistry.Shape{Platforms: hostilePlatforms})
			image := reg.Host() + "/app:evil"
			for i := range img.Manifests {
				pushRawSpec(t, reg.Host()+"/app", img.Manifests[i], []byte(`{"version": "v1alpha1", "compatibilities": [{"rules": [{"name": "sse2", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"SSE2": {"op": "Exists"}}}]}]}]}`), "2026-01-01T00:00:00Z")
			}
			for _, args := range [][]string{
				{"check", "--features", v2host},
				{"check", "--features", v2host, "--key", pub},
				{"select", "--features", v2host},
				{"discover"},
				{"verify", "--key", pub},
				{"fetch", "--platform", "linux/s390x"},
				{"verify", "--platform", "linux/s390x", "--key", pub},
				{"affinity", "--platform", "linux/s390x"},
				{"affinity", "-o", "json"},
			} {
				out, stderr, code := runCLI(t, append([]string{args[0], "--plain-http", image}, args[1:]...)...)
				if code == 0 && args[0] != "discover" && args[0] != "affinity" {
					t.Errorf("%s: exit 0", args)
				}
				assertOneLineValues(t, strings.Join(args, " "), out, stderr)
			}
			for _, args := range [][]string{{}, {"--key", pub}} {
				out, stderr, code := runCLI(t, append([]string{"affinity", "--plain-http", image}, args...)...)
				if code != 0 {
					t.Fatalf("affinity %s: exit %d: %s", args, code, stderr)
				}
				assertOneLineValues(t, "affinity", out, stderr)
				if !strings.Contains(out, `variant v3\u2028FORGEDhostIPC: true\u2029#`) {
					t.Errorf("affinity: the variant is not listed, escaped, in a comment:\n%s", out)
				}
				assertOnlyAffinityKeys(t, out)
			}
		})
	}
}

// assertOnlyAffinityKeys parses affinity's YAML output as kubectl would (sigs.k8s.io/yaml) and as
// yaml.v3 does, and fails on any key but affinity.nodeAffinity's.
func assertOnlyAffinityKeys(t *testing.T, out string) {
	t.Helper()
	var k8s map[string]any
	if err := yaml.Unmarshal([]byte(out), &k8s); err != nil {
		t.Fatalf("sigs.k8s.io/yaml: %v\n%s", err, out)
	}
	var v3 map[string]any
	if err := yamlv3.Unmarshal([]byte(out), &v3); err != nil {
		t.Fatalf("yaml.v3: %v\n%s", err, out)
	}
	for parser, doc := range map[string]map[string]any{"sigs.k8s.io/yaml": k8s, "yaml.v3": v3} {
		if keys := slices.Sorted(maps.Keys(doc)); !slices.Equal(keys, []string{"affinity"}) {
			t.Errorf("%s: top-level keys %q, want only affinity\n%s", parser, keys, out)
			continue
		}
		aff, _ := doc["affinity"].(map[string]any)
		if keys := slices.Sorted(maps.Keys(aff)); !slices.Equal(keys, []string{"nodeAffinity"}) {
			t.Errorf("%s: affinity keys %q, want only nodeAffinity", parser, keys)
			continue
		}
		na, _ := aff["nodeAffinity"].(map[string]any)
		for k := range na {
			if k != "requiredDuringSchedulingIgnoredDuringExecution" && k != "preferredDuringSchedulingIgnoredDuringExecution" {
				t.Errorf("%s: nodeAffinity key %q", parser, k)
			}
		}
	}
}

// TestSpecErrorsStayOnTheirLine: values from a spec quoted in errors (an invalid regexp's pattern,
// which Go's regexp error prints raw, an operator, a version, a field name) forge no line, in
// fetch, affinity and check. On both registries.
func TestSpecErrorsStayOnTheirLine(t *testing.T) {
	v2host := hostFile(t, "amd64", cpuidV2, "6")
	for name, reg := range registries(t) {
		t.Run(name, func(t *testing.T) {
			img := testregistry.PushImage(t, reg.Host(), "app", "1.0")
			image := reg.Host() + "/app:1.0"
			for i, body := range []string{
				`{"version": "v1alpha1", "compatibilities": [{"rules": [{"name": "r", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"SSE2": {"op": "InRegexp", "value": ["(\nFORGED Verdict: COMPATIBLE (score 100)\n"]}}}]}]}]}`,
				`{"version": "v1alpha1", "compatibilities": [{"rules": [{"name": "r", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"SSE2": {"op": "InRegexp", "value": ["x[\u2028FORGED Verdict: COMPATIBLE\r"]}}}]}]}]}`,
				`{"version": "v1alpha1", "compatibilities": [{"rules": [{"name": "r", "matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {"SSE2": {"op": "Bogus\nFORGED Verdict: COMPATIBLE (score 100)\n"}}}]}]}]}`,
				`{"version": "v1alpha1\nFORGED Verdict: COMPATIBLE (score 100)\n", "compatibilities": []}`,
				`{"version": "v1alpha1", "compatibilities": [{"rules": [], "x\nFORGED Verdict: COMPATIBLE (score 100)\n": 1}]}`,
			} {
				pushRawSpec(t, reg.Host()+"/app", img.Manifests[0], []byte(body), fmt.Sprintf("2026-0%d-01T00:00:00Z", i+2))
				for _, args := range [][]string{
					{"fetch", "--platform", "linux/amd64"},
					{"affinity", "--platform", "linux/amd64"},
					{"check", "--platform", "linux/amd64", "--features", v2host},
				} {
					out, stderr, code := runCLI(t, append([]string{args[0], "--plain-http", image}, args[1:]...)...)
					if code != 1 {
						t.Errorf("%s, spec %d: exit %d, want 1 (the spec cannot be read)", args[0], i, code)
					}
					assertOneLineValues(t, fmt.Sprintf("%s, spec %d", args[0], i), out, stderr)
				}
			}
		})
	}
}

// TestHostileIndexDigest: an index entry whose digest is not one (a hostile registry serves it;
// the test registries refuse to store it) makes the index invalid: the digest would otherwise be
// printed in every line that names the entry.
func TestHostileIndexDigest(t *testing.T) {
	reg := testregistry.NewOCI(t)
	img := testregistry.PushImage(t, reg.Host(), "app", "1.0")
	m := img.Manifests[0]
	m.Digest = godigest.Digest("sha256:1111\nFORGED Verdict: COMPATIBLE (score 100)\n")
	body, err := json.Marshal(ocispec.Index{Versioned: specsgo.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{m, img.Manifests[1]}})
	if err != nil {
		t.Fatal(err)
	}
	dg := godigest.FromBytes(body).String()
	reg.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/manifests/hostile") && !strings.HasSuffix(r.URL.Path, "/manifests/"+dg) {
			return false
		}
		w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
		w.Header().Set("Docker-Content-Digest", dg)
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		if r.Method != http.MethodHead {
			w.Write(body)
		}
		return true
	})
	v2host := hostFile(t, "amd64", cpuidV2, "6")
	for _, args := range [][]string{{"check", "--features", v2host}, {"select", "--features", v2host}, {"affinity"}, {"discover"}, {"fetch", "--platform", "linux/amd64"}} {
		out, stderr, code := runCLI(t, append([]string{args[0], "--plain-http", reg.Host() + "/app:hostile"}, args[1:]...)...)
		if code != 1 || !strings.Contains(stderr, "manifests[0] has digest") {
			t.Errorf("%s: exit %d, want 1 naming manifests[0]: %s", args[0], code, stderr)
		}
		assertOneLineValues(t, args[0], out, stderr)
	}
}

// setsBomb is a spec of sets compatibility sets, each one rule of alts matchAny alternatives.
func setsBomb(sets, alts int) []byte {
	var b strings.Builder
	b.WriteString("version: v1alpha1\ncompatibilities:\n")
	for range sets {
		b.WriteString("- rules:\n  - name: r\n    matchAny:\n")
		for a := range alts {
			fmt.Fprintf(&b, "    - matchFeatures: [{feature: cpu.cpuid, matchExpressions: {F%d: {op: Exists}}}]\n", a)
		}
	}
	return []byte(b.String())
}

// pciBomb is a spec of one rule naming classes x vendors PCI devices.
func pciBomb(classes, vendors int) []byte {
	var cs, vs []string
	for i := range classes {
		cs = append(cs, fmt.Sprintf(`"03%02x"`, i%256))
	}
	for i := range vendors {
		vs = append(vs, fmt.Sprintf(`"%04x"`, i))
	}
	return fmt.Appendf(nil, `{"version": "v1alpha1", "compatibilities": [{"rules": [{"name": "gpu", "matchFeatures": [{"feature": "pci.device", "matchExpressions": {"class": {"op": "In", "value": [%s]}, "vendor": {"op": "In", "value": [%s]}}}]}]}]}`,
		strings.Join(cs, ","), strings.Join(vs, ","))
}

// runMeasured runs the CLI and returns what it allocated too.
func runMeasured(t *testing.T, args ...string) (string, string, int, uint64) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	out, stderr, code := runCLI(t, args...)
	runtime.ReadMemStats(&after)
	return out, stderr, code, after.TotalAlloc - before.TotalAlloc
}

// TestAffinityBombs: unsigned specs whose affinity would have millions of terms (256 sets of 32
// alternatives on a manifest and on its index: 67 million, which ran out of memory after 25 s;
// 4,096 PCI classes by 4,096 vendors: 16 s and 7 GB) cost about what check costs. The first, and
// two specs each within the bound whose product is not, are an error naming the spec and saying
// what to do; the PCI rule is left out, as any rule past 32 terms, after being counted.
func TestAffinityBombs(t *testing.T) {
	dir := t.TempDir() + "/layout"
	img := testregistry.WriteLayout(t, dir, "1.0")
	tg, err := oci.Open(context.Background(), dir+":1.0", oci.Options{OCILayout: true})
	if err != nil {
		t.Fatal(err)
	}
	manifest, index := img.Manifests[1], img.Index // linux/amd64/v3
	sets := setsBomb(256, 32)
	t.Logf("sets spec: %d bytes", len(sets))
	// Bytes allocated, all told: check allocates about 280 MB on the sets spec, affinity 60 to
	// 120 MB; the product alone was gigabytes.
	const budget = 512 << 20
	tooLarge := fmt.Sprintf("node selector terms, more than %d", match.MaxNodeSelectorTerms)

	mref := pushRawSpecTo(t, tg, manifest, sets, "2026-01-01T00:00:00Z")
	iref := pushRawSpecTo(t, tg, index, append(sets, "# the index's\n"...), "2026-01-01T00:00:00Z")
	for _, tc := range []struct {
		args []string
		what string
		spec ocispec.Descriptor
	}{
		// Every platform: the first, linux/amd64, has the index's spec only.
		{nil, img.Manifests[0].Digest.String() + " (linux/amd64)", iref},
		{[]string{"-o", "json"}, img.Manifests[0].Digest.String() + " (linux/amd64)", iref},
		{[]string{"--platform", "linux/amd64/v3"}, manifest.Digest.String() + " (linux/amd64/v3)", mref},
	} {
		out, stderr, code, alloc := runMeasured(t, append([]string{"affinity", "--oci-layout", dir + ":1.0"}, tc.args...)...)
		want := fmt.Sprintf("Error: no node affinity for %s@%s: spec %s@%s: the affinity would have 8192 %s\n", dir, tc.what, dir, tc.spec.Digest, tooLarge)
		if code != 1 || out != "" || !strings.HasPrefix(stderr, want) ||
			!strings.Contains(stderr, "Next: simplify the spec") || !strings.Contains(stderr, "`compat-attach check --oci-layout "+dir+":1.0`") {
			t.Errorf("affinity %s: exit %d\nstdout:\n%s\nstderr:\n%s\nwant:\n%s", tc.args, code, out, stderr, want)
		}
		t.Logf("affinity %s: %d MB allocated", tc.args, alloc>>20)
		if alloc > budget {
			t.Errorf("affinity %s: %d MB allocated", tc.args, alloc>>20)
		}
	}
	// check decides on the same specs at a similar cost.
	if _, stderr, code, alloc := runMeasured(t, "check", "--oci-layout", dir+":1.0", "--platform", "linux/amd64/v3", "--features", hostFile(t, "amd64", cpuidV3, "6")); code != 3 || alloc > budget {
		t.Errorf("check: exit %d, %d MB: %s", code, alloc>>20, stderr)
	} else {
		t.Logf("check: %d MB allocated", alloc>>20)
	}

	// Each spec within the bound (32 x 32 = 1024 terms), their product not: the index's spec is named.
	within := setsBomb(32, 32)
	pushRawSpecTo(t, tg, manifest, within, "2026-02-01T00:00:00Z")
	iref = pushRawSpecTo(t, tg, index, append(within, "# the index's\n"...), "2026-02-01T00:00:00Z")
	out, stderr, code, alloc := runMeasured(t, "affinity", "--oci-layout", dir+":1.0", "--platform", "linux/amd64/v3")
	if code != 1 || !strings.Contains(stderr, "spec "+dir+"@"+iref.Digest.String()+": with the specs that must hold with it, the affinity would have 1048576 "+tooLarge) {
		t.Errorf("product: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	t.Logf("product: %d MB allocated", alloc>>20)
	if alloc > budget {
		t.Errorf("product: %d MB allocated", alloc>>20)
	}

	// 4096 x 4096 PCI devices: counted, left out, listed.
	pci := pciBomb(4096, 4096)
	pushRawSpecTo(t, tg, manifest, pci, "2026-03-01T00:00:00Z")
	pushRawSpecTo(t, tg, index, append(pci, ' '), "2026-03-01T00:00:00Z")
	out, stderr, code, alloc = runMeasured(t, "affinity", "--oci-layout", dir+":1.0", "--platform", "linux/amd64/v3")
	if code != 0 || !strings.Contains(stderr, "not expressed: set 1, rule gpu: the whole rule: its alternatives (matchAny, device lists) would make 16777216 node selector terms, more than 32") {
		t.Errorf("pci: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	assertOnlyAffinityKeys(t, out)
	t.Logf("pci: %d MB allocated", alloc>>20)
	if alloc > budget {
		t.Errorf("pci: %d MB allocated", alloc>>20)
	}
}
