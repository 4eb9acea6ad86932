package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatkit/compatkit/internal/testregistry"
)

// TestSignVerify: generate-key-pair, attach --sign, verify, check/fetch/discover under the key, an
// unsigned newer spec ignored, a wrong key rejected, and sign for specs attached earlier; on the
// in-process registry, docker-registry (fallback tags) and a layout.
func TestSignVerify(t *testing.T) {
	tmp := t.TempDir()
	specFile := writeFile(t, tmp, "compat.cue", testSpec)
	// An x86-64-v3 host that the signed spec refuses (kernel 3.1) and the relaxed one accepts.
	v2 := writeFile(t, tmp, "v3old.json", featuresV3Kernel31)
	t.Setenv("COSIGN_PASSWORD", "demo-password")
	prefix := filepath.Join(tmp, "release")
	if out, errs, code := runCLI(t, "generate-key-pair", "--output-key-prefix", prefix); code != 0 || !strings.Contains(out, "release.pub") {
		t.Fatalf("generate-key-pair: %d %s%s", code, out, errs)
	}
	other := filepath.Join(tmp, "other")
	runCLI(t, "generate-key-pair", "--output-key-prefix", other)
	if _, errs, code := runCLI(t, "generate-key-pair", "--output-key-prefix", prefix); code != 1 || !strings.Contains(errs, "exists") {
		t.Fatalf("overwrite: %d %s", code, errs)
	}
	policy := writeFile(t, tmp, "policy.yaml", "# compatkit trust policy\nkeys: [{path: release.pub}]\n")

	for _, st := range stores(t) {
		t.Run(st.name, func(t *testing.T) {
			with := func(args ...string) []string { return append(args, st.flags...) }
			out, errs, code := runCLI(t, with("attach", st.image, "--spec", specFile, "--created", "2026-01-02T03:04:05Z", "--sign", "--key", prefix+".key", "-o", "json")...)
			if code != 0 {
				t.Fatalf("attach --sign: %d %s", code, errs)
			}
			var attached []attachResult
			json.Unmarshal([]byte(out), &attached)
			if len(attached) != 2 || attached[0].Bundle == "" || !strings.HasPrefix(attached[0].Signer, "key ") {
				t.Fatalf("attach --sign: %s", out)
			}

			out, errs, code = runCLI(t, with("verify", st.image, "--key", prefix+".pub")...)
			if code != 0 || strings.Count(out, "VERIFIED") != 2 {
				t.Fatalf("verify: %d\n%s%s", code, out, errs)
			}
			out, errs, code = runCLI(t, with("verify", st.image, "--platform", "linux/amd64/v3", "--policy", policy, "-o", "json")...)
			var rows []verifiedEntry
			json.Unmarshal([]byte(out), &rows)
			if code != 0 || len(rows) != 1 || rows[0].Status != "VERIFIED" {
				t.Fatalf("verify --policy: %d\n%s%s", code, out, errs)
			}
			out, errs, code = runCLI(t, with("verify", st.image, "--key", other+".pub")...)
			if code != 1 || !strings.Contains(out, "wrong key") || !strings.Contains(errs, "no spec") {
				t.Fatalf("verify with another key: %d\n%s%s", code, out, errs)
			}

			// An unsigned newer spec (relaxed: no AVX2 needed) next to the signed one.
			relaxed := writeFile(t, t.TempDir(), "relaxed.yaml", "version: v1alpha1\ncompatibilities:\n- rules:\n  - name: anything\n    matchFeatures:\n    - feature: cpu.cpuid\n      matchExpressions: {SSE42: {op: Exists}}\n")
			if _, errs, code := runCLI(t, with("attach", st.image, "--spec", relaxed, "--platform", "linux/amd64/v3", "--created", "2026-02-02T03:04:05Z")...); code != 0 {
				t.Fatalf("attach unsigned: %s", errs)
			}
			// Without a policy the newer (unsigned) spec wins; under the key it is ignored.
			if out, _, code := runCLI(t, with("check", st.image, "--platform", "linux/amd64/v3", "--features", v2)...); code != 0 {
				t.Fatalf("check without policy: %d\n%s", code, out)
			}
			out, errs, code = runCLI(t, with("check", st.image, "--platform", "linux/amd64/v3", "--features", v2, "--key", prefix+".pub")...)
			if code != exitIncompatible || !strings.Contains(errs, "Ignoring spec") || !strings.Contains(errs, "unsigned") || !strings.Contains(out, "FAIL  kernel 3.2 or later") {
				t.Fatalf("check --key: %d\n%s%s", code, out, errs)
			}
			out, errs, code = runCLI(t, with("fetch", st.image, "--platform", "linux/amd64/v3", "--policy", policy)...)
			if code != 0 || !strings.Contains(out, "x86-64-v3") || !strings.Contains(errs, "unsigned") {
				t.Fatalf("fetch --policy: %d\n%s%s", code, out, errs)
			}
			out, errs, code = runCLI(t, with("discover", st.image, "--key", prefix+".pub", "-o", "json")...)
			var found []discoverEntry
			json.Unmarshal([]byte(out), &found)
			if code != 0 || len(found) != 3 || found[0].Status != "UNVERIFIED" || !strings.Contains(found[0].Reason, "unsigned") || found[1].Status != "VERIFIED" {
				t.Fatalf("discover --key: %d\n%s%s", code, out, errs)
			}

			// Under another key nothing is trusted: check says so loudly and treats the image as
			// one without a spec; fetch fails.
			out, errs, code = runCLI(t, with("check", st.image, "--platform", "linux/amd64/v3", "--features", v2, "--key", other+".pub")...)
			if code != 0 || !strings.Contains(errs, "WARNING: no trusted spec") || !strings.Contains(out, "WARNING: no trusted spec") {
				t.Fatalf("check under another key: %d\n%s%s", code, out, errs)
			}
			out, errs, code = runCLI(t, with("check", st.image, "--platform", "linux/amd64/v3", "--features", v2, "--key", other+".pub", "--require-trusted")...)
			if code != exitIncompatible || !strings.Contains(out, "NOT COMPATIBLE: no trusted spec") {
				t.Fatalf("check --require-trusted under another key: %d\n%s%s", code, out, errs)
			}
			if _, errs, code := runCLI(t, with("fetch", st.image, "--platform", "linux/amd64/v3", "--key", other+".pub")...); code != 1 || !strings.Contains(errs, "no trusted spec") {
				t.Fatalf("fetch under another key: %d %s", code, errs)
			}

			// sign needs to be told what to sign: never "the newest spec", which anyone can push.
			if _, errs, code := runCLI(t, with("sign", st.image, "--platform", "linux/amd64/v3", "--key", prefix+".key")...); code != exitUsage || !strings.Contains(errs, "--referrer") {
				t.Fatalf("sign without --spec or --referrer: %d %s", code, errs)
			}
			// The relaxed spec, by the referrer discover lists.
			out, _, _ = runCLI(t, with("discover", st.image, "--platform", "linux/amd64/v3", "-o", "json")...)
			found = nil
			json.Unmarshal([]byte(out), &found)
			relaxedRef := found[0].Referrer[strings.LastIndex(found[0].Referrer, "@")+1:]
			out, errs, code = runCLI(t, with("sign", st.image, "--referrer", relaxedRef, "--key", prefix+".key")...)
			if code != 0 || !strings.Contains(out, "Signed ") {
				t.Fatalf("sign --referrer: %d %s%s", code, out, errs)
			}
			out, errs, code = runCLI(t, with("fetch", st.image, "--platform", "linux/amd64/v3", "--key", prefix+".pub")...)
			if code != 0 || !strings.Contains(out, "SSE42") {
				t.Fatalf("fetch after sign: %d\n%s%s", code, out, errs)
			}
		})
	}
}

func TestSignUsage(t *testing.T) {
	for _, args := range [][]string{
		{"verify", "localhost:1/x:1"},
		{"sign", "localhost:1/x:1"},
		{"attach", "localhost:1/x:1", "--spec", "x.cue", "--key", "k"},
	} {
		if _, _, code := runCLI(t, args...); code == 0 {
			t.Errorf("%v: exit 0", args)
		}
	}
	for _, c := range []string{"sign", "verify", "generate-key-pair"} {
		out, _, code := runCLI(t, c, "--help")
		if code != 0 || !strings.Contains(out, "Examples:") {
			t.Errorf("%s --help: %d %s", c, code, out)
		}
	}
}

// sign --spec signs the spec the author wrote, not a newer one someone else attached.
func TestSignOnlyTheGivenSpec(t *testing.T) {
	dir, img, tmp, keys := layoutWithKeys(t)
	image := dir + ":1.0"
	mine := writeFile(t, tmp, "compat.cue", testSpec)
	if _, stderr, code := runCLI(t, "attach", "--oci-layout", image, "--spec", mine, "--created", "2026-01-01T00:00:00Z"); code != 0 {
		t.Fatal(stderr)
	}
	other := writeFile(t, tmp, "other.yaml", "version: v1alpha1\ncompatibilities:\n- rules:\n  - name: other\n    matchFeatures:\n    - feature: cpu.cpuid\n      matchExpressions: {AMXTILE: {op: Exists}}\n")
	if _, stderr, code := runCLI(t, "attach", "--oci-layout", image, "--spec", other, "--platform", "linux/amd64/v3", "--created", "2026-06-01T00:00:00Z"); code != 0 {
		t.Fatal(stderr)
	}
	if _, stderr, code := runCLI(t, "sign", "--oci-layout", image, "--platform", "linux/amd64/v3", "--key", keys+".key", "--spec", mine); code != 0 {
		t.Fatalf("sign --spec: %s", stderr)
	}
	out, _, _ := runCLI(t, "verify", "--oci-layout", dir+"@"+img.Manifests[1].Digest.String(), "--key", keys+".pub", "-o", "json")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 2 {
		t.Fatalf("verify: %v %s", err, out)
	}
	// Verified first: the author's (older) spec; the other one is unsigned.
	if rows[0]["status"] != "VERIFIED" || rows[0]["created"] != "2026-01-01T00:00:00Z" || rows[1]["status"] == "VERIFIED" {
		t.Fatalf("want only the author's (older) spec verified: %s", out)
	}
}

// layoutWithKeys writes the test image into a fresh OCI layout (dir, tag 1.0) and a key pair
// (keys+".key", keys+".pub", password "test" in COSIGN_PASSWORD) into the scratch directory tmp.
func layoutWithKeys(t *testing.T) (dir string, img testregistry.Image, tmp, keys string) {
	t.Helper()
	dir = t.TempDir() + "/layout"
	img = testregistry.WriteLayout(t, dir, "1.0")
	tmp = t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "test")
	keys = tmp + "/k"
	if _, stderr, code := runCLI(t, "generate-key-pair", "--output-key-prefix", keys); code != 0 {
		t.Fatal(stderr)
	}
	return dir, img, tmp, keys
}
