package report

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/compatkit/compatkit/pkg/oci"
)

// OCISource fetches images and specs from registries (or OCI layouts) with pkg/oci. It keeps what
// it resolved, so that SBOMs reuses it. It is safe for concurrent use.
type OCISource struct {
	// Options say how to reach the registries.
	Options oci.Options
	// PlainHTTPHosts lists registry hosts ("localhost:5000") reached over plain HTTP while the
	// others use HTTPS (Options.PlainHTTP makes every registry plain HTTP).
	PlainHTTPHosts []string

	mu     sync.Mutex
	images map[string]*resolvedImage
}

type resolvedImage struct {
	target *oci.Target
	root   ocispec.Descriptor
	index  *ocispec.Index
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

func (s *OCISource) resolve(ctx context.Context, ref string) (*resolvedImage, error) {
	s.mu.Lock()
	if r, ok := s.images[ref]; ok {
		s.mu.Unlock()
		return r, nil
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
	root, err := t.Resolve(ctx)
	if err != nil {
		return nil, err
	}
	r := &resolvedImage{target: t, root: root}
	if isIndex(root.MediaType) {
		if r.index, err = t.FetchIndex(ctx, root); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	if s.images == nil {
		s.images = map[string]*resolvedImage{}
	}
	s.images[ref] = r
	s.mu.Unlock()
	return r, nil
}

func isIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == "application/vnd.docker.distribution.manifest.list.v2+json"
}

// Fetch implements Source.
func (s *OCISource) Fetch(ctx context.Context, ref string, platforms []string) (*Fetched, error) {
	r, err := s.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	subject := func(d ocispec.Descriptor, platform string) *Subject {
		sub := &Subject{Digest: d.Digest.String(), Platform: platform}
		sp, _, err := r.target.NewestSpec(ctx, d)
		switch {
		case errors.Is(err, oci.ErrNoSpec):
		case err != nil:
			sub.Err = err
		default:
			sub.Spec = sp
		}
		return sub
	}
	f := &Fetched{Digest: r.root.Digest.String()}
	if r.index == nil {
		f.Manifest = subject(r.root, "")
		return f, nil
	}
	f.Index = subject(r.root, "")
	f.Platforms = map[string]*Subject{}
	byDigest := map[string]*Subject{}
	for _, p := range platforms {
		d, err := oci.SelectPlatform(r.index, p)
		if err != nil {
			if errors.Is(err, oci.ErrNoPlatform) {
				continue
			}
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		if sub, ok := byDigest[d.Digest.String()]; ok {
			f.Platforms[p] = sub
			continue
		}
		pl := p
		if d.Platform != nil {
			pl = oci.FormatPlatform(d.Platform)
		}
		sub := subject(d, pl)
		byDigest[d.Digest.String()] = sub
		f.Platforms[p] = sub
	}
	return f, nil
}
