package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/compatkit/compatkit/internal/testregistry"
)

// writes lists the requests that could change a registry.
func writes(reqs []testregistry.Request) []testregistry.Request {
	var out []testregistry.Request
	for _, r := range reqs {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			out = append(out, r)
		}
	}
	return out
}

func TestAttachBadSpecPushesNothing(t *testing.T) {
	reg := testregistry.NewOCI(t)
	testregistry.PushImage(t, reg.Host(), "hello", "1.0")
	tmp := t.TempDir()
	for _, tc := range []struct {
		name, file, content, want string
	}{
		{"unknown field", "a.cue", "version: \"v1alpha1\"\ncompatibilities: [{\n\tweigth: 10\n\trules: []\n}]\n", "a.cue:3:2"},
		{"weight 101", "b.cue", "version: \"v1alpha1\"\ncompatibilities: [{\n\tweight: 101\n\trules: [{name: \"r\", matchFeatures: [{feature: \"cpu.cpuid\", matchName: {op: \"Exists\"}}]}]\n}]\n", "b.cue:3:"},
		{"yaml type error", "c.yaml", "version: v1alpha1\ncompatibilities:\n- weight: high\n  rules: []\n", "c.yaml:3:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := writeFile(t, tmp, tc.file, tc.content)
			reg.Reset()
			_, stderr, code := runCLI(t, "attach", reg.Host()+"/hello:1.0", "--plain-http", "--spec", f)
			if code != exitFailure || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 1 naming %s", code, stderr, tc.want)
			}
			if len(reg.Requests()) != 0 {
				t.Fatalf("a bad spec reached the registry: %v", reg.Requests())
			}
			_, stderr, code = runCLI(t, "vet", f)
			if code != exitFailure || !strings.Contains(stderr, tc.want) {
				t.Fatalf("vet: exit %d, stderr %q; want exit 1 naming %s", code, stderr, tc.want)
			}
		})
	}
}

func TestMissingImage(t *testing.T) {
	reg := testregistry.NewOCI(t)
	testregistry.PushImage(t, reg.Host(), "hello", "1.0")
	f := writeFile(t, t.TempDir(), "compat.cue", testSpec)
	for _, ref := range []string{reg.Host() + "/hello:nope", reg.Host() + "/nosuchrepo:1.0"} {
		reg.Reset()
		_, stderr, code := runCLI(t, "attach", ref, "--plain-http", "--spec", f)
		if code != exitFailure || !strings.Contains(stderr, ref) || !strings.Contains(stderr, "not found") {
			t.Fatalf("attach %s: exit %d, stderr %q", ref, code, stderr)
		}
		if w := writes(reg.Requests()); len(w) != 0 {
			t.Fatalf("attach to a missing image wrote %v", w)
		}
		_, stderr, code = runCLI(t, "check", ref, "--plain-http", "--features", writeFile(t, t.TempDir(), "f.json", featuresV3))
		if code != exitFailure || !strings.Contains(stderr, ref) {
			t.Fatalf("check %s: exit %d, stderr %q", ref, code, stderr)
		}
	}
	_, stderr, code := runCLI(t, "check", "--oci-layout", t.TempDir()+"/none:1.0", "--features", writeFile(t, t.TempDir(), "f.json", featuresV3))
	if code != exitFailure || !strings.Contains(stderr, "none") {
		t.Fatalf("check of a missing layout: exit %d, stderr %q", code, stderr)
	}
}

func TestRegistry500(t *testing.T) {
	if testing.Short() {
		t.Skip("retries with back-off take several seconds")
	}
	reg := testregistry.NewFailing(t, http.StatusInternalServerError)
	f := writeFile(t, t.TempDir(), "compat.cue", testSpec)
	_, stderr, code := runCLI(t, "attach", reg.Host()+"/hello:1.0", "--plain-http", "--spec", f)
	if code != exitFailure || !strings.Contains(stderr, reg.Host()) || !strings.Contains(stderr, "500") {
		t.Fatalf("exit %d, stderr %q: want exit 1 naming the registry and the status", code, stderr)
	}
	if w := writes(reg.Requests()); len(w) != 0 {
		t.Fatalf("attach wrote to a failing registry: %v", w)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"check", "x", "-o", "xml"},
		{"attach", "x"},
		{"attach", "x", "--spec", "f", "--created", "yesterday"},
		{"bogus"},
		{"vet", "--nope", "x"},
		{"export"},
		{"check", "x", "extra"},
		{"check", "x", "--platform", "garbage"},
		{"export", "a.yaml", "b.yaml"},
		{"check", "x", "--require-trusted"},
		{"check", "x", "--require-tlog"},
	} {
		_, stderr, code := runCLI(t, args...)
		if code != exitUsage || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q: want exit %d and an error", args, code, stderr, exitUsage)
		}
	}
}

func TestInputSizeLimits(t *testing.T) {
	for _, args := range [][]string{
		{"vet", "/dev/zero"},
		{"export", "/dev/zero"},
		{"check", "x", "--features", "/dev/zero"},
		{"verify", "x", "--key", "/dev/zero"},
	} {
		_, stderr, code := runCLI(t, args...)
		if code != exitFailure || !strings.Contains(stderr, "/dev/zero") || !strings.Contains(stderr, "large") {
			t.Errorf("%v: exit %d, stderr %q: want a size error naming the file", args, code, stderr)
		}
	}
}

// A local OCI layout given without --oci-layout is refused at once, never tried as a registry.
func TestLayoutWithoutFlag(t *testing.T) {
	dir := t.TempDir() + "/layout"
	testregistry.WriteLayout(t, dir, "1.0")
	for _, cmd := range []string{"check", "discover", "select", "fetch"} {
		_, stderr, code := runCLI(t, cmd, dir+":1.0")
		if code != exitUsage || !strings.Contains(stderr, "add --oci-layout") {
			t.Errorf("%s: exit %d, %q", cmd, code, stderr)
		}
	}
}
