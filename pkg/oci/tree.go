package oci

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Limits of Tree, so that a hostile or broken index cannot make a reader fetch without end.
const (
	// MaxIndexDepth is how many levels of nested indexes below the root Tree descends.
	MaxIndexDepth = 4
	// MaxIndexEntries is how many descriptors (manifests and nested indexes together) Tree accepts
	// in one image.
	MaxIndexEntries = 4096
)

// AnnotationReferenceType is the annotation BuildKit puts on the attestation manifests it keeps
// inside an image index (value "attestation-manifest"; their platform is unknown/unknown).
const AnnotationReferenceType = "vnd.docker.reference.type"

// IndexEntry is one image manifest that an image index lists, directly or through nested indexes.
type IndexEntry struct {
	// Descriptor of the manifest as its index lists it, with its platform (image-spec v1.1
	// image-index.md). When that descriptor has no platform but the nested index holding it was
	// listed with one, the nested index's platform is filled in.
	Descriptor ocispec.Descriptor
	// Indexes are the indexes above the manifest, the root first and its own index last.
	Indexes []ocispec.Descriptor
	// Position is the manifest's place in a depth-first walk of the tree (index order).
	Position int
}

// Attestation reports whether e is an attestation manifest that BuildKit keeps in the index rather
// than an image: its platform is unknown/unknown or it is annotated
// vnd.docker.reference.type=attestation-manifest.
func (e IndexEntry) Attestation() bool {
	if e.Descriptor.Annotations[AnnotationReferenceType] == "attestation-manifest" {
		return true
	}
	p := e.Descriptor.Platform
	return p != nil && p.OS == "unknown" && p.Architecture == "unknown"
}

// Tree is an image reference resolved down to its manifests: the root (a manifest or an index)
// and, for an index, every index and manifest below it.
type Tree struct {
	// Root is what the reference resolved to.
	Root ocispec.Descriptor
	// Indexes lists every index of the tree, the root first, depth first; empty when Root is a
	// manifest.
	Indexes []ocispec.Descriptor
	// Manifests lists every image manifest below the root in depth-first order (attestation
	// manifests included; see IndexEntry.Attestation); empty when Root is a manifest.
	Manifests []IndexEntry
}

// IsIndex reports whether the tree's root is an index.
func (tr *Tree) IsIndex() bool { return IsIndex(tr.Root.MediaType) }

// Tree fetches the index root (nothing when root is a manifest) and every index nested in it,
// up to MaxIndexDepth levels and MaxIndexEntries descriptors, and returns the manifests they list.
// Descriptors of other media types (artifacts, unknown types) are skipped. Each index is fetched
// once (Target caches by digest); no manifest, config or layer is fetched.
func (t *Target) Tree(ctx context.Context, root ocispec.Descriptor) (*Tree, error) {
	tr := &Tree{Root: root}
	if !IsIndex(root.MediaType) {
		return tr, nil
	}
	seen := map[digest.Digest]bool{}
	count := 0
	var walk func(d ocispec.Descriptor, above []ocispec.Descriptor, depth int) error
	walk = func(d ocispec.Descriptor, above []ocispec.Descriptor, depth int) error {
		if seen[d.Digest] {
			return nil // an index listed twice is walked once
		}
		seen[d.Digest] = true
		idx, err := t.FetchIndex(ctx, d)
		if err != nil {
			return err
		}
		tr.Indexes = append(tr.Indexes, d)
		path := append(append([]ocispec.Descriptor(nil), above...), d)
		for _, m := range idx.Manifests {
			if count++; count > MaxIndexEntries {
				return fmt.Errorf("%w: %s: the index tree lists more than %d descriptors", ErrTooLarge, t.name+"@"+root.Digest.String(), MaxIndexEntries)
			}
			if m.Platform == nil && d.Platform != nil {
				p := *d.Platform
				m.Platform = &p
			}
			switch {
			case IsManifest(m.MediaType):
				tr.Manifests = append(tr.Manifests, IndexEntry{Descriptor: m, Indexes: path, Position: len(tr.Manifests)})
			case IsIndex(m.MediaType):
				if depth >= MaxIndexDepth {
					return fmt.Errorf("%w: %s: indexes nested more than %d levels deep", ErrTooLarge, t.name+"@"+root.Digest.String(), MaxIndexDepth)
				}
				if err := walk(m, path, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(root, nil, 0); err != nil {
		return nil, err
	}
	return tr, nil
}
