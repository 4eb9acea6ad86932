// Package signing signs compatibility specs and verifies them against a trust policy, with
// sigstore-go.
//
// A signature is an in-toto v1 Statement (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md)
// in a DSSE envelope (https://github.com/secure-systems-lab/dsse, payloadType
// application/vnd.in-toto+json), in a sigstore bundle v0.3
// (application/vnd.dev.sigstore.bundle.v0.3+json, https://github.com/sigstore/protobuf-specs),
// pushed as an OCI referrer of the image in cosign's layout: artifactType BundleMediaType, the empty
// config, one layer of BundleMediaType holding the bundle JSON, annotations
// dev.sigstore.bundle.content=dsse-envelope and dev.sigstore.bundle.predicateType=PredicateType.
// So `cosign verify-attestation --type PredicateType` and Kyverno verify it as well.
//
// The statement's subject is the image digest the spec is attached to (name: the repository); its
// predicate (PredicateType) holds the spec as a JSON object and the digest and media type of the
// spec's referrer manifest. Verification first checks the signature (keys or keyless identities of
// a Policy, through sigstore-go's verify.Verifier), then binds statement to spec: the subject must
// be the image being read (else ErrReplayed), the predicate must name the referrer being read (else
// ErrSwapped), and the signed spec must equal the fetched one (else ErrTampered).
package signing

import (
	"encoding/json"
	"fmt"

	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/spec"
)

// Media types, URIs and annotations of compatkit signatures.
const (
	// PredicateType is the in-toto predicateType of compatkit statements (versioned URI).
	PredicateType = "https://compatkit.dev/attestations/image-compatibility/v1"
	// StatementType is the in-toto v1 statement _type, which compatkit writes.
	StatementType = "https://in-toto.io/Statement/v1"
	// StatementTypeV01 is the in-toto v0.1 statement _type, which `cosign attest` writes by
	// default; it has the same fields, and compatkit reads it too.
	StatementTypeV01 = "https://in-toto.io/Statement/v0.1"
	// PayloadType is the DSSE payloadType of an in-toto statement.
	PayloadType = "application/vnd.in-toto+json"
	// BundleMediaType is the media type of a sigstore bundle v0.3, the artifactType of the bundle
	// referrer manifest and the media type of its only layer (cosign's layout).
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// AnnotationBundleContent says what the bundle holds ("dsse-envelope"), as cosign writes it.
	AnnotationBundleContent = "dev.sigstore.bundle.content"
	// AnnotationBundlePredicateType is the predicateType of the bundle's statement, as cosign writes it.
	AnnotationBundlePredicateType = "dev.sigstore.bundle.predicateType"
	// AnnotationSpecReferrer is compatkit's (unsigned) hint on a bundle referrer naming the spec
	// referrer it signs; verification never trusts it, it only pairs bundles with specs so that a
	// relabelled bundle is reported as a swap.
	AnnotationSpecReferrer = "dev.compatkit.spec.referrer"
)

// Statement is an in-toto v1 statement with compatkit's predicate.
type Statement struct {
	Type          string    `json:"_type"`
	Subject       []Subject `json:"subject"`
	PredicateType string    `json:"predicateType"`
	Predicate     Predicate `json:"predicate"`
}

// Subject is an in-toto v1 ResourceDescriptor naming the image.
type Subject struct {
	// Name is the repository ("registry/repository") or layout path.
	Name string `json:"name"`
	// Digest maps algorithm to hex, {"sha256": "<hex>"}.
	Digest map[string]string `json:"digest"`
}

// Predicate is compatkit's predicate: the spec, its referrer manifest and, for a manifest of an
// index, the platform the spec was signed for.
type Predicate struct {
	// Spec is the NFD v1alpha1 spec as a JSON object.
	Spec *spec.Spec `json:"spec"`
	// Referrer is the spec's referrer manifest.
	Referrer ReferrerDescriptor `json:"referrer"`
	// Platform is the platform of the subject ("os/arch[/variant]", as the index listed it when
	// the spec was signed); empty for an index, a single manifest or an older statement. An index
	// entry's platform is not signed by anything else: a reader that finds the subject listed
	// under another platform does not take the spec as verified (ErrWrongPlatform), so that a
	// pusher cannot relabel a v3 build as linux/amd64 and have its signed spec still count.
	Platform string `json:"platform,omitempty"`
}

// ReferrerDescriptor names the spec's referrer manifest (an OCI descriptor's identifying fields).
type ReferrerDescriptor struct {
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
}

// NewStatement builds the statement signing s, attached as referrer to subject in repository name.
// When subject is an index entry with a platform, the predicate records it (Predicate.Platform).
func NewStatement(name string, subject, referrer ocispec.Descriptor, s *spec.Spec) (*Statement, error) {
	if err := subject.Digest.Validate(); err != nil || subject.Digest.Algorithm() != digest.SHA256 {
		return nil, fmt.Errorf("statement subject %s: want a sha256 digest", subject.Digest)
	}
	if err := referrer.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("statement referrer %s: %v", referrer.Digest, err)
	}
	if s == nil {
		return nil, fmt.Errorf("statement for %s@%s: no spec", name, subject.Digest)
	}
	return &Statement{
		Type:          StatementType,
		Subject:       []Subject{{Name: name, Digest: map[string]string{"sha256": subject.Digest.Encoded()}}},
		PredicateType: PredicateType,
		Predicate: Predicate{
			Spec:     s,
			Referrer: ReferrerDescriptor{MediaType: referrer.MediaType, Digest: referrer.Digest, Size: referrer.Size},
			Platform: platformOf(subject),
		},
	}, nil
}

// platformOf is the platform an index lists subject under, normalised (containerd's rules:
// "x86_64" is amd64, arm64 without variant is v8), "" when it has none.
func platformOf(subject ocispec.Descriptor) string {
	if subject.Platform == nil || subject.Platform.Architecture == "" {
		return ""
	}
	p := platforms.Normalize(*subject.Platform)
	return oci.FormatPlatform(&p)
}

// Marshal returns the statement's JSON, the DSSE payload.
func (st *Statement) Marshal() ([]byte, error) { return json.Marshal(st) }

// parseStatement decodes a DSSE payload as a compatkit statement.
func parseStatement(payload []byte) (*Statement, error) {
	var st Statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("%w: the statement does not decode: %v", ErrInvalidBundle, err)
	}
	if st.Type != StatementType && st.Type != StatementTypeV01 {
		return nil, fmt.Errorf("%w: statement _type %q, want %s (or %s)", ErrInvalidBundle, st.Type, StatementType, StatementTypeV01)
	}
	if st.PredicateType != PredicateType {
		return nil, fmt.Errorf("%w: predicateType %q, want %s", ErrInvalidBundle, st.PredicateType, PredicateType)
	}
	return &st, nil
}

// hasSubject reports whether the statement's subjects include d.
func (st *Statement) hasSubject(d digest.Digest) bool {
	for _, s := range st.Subject {
		if s.Digest[string(d.Algorithm())] == d.Encoded() {
			return true
		}
	}
	return false
}

// subjects lists the statement's subject digests, for messages.
func (st *Statement) subjects() []string {
	var out []string
	for _, s := range st.Subject {
		for alg, hex := range s.Digest {
			out = append(out, s.Name+"@"+alg+":"+hex)
		}
	}
	return out
}
