package report

import (
	"context"
	"sort"
	"strings"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/spec"
)

// SBOM is a software bill of materials attached to an image: an OCI referrer of an SBOM type, or
// a BuildKit attestation manifest of the image's index with an SBOM predicate.
type SBOM struct {
	// Subject is the digest of the manifest or index the SBOM describes.
	Subject string `json:"subject"`
	// Platform of Subject, when it is a manifest of an index.
	Platform string `json:"platform,omitempty"`
	// Format is "spdx" or "cyclonedx".
	Format string `json:"format"`
	// Source is "referrer" (an OCI 1.1 referrer) or "attestation" (a BuildKit attestation manifest
	// in the index: annotation vnd.docker.reference.type=attestation-manifest).
	Source string `json:"source"`
	// Type is the referrer's artifactType or layer media type, or the attestation's in-toto
	// predicate type.
	Type string `json:"type"`
	// Manifest is the digest of the referrer or attestation manifest.
	Manifest string `json:"manifest"`
	// Layer is the digest of the layer holding the document, when known.
	Layer string `json:"layer,omitempty"`
}

// SBOMLister lists the SBOMs of an image; OCISource implements it.
type SBOMLister interface {
	// SBOMs lists the SBOMs attached to ref's subjects (digests of the image's root or of
	// manifests of its index).
	SBOMs(ctx context.Context, ref string, subjects []string) ([]SBOM, error)
}

// BuildKit's attestation annotations (docs.docker.com/build/metadata/attestations/attestation-storage).
const (
	AnnotationReferenceType   = "vnd.docker.reference.type"
	AnnotationReferenceDigest = "vnd.docker.reference.digest"
	AttestationManifest       = "attestation-manifest"
	AnnotationPredicateType   = "in-toto.io/predicate-type"
)

// SBOMFormat classifies a media type or an in-toto predicate type: "spdx", "cyclonedx" or "".
func SBOMFormat(t string) string {
	t = strings.ToLower(t)
	switch {
	case strings.HasPrefix(t, "application/spdx"), strings.HasPrefix(t, "text/spdx"),
		strings.HasPrefix(t, "https://spdx.dev/document"):
		return "spdx"
	case strings.HasPrefix(t, "application/vnd.cyclonedx"), strings.HasPrefix(t, "https://cyclonedx.org/bom"):
		return "cyclonedx"
	}
	return ""
}

// notSBOM lists artifact types that are known not to be SBOMs, whose manifests are not fetched.
var notSBOM = map[string]bool{
	spec.ArtifactType: true,
	"application/vnd.dev.sigstore.bundle.v0.3+json":   true,
	"application/vnd.dev.cosign.artifact.sig.v1+json": true,
}

// SBOMs implements SBOMLister: referrers of each subject whose artifactType (or, when that says
// nothing, config or layer media type) is SPDX or CycloneDX, and the BuildKit attestation
// manifests of the index that reference a subject and carry SBOM predicates.
func (s *OCISource) SBOMs(ctx context.Context, ref string, subjects []string) ([]SBOM, error) {
	img, err := s.Open(ctx, ref)
	if err != nil {
		return nil, err
	}
	target := img.Reader().Target()
	descs := map[string]ocispec.Descriptor{img.Tree.Root.Digest.String(): img.Tree.Root}
	var attestations []ocispec.Descriptor
	for _, m := range img.Tree.Manifests {
		descs[m.Descriptor.Digest.String()] = m.Descriptor
		if m.Descriptor.Annotations[AnnotationReferenceType] == AttestationManifest {
			attestations = append(attestations, m.Descriptor)
		}
	}
	var out []SBOM
	for _, sub := range subjects {
		d, ok := descs[sub]
		if !ok {
			continue
		}
		platform := ""
		if d.Platform != nil {
			platform = oci.FormatPlatform(d.Platform)
		}
		refs, err := target.Referrers(ctx, d, "")
		if err != nil {
			return nil, err
		}
		for _, rd := range refs {
			if notSBOM[rd.ArtifactType] {
				continue
			}
			if f := SBOMFormat(rd.ArtifactType); f != "" {
				sb := SBOM{Subject: sub, Platform: platform, Format: f, Source: "referrer", Type: rd.ArtifactType, Manifest: rd.Digest.String()}
				if rd.MediaType == ocispec.MediaTypeImageManifest {
					if m, err := target.FetchManifest(ctx, rd); err == nil && len(m.Layers) > 0 {
						sb.Layer = m.Layers[0].Digest.String()
					}
				}
				out = append(out, sb)
				continue
			}
			if rd.MediaType != ocispec.MediaTypeImageManifest {
				continue
			}
			m, err := target.FetchManifest(ctx, rd)
			if err != nil {
				return nil, err
			}
			if f := SBOMFormat(m.Config.MediaType); f != "" && len(m.Layers) > 0 {
				out = append(out, SBOM{Subject: sub, Platform: platform, Format: f, Source: "referrer", Type: m.Config.MediaType, Manifest: rd.Digest.String(), Layer: m.Layers[0].Digest.String()})
				continue
			}
			for _, l := range m.Layers {
				if f := SBOMFormat(l.MediaType); f != "" {
					out = append(out, SBOM{Subject: sub, Platform: platform, Format: f, Source: "referrer", Type: l.MediaType, Manifest: rd.Digest.String(), Layer: l.Digest.String()})
				}
			}
		}
		for _, am := range attestations {
			if am.Annotations[AnnotationReferenceDigest] != sub {
				continue
			}
			m, err := target.FetchManifest(ctx, am)
			if err != nil {
				return nil, err
			}
			for _, l := range m.Layers {
				pt := l.Annotations[AnnotationPredicateType]
				if f := SBOMFormat(pt); f != "" {
					out = append(out, SBOM{Subject: sub, Platform: platform, Format: f, Source: "attestation", Type: pt, Manifest: am.Digest.String(), Layer: l.Digest.String()})
				}
			}
		}
	}
	return out, nil
}

// listSBOMs fills rep.Images[i].SBOMs for every image that runs on some node, concurrently; an
// error is recorded in the image's SBOMError. The subjects are the image's root and the manifests
// chosen for the nodes it runs on.
func listSBOMs(ctx context.Context, l SBOMLister, rep *Report, opened []*decide.Image, conc int) {
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i := range rep.Images {
		row := &rep.Images[i]
		img := opened[i]
		if img == nil || row.Totals.Compatible+row.Totals.NoSpec == 0 {
			continue
		}
		root := img.Tree.Root.Digest.String()
		subjects := []string{root}
		seen := map[string]bool{root: true}
		for _, c := range rep.table[rep.rowOf[i]] {
			if !c.Status.Runs() || c.Position < 0 || c.Position >= len(img.Tree.Manifests) {
				continue
			}
			if d := img.Tree.Manifests[c.Position].Descriptor.Digest.String(); !seen[d] {
				seen[d] = true
				subjects = append(subjects, d)
			}
		}
		sort.Strings(subjects[1:])
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var err error
			if row.SBOMs, err = l.SBOMs(ctx, row.Ref, subjects); err != nil {
				row.SBOMError = err.Error()
			}
		}()
	}
	wg.Wait()
}
