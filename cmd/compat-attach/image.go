package main

import (
	"context"
	"fmt"
	"path/filepath"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/compatkit/compatkit/pkg/oci"
)

// isIndex reports whether desc is an image index (OCI or Docker manifest list).
func isIndex(desc ocispec.Descriptor) bool {
	return desc.MediaType == ocispec.MediaTypeImageIndex ||
		desc.MediaType == "application/vnd.docker.distribution.manifest.list.v2+json"
}

// resolved is IMAGE resolved: the root descriptor, its index when it is one, and the manifest
// chosen for a platform (equal to root for a single manifest).
type resolved struct {
	target   *oci.Target
	root     ocispec.Descriptor
	index    *ocispec.Index
	manifest ocispec.Descriptor
	platform string
}

// resolveImage opens IMAGE and, for an index, picks the manifest of platform ("" = keep the
// index as the subject).
func resolveImage(ctx context.Context, image string, topts *targetOptions, platform string) (*resolved, error) {
	if err := topts.guardLayout(image); err != nil {
		return nil, err
	}
	t, err := oci.Open(ctx, image, topts.options())
	if err != nil {
		return nil, err
	}
	root, err := t.Resolve(ctx)
	if err != nil {
		return nil, err
	}
	r := &resolved{target: t, root: root, manifest: root, platform: platform}
	if !isIndex(root) {
		return r, nil
	}
	if r.index, err = t.FetchIndex(ctx, root); err != nil {
		return nil, err
	}
	if platform != "" {
		if r.manifest, err = oci.SelectPlatform(r.index, platform); err != nil {
			return nil, withNext(fmt.Errorf("%s: %w", image, err), "pick one of the index's platforms with --platform")
		}
	}
	return r, nil
}

// ref prints REPO@DIGEST.
func (r *resolved) ref(d ocispec.Descriptor) string {
	return r.target.Name() + "@" + d.Digest.String()
}

// filepathAbs is filepath.Abs (kept here so option files need no extra import).
func filepathAbs(p string) (string, error) { return filepath.Abs(p) }
