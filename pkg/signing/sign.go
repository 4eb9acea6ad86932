package signing

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"google.golang.org/protobuf/encoding/protojson"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/errdef"

	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/spec"
)

// Signer makes sigstore bundles v0.3 around DSSE envelopes, with a long-lived key (KeySigner) or
// keyless (NewKeylessSigner: an ephemeral key and a Fulcio certificate), optionally logged in Rekor
// and timestamped by a timestamp authority. It is sigstore-go's sign.Bundle with its options.
type Signer struct {
	// Keypair signs; *Keypair for a key file, sign.EphemeralKeypair for keyless.
	Keypair sign.Keypair
	// CertificateProvider issues the signing certificate (sign.Fulcio, or a local CA in tests);
	// nil signs with the key alone (the bundle carries the key hint).
	CertificateProvider sign.CertificateProvider
	// IDToken is the OIDC identity token sent to the CertificateProvider.
	IDToken string
	// TransparencyLogs are the Rekor instances to log the signature in (sign.Rekor).
	TransparencyLogs []sign.Transparency
	// TimestampAuthorities are the RFC 3161 timestamp authorities to timestamp it (sign.TimestampAuthority).
	TimestampAuthorities []*sign.TimestampAuthority
	// TrustedMaterial, when not nil, is used to verify each bundle right after signing it.
	TrustedMaterial root.TrustedMaterial
	// Identity describes the signer for people: the key hint, or the certificate's SAN and issuer.
	Identity string
}

// KeySigner signs with a long-lived key: the bundle's verification material is the key hint
// (KeyHint), and verification needs the public key (cosign verify-attestation --key).
func KeySigner(s crypto.Signer) (*Signer, error) {
	kp, err := NewKeypair(s)
	if err != nil {
		return nil, err
	}
	return &Signer{Keypair: kp, Identity: "key " + string(kp.GetHint())}, nil
}

// SignStatement signs payload (an in-toto statement, DSSE payloadType PayloadType) and returns the
// sigstore bundle v0.3 as JSON.
func (s *Signer) SignStatement(ctx context.Context, payload []byte) ([]byte, error) {
	if s == nil || s.Keypair == nil {
		return nil, errors.New("signing: no key")
	}
	opts := sign.BundleOptions{
		Context:              ctx,
		CertificateProvider:  s.CertificateProvider,
		TransparencyLogs:     s.TransparencyLogs,
		TimestampAuthorities: s.TimestampAuthorities,
		TrustedRoot:          s.TrustedMaterial,
	}
	if s.CertificateProvider != nil {
		opts.CertificateProviderOptions = &sign.CertificateProviderOptions{IDToken: s.IDToken}
	}
	b, err := sign.Bundle(&sign.DSSEData{Data: payload, PayloadType: PayloadType}, s.Keypair, opts)
	if err != nil {
		if s.CertificateProvider != nil {
			// sigstore-go reads the identity token before asking Fulcio; its errors do not say so.
			return nil, fmt.Errorf("%s: signing failed (check the identity token and that Fulcio answers): %w", s.Identity, err)
		}
		return nil, err
	}
	return protojson.Marshal(b)
}

// PushBundle pushes bundleJSON as a referrer of subject in cosign's layout (see the package
// documentation), with created as org.opencontainers.image.created (now when zero) and, when not
// empty, the AnnotationSpecReferrer hint (in an OCI layout, under the layout's lock: oci.Target.Write).
// It returns the bundle referrer's descriptor.
func PushBundle(ctx context.Context, t *oci.Target, subject ocispec.Descriptor, bundleJSON []byte, specReferrer digest.Digest, created time.Time) (ocispec.Descriptor, error) {
	var desc ocispec.Descriptor
	err := t.Write(ctx, func(store oras.GraphTarget) error {
		var err error
		desc, err = pushBundle(ctx, t, store, subject, bundleJSON, specReferrer, created)
		return err
	})
	return desc, err
}

// pushBundle is PushBundle's work, under the target's Write.
func pushBundle(ctx context.Context, t *oci.Target, store oras.GraphTarget, subject ocispec.Descriptor, bundleJSON []byte, specReferrer digest.Digest, created time.Time) (ocispec.Descriptor, error) {
	layer := content.NewDescriptorFromBytes(BundleMediaType, bundleJSON)
	if err := store.Push(ctx, layer, bytes.NewReader(bundleJSON)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		return ocispec.Descriptor{}, fmt.Errorf("pushing the signature bundle blob to %s: %w", t.Name(), err)
	}
	if created.IsZero() {
		created = time.Now()
	}
	ann := map[string]string{
		AnnotationBundleContent:       "dsse-envelope",
		AnnotationBundlePredicateType: PredicateType,
		ocispec.AnnotationCreated:     created.UTC().Format(time.RFC3339),
	}
	if specReferrer != "" {
		ann[AnnotationSpecReferrer] = specReferrer.String()
	}
	opts := oras.PackManifestOptions{Subject: &subject, Layers: []ocispec.Descriptor{layer}, ManifestAnnotations: ann}
	desc, err := oras.PackManifest(ctx, store, oras.PackManifestVersion1_1, BundleMediaType, opts)
	if errors.Is(err, errdef.ErrAlreadyExists) {
		desc, err = oras.PackManifest(ctx, memory.New(), oras.PackManifestVersion1_1, BundleMediaType, opts)
	}
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("pushing the signature of %s@%s: %w", t.Name(), subject.Digest, err)
	}
	if err := t.EnsureListed(ctx, subject, desc); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("the signature of %s@%s: %w", t.Name(), subject.Digest, err)
	}
	return desc, nil
}

// Signature is what Sign pushed.
type Signature struct {
	// Subject is the image manifest or index signed for.
	Subject ocispec.Descriptor
	// SpecReferrer is the spec referrer the statement names.
	SpecReferrer ocispec.Descriptor
	// Bundle is the bundle referrer manifest.
	Bundle ocispec.Descriptor
	// Statement is the signed in-toto statement; nil when Existing.
	Statement *Statement
	// Existing is true when the spec was already signed by this key: Bundle is that bundle and
	// nothing was pushed.
	Existing bool
}

// SignOptions tune Sign.
type SignOptions struct {
	// Created is the bundle's org.opencontainers.image.created; zero means now.
	Created time.Time
	// SignatureRepository receives the bundle when signatures are kept apart from the image
	// (cosign's COSIGN_REPOSITORY); nil means the image's own repository.
	SignatureRepository *oci.Target
}

// Sign signs the spec referrer specReferrer of subject and pushes the bundle as a referrer of
// subject. It first fetches the spec referrer (so a signature never names something that does not
// exist), checks that it is attached to subject, that it is not dated beyond oci.MaxClockSkew in the
// future (a spec dated 2099 would stay the newest forever) and, when want is not nil, that its
// spec equals want; the statement carries the spec as fetched. A spec this signer's key already
// signed is not signed again: the Signature returned is the existing bundle's (Existing).
func Sign(ctx context.Context, t *oci.Target, subject, specReferrer ocispec.Descriptor, want *spec.Spec, s *Signer, opts SignOptions) (*Signature, error) {
	where := t.Name() + "@" + specReferrer.Digest.String()
	got, m, err := t.FetchSpec(ctx, specReferrer)
	if err != nil {
		return nil, fmt.Errorf("signing %s: %w", where, err)
	}
	if m.Subject == nil || m.Subject.Digest != subject.Digest {
		return nil, fmt.Errorf("%w: signing %s: it is not attached to %s", ErrWrongSubject, where, subject.Digest)
	}
	if c, ok := oci.Created(ocispec.Descriptor{Annotations: m.Annotations}); ok {
		if _, ok := oci.CreatedBefore(ocispec.Descriptor{Annotations: m.Annotations}, time.Now()); !ok {
			return nil, fmt.Errorf("%w: signing %s: it is dated %s, in the future: a signed spec dated ahead would stay the newest; attach it again with the right time", ErrFutureDated, where, c.UTC().Format(time.RFC3339))
		}
	}
	if want != nil && !specEqual(want, got) {
		return nil, fmt.Errorf("%w: signing %s: the spec in the registry differs from the one attached", ErrTampered, where)
	}
	sigT := opts.SignatureRepository
	if sigT == nil {
		sigT = t
	}
	if sig := s.existingSignature(ctx, t, sigT, subject, specReferrer); sig != nil {
		return sig, nil // signing again would only add a second bundle
	}
	st, err := NewStatement(t.Name(), subject, specReferrer, got)
	if err != nil {
		return nil, err
	}
	payload, err := st.Marshal()
	if err != nil {
		return nil, err
	}
	bj, err := s.SignStatement(ctx, payload)
	if err != nil {
		return nil, fmt.Errorf("signing %s: %w", where, err)
	}
	bd, err := PushBundle(ctx, sigT, subject, bj, specReferrer.Digest, opts.Created)
	if err != nil {
		return nil, err
	}
	return &Signature{Subject: subject, SpecReferrer: specReferrer, Bundle: bd, Statement: st}, nil
}

// existingSignature returns the bundle that already signs specReferrer for subject with this
// signer's key, or nil. Keyless signers get a new certificate each time: they always sign.
func (s *Signer) existingSignature(ctx context.Context, t, sigT *oci.Target, subject, specReferrer ocispec.Descriptor) *Signature {
	if s.CertificateProvider != nil || s.Keypair == nil {
		return nil
	}
	pem, err := MarshalPublicKey(s.Keypair.GetPublicKey())
	if err != nil {
		return nil
	}
	v, err := (&Policy{Keys: []PolicyKey{{PEM: string(pem)}}}).Compile(ctx)
	if err != nil {
		return nil
	}
	vo := VerifyOptions{}
	if sigT != t {
		vo.SignatureRepository = sigT
	}
	res, err := VerifySpecs(ctx, t, subject, v, vo)
	if err != nil {
		return nil
	}
	for _, st := range res.Specs {
		if st.Verified && st.Referrer.Digest == specReferrer.Digest {
			return &Signature{Subject: subject, SpecReferrer: st.Referrer, Bundle: st.Bundle, Existing: true}
		}
	}
	return nil
}
