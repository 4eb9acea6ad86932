package decide

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/signing"
	"github.com/compatkit/compatkit/pkg/spec"
)

// BuildKit's annotations on the attestation manifests it keeps in an image index, and on their
// layers (https://docs.docker.com/build/metadata/attestations/attestation-storage/).
const (
	// AnnotationReferenceDigest names the image manifest an attestation manifest describes.
	AnnotationReferenceDigest = "vnd.docker.reference.digest"
	// AnnotationPredicateType is the in-toto predicateType of an attestation layer.
	AnnotationPredicateType = "in-toto.io/predicate-type"
	// MediaTypeInToto is the media type of an attestation layer (an in-toto statement).
	MediaTypeInToto = "application/vnd.in-toto+json"
)

// ErrNotBuildAttested means an attestation manifest holds no compatkit attestation.
var ErrNotBuildAttested = errors.New("no compatibility attestation")

// Attested is a spec that a build attached to an image as an in-toto attestation (compatkit's
// BuildKit frontend): BuildKit keeps the attestation manifest in the image index, annotated
// vnd.docker.reference.type=attestation-manifest and vnd.docker.reference.digest=<image manifest>.
type Attested struct {
	// Subject is the image manifest the attestation describes, as the index lists it.
	Subject ocispec.Descriptor
	// Manifest is the attestation manifest.
	Manifest ocispec.Descriptor
	// Layer is the attestation layer holding the statement.
	Layer ocispec.Descriptor
	// Spec is the attested spec.
	Spec *spec.Spec
	// Platform is the platform the predicate names.
	Platform string
}

// attestationsOf maps each image manifest of tree to the attestation manifests BuildKit lists for
// it in the index.
func attestationsOf(tree *oci.Tree) map[digest.Digest][]ocispec.Descriptor {
	out := map[digest.Digest][]ocispec.Descriptor{}
	for _, e := range tree.Manifests {
		if !e.Attestation() {
			continue
		}
		d, err := digest.Parse(e.Descriptor.Annotations[AnnotationReferenceDigest])
		if err != nil {
			continue
		}
		out[d] = append(out[d], e.Descriptor)
	}
	return out
}

// readAttested reads the compatkit attestation of subject from the attestation manifest att: the
// manifest, then its layer annotated with signing.PredicateType (an in-toto statement whose subject
// must be subject), whose predicate's spec is parsed as every spec is. ErrNotBuildAttested when the
// manifest has no such layer.
func readAttested(ctx context.Context, t *oci.Target, subject, att ocispec.Descriptor) (*Attested, error) {
	m, err := t.FetchManifest(ctx, att)
	if err != nil {
		return nil, err
	}
	src := t.Name() + "@" + att.Digest.String()
	for _, l := range m.Layers {
		if l.Annotations[AnnotationPredicateType] != signing.PredicateType {
			continue
		}
		data, err := t.FetchBlob(ctx, l, 2*spec.MaxSpecBytes)
		if err != nil {
			return nil, err
		}
		var st struct {
			Type          string `json:"_type"`
			PredicateType string `json:"predicateType"`
			Subject       []struct {
				Digest map[string]string `json:"digest"`
			} `json:"subject"`
			Predicate struct {
				Spec     json.RawMessage `json:"spec"`
				Platform string          `json:"platform"`
			} `json:"predicate"`
		}
		if err := json.Unmarshal(data, &st); err != nil {
			return nil, fmt.Errorf("%w: %s: the attestation layer %s is not an in-toto statement: %v", oci.ErrInvalidArtifact, src, l.Digest, err)
		}
		if st.PredicateType != signing.PredicateType {
			return nil, fmt.Errorf("%w: %s: layer %s is annotated %s but its statement says %q", oci.ErrInvalidArtifact, src, l.Digest, signing.PredicateType, st.PredicateType)
		}
		found := false
		for _, s := range st.Subject {
			found = found || s.Digest[subject.Digest.Algorithm().String()] == subject.Digest.Encoded()
		}
		if !found {
			return nil, fmt.Errorf("%w: %s: the attestation's statement does not name %s as its subject", oci.ErrWrongSubject, src, subject.Digest)
		}
		if len(st.Predicate.Spec) == 0 || string(st.Predicate.Spec) == "null" {
			return nil, fmt.Errorf("%w: %s: the attestation's predicate holds no spec", oci.ErrInvalidArtifact, src)
		}
		s, err := spec.Parse(st.Predicate.Spec, src)
		if err != nil {
			return nil, err
		}
		return &Attested{Subject: subject, Manifest: att, Layer: l, Spec: s, Platform: st.Predicate.Platform}, nil
	}
	return nil, fmt.Errorf("%w in %s", ErrNotBuildAttested, src)
}

// BuildAttested returns the specs that builds attached to the image's manifests as attestations
// (compatkit's BuildKit frontend), in index order; an attestation that cannot be read is an error.
// They are unsigned: under a trust policy they do not count (sign them as NFD referrers with
// `compat-attach attach --from-attestations --sign`).
func (img *Image) BuildAttested(ctx context.Context) ([]Attested, error) {
	t := img.reader.target
	if t == nil {
		return nil, nil
	}
	atts := attestationsOf(img.Tree)
	var out []Attested
	for _, e := range img.Tree.Manifests {
		if e.Attestation() {
			continue
		}
		for _, a := range atts[e.Descriptor.Digest] {
			got, err := readAttested(ctx, t, e.Descriptor, a)
			if errors.Is(err, ErrNotBuildAttested) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, *got)
		}
	}
	return out, nil
}
