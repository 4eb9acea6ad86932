// Package testregistry starts OCI registries for tests and pushes small, real multi-platform
// images to them: an in-process registry with the referrers API (cuelabs.dev/go/oci/ociregistry),
// Debian's docker-registry 2.8 (no referrers API, so clients use the referrers tag schema), and a
// registry that fails every request. Every registry records the requests it receives, so tests
// can assert exactly what a client asked for. Everything listens on 127.0.0.1 only.
package testregistry

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cuelabs.dev/go/oci/ociregistry/ocimem"
	"cuelabs.dev/go/oci/ociregistry/ociserver"
)

// DistributionBinary is the docker-registry binary NewDistribution runs.
var DistributionBinary = "/usr/bin/docker-registry"

// Request is one HTTP request a Registry received.
type Request struct {
	Method string
	Path   string // URL path, e.g. /v2/hello/manifests/v1
	Query  string // raw query, e.g. artifactType=...

	start, end time.Time // when it arrived and when its answer was written
}

// String prints "METHOD PATH[?QUERY]".
func (r Request) String() string {
	s := r.Method + " " + r.Path
	if r.Query != "" {
		s += "?" + r.Query
	}
	return s
}

// Hook can answer a request in place of the registry (to inject faults); it returns true when it
// has written a response.
type Hook func(w http.ResponseWriter, r *http.Request) bool

// Rewrite can change a response of the registry before the client sees it (a hostile or quirky
// registry): it gets the request and the registry's answer and returns the body to send (the
// headers may be changed in place; Content-Length is set from the body).
type Rewrite func(r *http.Request, status int, header http.Header, body []byte) []byte

// Registry is a running test registry behind a recording handler.
type Registry struct {
	server *httptest.Server

	mu      sync.Mutex
	reqs    []Request
	hook    Hook
	rewrite Rewrite
	delay   time.Duration
}

func newRecording(t testing.TB, backend http.Handler) *Registry {
	t.Helper()
	r := &Registry{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testregistry: listen on 127.0.0.1: %v", err)
	}
	r.server = &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		n := len(r.reqs)
		r.reqs = append(r.reqs, Request{Method: req.Method, Path: req.URL.Path, Query: req.URL.RawQuery, start: time.Now()})
		hook, rewrite, delay := r.hook, r.rewrite, r.delay
		r.mu.Unlock()
		defer func() {
			r.mu.Lock()
			if n < len(r.reqs) {
				r.reqs[n].end = time.Now()
			}
			r.mu.Unlock()
		}()
		if delay > 0 {
			time.Sleep(delay)
		}
		if hook != nil && hook(w, req) {
			return
		}
		if rewrite == nil {
			backend.ServeHTTP(w, req)
			return
		}
		rec := httptest.NewRecorder()
		backend.ServeHTTP(rec, req)
		res := rec.Result()
		body := rewrite(req, res.StatusCode, res.Header, rec.Body.Bytes())
		for k, v := range res.Header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(res.StatusCode)
		w.Write(body)
	})}}
	r.server.Start()
	t.Cleanup(r.server.Close)
	return r
}

// NewOCI starts the in-process registry of cuelabs.dev/go/oci/ociregistry (memory storage), which
// implements the referrers API (distribution-spec v1.1).
func NewOCI(t testing.TB) *Registry {
	t.Helper()
	return newRecording(t, ociserver.New(ocimem.New(), nil))
}

// NewFailing starts a server that answers status, with an empty body, to every request.
func NewFailing(t testing.TB, status int) *Registry {
	t.Helper()
	return newRecording(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
	}))
}

// NewDistribution starts DistributionBinary (Debian's docker-registry 2.8, which has no referrers
// API) on a free port of 127.0.0.1 with filesystem storage in t.TempDir() and deletes enabled,
// waits until /v2/ answers, and puts a recording reverse proxy in front of it: Host() is the
// proxy's. The registry stops at t.Cleanup. Without the binary the test is skipped, or fails when
// the environment has CI=true.
func NewDistribution(t testing.TB) *Registry {
	t.Helper()
	if _, err := os.Stat(DistributionBinary); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testregistry: %s not found: install docker-registry (apt-get install docker-registry)", DistributionBinary)
		}
		t.Skipf("testregistry: %s not found: install docker-registry (apt-get install docker-registry) to run this test", DistributionBinary)
	}
	dir := t.TempDir()
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "data"), addr)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	cmd := exec.Command(DistributionBinary, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = &syncWriter{w: &logs}, &syncWriter{w: &logs}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testregistry: starting %s: %v", DistributionBinary, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-done:
			t.Fatalf("testregistry: %s exited: %s", DistributionBinary, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("testregistry: %s did not answer on %s within 15s: %v", DistributionBinary, addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	u, _ := url.Parse("http://" + addr)
	return newRecording(t, httputil.NewSingleHostReverseProxy(u))
}

type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w.Len() > 1<<16 {
		return len(p), nil
	}
	return s.w.Write(p)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testregistry: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Host returns "127.0.0.1:PORT", the registry part of references.
func (r *Registry) Host() string { return strings.TrimPrefix(r.server.URL, "http://") }

// URL returns "http://127.0.0.1:PORT".
func (r *Registry) URL() string { return r.server.URL }

// Requests returns the requests received since the start or the last Reset, in order.
func (r *Registry) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.reqs...)
}

// Reset forgets the recorded requests.
func (r *Registry) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = nil
}

// SetDelay makes the registry wait d before answering each request, as a distant registry does,
// so that Rounds can tell requests sent together from requests sent one after another.
func (r *Registry) SetDelay(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delay = d
}

// Rounds returns the number of round trips reqs took one after another: the longest chain of
// requests each sent after the previous one's answer. Requests sent together count once. Use it
// with SetDelay, so that requests sent together overlap.
func Rounds(reqs []Request) int {
	depth := make([]int, len(reqs))
	most := 0
	for i, r := range reqs {
		depth[i] = 1
		for j, q := range reqs[:i] {
			if !q.end.IsZero() && !q.end.After(r.start) && depth[j]+1 > depth[i] {
				depth[i] = depth[j] + 1
			}
		}
		most = max(most, depth[i])
	}
	return most
}

// SetHook installs h in front of the registry (nil removes it).
func (r *Registry) SetHook(h Hook) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hook = h
}

// SetRewrite installs rw on every response (nil removes it).
func (r *Registry) SetRewrite(rw Rewrite) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rewrite = rw
}

// Client returns a plain HTTP client without retries, suited to these registries.
func Client() *http.Client { return &http.Client{Timeout: 30 * time.Second} }

// ctx is the context test helpers use.
func ctx(t testing.TB) context.Context {
	if c, ok := t.(interface{ Context() context.Context }); ok {
		return c.Context()
	}
	return context.Background()
}
