package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/compatkit/compatkit/internal/testregistry"
)

// TestAttachMany: one document attached to several images in one run, on both registries. Every
// image is planned before anything is pushed (an unknown image pushes nothing anywhere); an image
// whose pushes fail is named and the others are still attached (exit 1).
func TestAttachMany(t *testing.T) {
	tmp := t.TempDir()
	specFile := writeFile(t, tmp, "compat.cue", testSpec)
	v3 := writeFile(t, tmp, "v3.json", featuresV3)
	for name, reg := range registries(t) {
		t.Run(name, func(t *testing.T) {
			apps := []string{"api", "worker", "cron"}
			var refs []string
			for _, a := range apps {
				testregistry.PushImage(t, reg.Host(), a, "1.0")
				refs = append(refs, reg.Host()+"/"+a+":1.0")
			}

			// An image that does not exist: nothing is pushed to the others.
			reg.Reset()
			_, stderr, code := runCLI(t, append(append([]string{"attach", "--plain-http"}, refs...), reg.Host()+"/missing:1.0", "--spec", specFile)...)
			if code != 1 || !strings.Contains(stderr, "missing:1.0") || !strings.Contains(stderr, "nothing was pushed") {
				t.Fatalf("missing image: exit %d: %s", code, stderr)
			}
			for _, r := range reg.Requests() {
				if r.Method != http.MethodGet && r.Method != http.MethodHead {
					t.Errorf("pushed although an image could not be planned: %s", r)
				}
			}

			// All three: two platform specs each, and check finds them.
			out, stderr, code := runCLI(t, append(append([]string{"attach", "--plain-http"}, refs...), "--spec", specFile, "--concurrency", "2", "-o", "json")...)
			if code != 0 {
				t.Fatalf("attach: exit %d: %s", code, stderr)
			}
			var res []attachResult
			if err := json.Unmarshal([]byte(out), &res); err != nil || len(res) != 6 {
				t.Fatalf("attach -o json: %v: %s", err, out)
			}
			for k, a := range apps { // argument order kept
				if !strings.Contains(res[2*k].Subject, "/"+a+"@") || !strings.Contains(res[2*k+1].Subject, "/"+a+"@") {
					t.Errorf("result %d/%d: %+v %+v", 2*k, 2*k+1, res[2*k], res[2*k+1])
				}
			}
			for _, ref := range refs {
				out, stderr, code := runCLI(t, "check", "--plain-http", ref, "--platform", "linux/amd64/v3", "--features", v3)
				if code != 0 || !strings.Contains(out, "COMPATIBLE") {
					t.Errorf("check %s: exit %d: %s%s", ref, code, out, stderr)
				}
			}

			// The worker repository refuses manifests: api and cron are attached, worker is named.
			reg.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v2/worker/manifests/") {
					http.Error(w, `{"errors":[{"code":"DENIED","message":"quota exceeded"}]}`, http.StatusForbidden)
					return true
				}
				return false
			})
			defer reg.SetHook(nil)
			out, stderr, code = runCLI(t, append(append([]string{"attach", "--plain-http"}, refs...), "--spec", specFile)...)
			if code != 1 || !strings.Contains(stderr, "worker:1.0") || !strings.Contains(stderr, "1 of 3 images failed") {
				t.Fatalf("worker refused: exit %d: %s", code, stderr)
			}
			if strings.Count(out, "Attached ") != 4 || strings.Contains(out, "/worker@") {
				t.Errorf("worker refused: stdout:\n%s", out)
			}
		})
	}
}
