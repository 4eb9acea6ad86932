package report

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/oci"
)

// OCISource opens images from registries (or OCI layouts) with pkg/oci and pkg/decide. It keeps
// what it opened, so that SBOMs reuses it. It is safe for concurrent use.
type OCISource struct {
	// Options say how to reach the registries.
	Options oci.Options
	// PlainHTTPHosts lists registry hosts ("localhost:5000") reached over plain HTTP while the
	// others use HTTPS (Options.PlainHTTP makes every registry plain HTTP).
	PlainHTTPHosts []string
	// Trust is the trust policy: only specs it verifies count (nil: none).
	Trust *decide.Trust

	mu     sync.Mutex
	images map[string]*decide.Image
}

// NormalizeReference completes a reference as Kubernetes and Docker read it: a reference whose
// first component is not a registry host (no '.', ':' nor "localhost") is on docker.io, and a
// single-component repository there is under library/ ("nginx:1.25" →
// "docker.io/library/nginx:1.25"). OCI layout references are returned unchanged.
func NormalizeReference(ref string) string {
	first, rest, ok := strings.Cut(ref, "/")
	if !ok {
		return "docker.io/library/" + ref
	}
	if strings.ContainsAny(first, ".:") || first == "localhost" {
		return ref
	}
	return "docker.io/" + first + "/" + rest
}

// Open implements Source.
func (s *OCISource) Open(ctx context.Context, ref string) (*decide.Image, error) {
	s.mu.Lock()
	if img, ok := s.images[ref]; ok {
		s.mu.Unlock()
		return img, nil
	}
	s.mu.Unlock()
	name := ref
	if !s.Options.OCILayout {
		name = NormalizeReference(ref)
	}
	opts := s.Options
	if host, _, _ := strings.Cut(name, "/"); !opts.OCILayout && slices.Contains(s.PlainHTTPHosts, host) {
		opts.PlainHTTP = true
	}
	t, err := oci.Open(ctx, name, opts)
	if err != nil {
		return nil, err
	}
	img, err := decide.Open(ctx, t, s.Trust)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.images == nil {
		s.images = map[string]*decide.Image{}
	}
	s.images[ref] = img
	s.mu.Unlock()
	return img, nil
}
