package signing

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"oras.land/oras-go/v2/content"

	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/spec"
)

// MaxBundleBytes is the largest bundle layer fetched (checked on the descriptor before download).
const MaxBundleBytes = 1 << 20

// VerifyBundle checks a sigstore bundle v0.3 (JSON) against the policy: the DSSE signature with a
// policy key (sigstore-go verify.WithKey, no observer timestamp unless the policy requires a
// transparency log), or a certificate chaining to the trusted root (at the time of its
// transparency-log or RFC 3161 timestamp, or now when it has none) whose issuer and SAN match a
// policy identity. It returns the signed statement and who signed it. Errors wrap ErrUntrusted,
// ErrCertificateExpired or ErrInvalidBundle.
func (v *Verifier) VerifyBundle(bundleJSON []byte) (*Statement, string, error) {
	var b bundle.Bundle
	if err := b.UnmarshalJSON(bundleJSON); err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, "", fmt.Errorf("%w: the bundle holds no DSSE envelope", ErrInvalidBundle)
	}
	if env.PayloadType != PayloadType {
		return nil, "", fmt.Errorf("%w: DSSE payloadType %q, want %s", ErrInvalidBundle, env.PayloadType, PayloadType)
	}
	vc, err := b.VerificationContent()
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	var signer string
	if leaf := vc.Certificate(); leaf != nil {
		signer, err = v.verifyKeyless(&b, leaf)
	} else if pk := vc.PublicKey(); pk != nil {
		signer, err = v.verifyKey(&b, pk.Hint())
	} else {
		err = fmt.Errorf("%w: the bundle has neither a certificate nor a public key", ErrInvalidBundle)
	}
	if err != nil {
		return nil, "", err
	}
	st, err := parseStatement(env.Payload)
	if err != nil {
		return nil, "", err
	}
	return st, signer, nil
}

func (v *Verifier) verifyKey(b *bundle.Bundle, hint string) (string, error) {
	if len(v.keys) == 0 {
		return "", fmt.Errorf("%w: signed with key %s, but the policy trusts no key (%s)", ErrUntrusted, hint, v.describe)
	}
	var errs []error
	for _, k := range v.keys {
		k := k
		tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
			return root.NewExpiringKey(k.verifier, time.Time{}, time.Time{}), nil
		})
		var trusted root.TrustedMaterial = tm
		opts := []verify.VerifierOption{verify.WithNoObserverTimestamps()}
		if v.requireTlog {
			if v.trusted == nil {
				return "", fmt.Errorf("%w: the policy requires a transparency log but has no trusted root", ErrUntrusted)
			}
			trusted = root.TrustedMaterialCollection{v.trusted, tm}
			opts = []verify.VerifierOption{verify.WithTransparencyLog(1), verify.WithIntegratedTimestamps(1)}
		}
		sev, err := verify.NewVerifier(trusted, opts...)
		if err != nil {
			return "", err
		}
		if _, err := sev.Verify(b, verify.NewPolicy(verify.WithoutArtifactUnsafe(), verify.WithKey())); err == nil {
			return "key " + k.hint, nil
		} else {
			errs = append(errs, err)
		}
	}
	for _, k := range v.keys {
		if k.hint == hint {
			return "", fmt.Errorf("%w: signature by key %s does not verify: %v", ErrUntrusted, hint, errors.Join(errs...))
		}
	}
	return "", fmt.Errorf("%w: signed with key %s, which the policy does not trust (wrong key)", ErrUntrusted, hint)
}

func (v *Verifier) verifyKeyless(b *bundle.Bundle, cert *x509.Certificate) (string, error) {
	sum, err := certificate.SummarizeCertificate(cert)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	who := fmt.Sprintf("issuer=%s subject=%s", sum.Extensions.Issuer, sum.SubjectAlternativeName)
	if len(v.identities) == 0 || v.trusted == nil {
		return "", fmt.Errorf("%w: signed keyless by %s, but the policy trusts no identity (%s)", ErrUntrusted, who, v.describe)
	}
	var opts []verify.VerifierOption
	entries, _ := b.TlogEntries()
	stamps, _ := b.Timestamps()
	switch {
	case len(entries) > 0:
		opts = append(opts, verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1))
	case len(stamps) > 0:
		opts = append(opts, verify.WithSignedTimestamps(1))
	default:
		opts = append(opts, verify.WithCurrentTime())
	}
	if v.requireTlog && len(entries) == 0 {
		return "", fmt.Errorf("%w: signed by %s without a transparency log entry, which the policy requires", ErrUntrusted, who)
	}
	if hasCTLogs(v.trusted) {
		opts = append(opts, verify.WithSignedCertificateTimestamps(1))
	}
	sev, err := verify.NewVerifier(v.trusted, opts...)
	if err != nil {
		return "", err
	}
	var popts []verify.PolicyOption
	for _, id := range v.identities {
		popts = append(popts, verify.WithCertificateIdentity(id))
	}
	if _, err := sev.Verify(b, verify.NewPolicy(verify.WithoutArtifactUnsafe(), popts...)); err != nil {
		msg := err.Error()
		switch {
		case strings.Contains(msg, "certificate identity"):
			return "", fmt.Errorf("%w: certificate of %s does not match the policy's identities (wrong identity)", ErrUntrusted, who)
		case strings.Contains(msg, "leaf certificate") && chainsToTrustedCA(v.trusted, cert):
			return "", fmt.Errorf("%w: certificate of %s is valid from %s to %s only: %v", ErrCertificateExpired, who,
				cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339), err)
		case strings.Contains(msg, "leaf certificate"):
			return "", fmt.Errorf("%w: certificate of %s is not issued by a trusted CA: %v", ErrUntrusted, who, err)
		}
		return "", fmt.Errorf("%w: signature of %s: %v", ErrUntrusted, who, err)
	}
	return "keyless " + who, nil
}

// SpecStatus is one spec referrer of a subject and whether it verifies under a policy.
type SpecStatus struct {
	// Subject is the image manifest or index the spec is listed under.
	Subject ocispec.Descriptor
	// Referrer is the spec referrer manifest.
	Referrer ocispec.Descriptor
	// Created is its org.opencontainers.image.created (zero when missing).
	Created time.Time
	// Spec is the fetched spec (nil when it could not be fetched).
	Spec *spec.Spec
	// Verified is true when a trusted bundle signs exactly this spec for exactly this subject.
	Verified bool
	// Signer describes the trusted signer ("key <hint>" or "keyless issuer=... subject=...").
	Signer string
	// Bundle is the bundle referrer that verified it, or the one the reason is about.
	Bundle ocispec.Descriptor
	// Err is why the spec is not verified (wraps ErrUnsigned, ErrUntrusted, ErrCertificateExpired,
	// ErrReplayed, ErrSwapped, ErrTampered or ErrWrongSubject); nil when Verified.
	Err error
}

// Reason is "VERIFIED" or why not.
func (s *SpecStatus) Reason() string {
	if s.Verified {
		return "VERIFIED"
	}
	if s.Err == nil {
		return "UNVERIFIED"
	}
	return s.Err.Error()
}

// Result lists every spec referrer of a subject with its status, newest first.
type Result struct {
	Subject ocispec.Descriptor
	Specs   []SpecStatus
}

// Newest returns the newest verified spec, or nil.
func (r *Result) Newest() *SpecStatus {
	for i := range r.Specs {
		if r.Specs[i].Verified {
			return &r.Specs[i]
		}
	}
	return nil
}

// candidate is one bundle referrer of the subject, verified or not.
type candidate struct {
	desc     ocispec.Descriptor
	hint     digest.Digest // AnnotationSpecReferrer (untrusted)
	claimed  digest.Digest // predicate referrer of the unverified statement (untrusted)
	st       *Statement    // verified statement, nil when err != nil
	signer   string
	err      error
	names    func(d digest.Digest) bool
	verified bool
}

// VerifySpecs lists the spec referrers of subject (newest first) and checks each against the
// bundle referrers of subject under v: VERIFIED when a bundle that verifies under the policy has
// subject as statement subject, names the spec referrer's digest in its predicate, and carries a
// spec equal to the fetched one. Otherwise SpecStatus.Err says why. Registry errors listing the
// referrers are returned as the error; errors fetching one spec or bundle become that spec's status.
func VerifySpecs(ctx context.Context, t *oci.Target, subject ocispec.Descriptor, v *Verifier) (*Result, error) {
	specRefs, err := t.Referrers(ctx, subject, spec.ArtifactType)
	if err != nil {
		return nil, err
	}
	res := &Result{Subject: subject}
	if len(specRefs) == 0 {
		return res, nil
	}
	bundleRefs, err := t.Referrers(ctx, subject, BundleMediaType)
	if err != nil {
		return nil, err
	}
	var cands []*candidate
	for _, bd := range bundleRefs {
		if pt, ok := bd.Annotations[AnnotationBundlePredicateType]; ok && pt != PredicateType {
			continue // another attestation (SLSA provenance, SBOM ...)
		}
		c := &candidate{desc: bd}
		if h, ok := bd.Annotations[AnnotationSpecReferrer]; ok {
			c.hint = digest.Digest(h)
		}
		data, err := fetchBundle(ctx, t, bd)
		if err != nil {
			c.err = err
			cands = append(cands, c)
			continue
		}
		if pt, d, ok := peekStatement(data); ok {
			if pt != PredicateType {
				continue
			}
			c.claimed = d
		}
		c.st, c.signer, c.err = v.VerifyBundle(data)
		c.verified = c.err == nil
		cands = append(cands, c)
	}
	for _, r := range specRefs {
		ss := SpecStatus{Subject: subject, Referrer: r}
		ss.Created, _ = oci.Created(r)
		s, m, err := t.FetchSpec(ctx, r)
		switch {
		case err != nil && errors.Is(err, content.ErrMismatchedDigest), err != nil && strings.Contains(err.Error(), "tampered"):
			ss.Err = fmt.Errorf("%w: %v", ErrTampered, err)
		case err != nil:
			ss.Err = err
		case m.Subject == nil || m.Subject.Digest != subject.Digest:
			ss.Err = fmt.Errorf("%w: its subject is %v, not %s", ErrWrongSubject, subjectOf(m), subject.Digest)
		default:
			ss.Spec = s
			judge(&ss, cands, subject.Digest)
		}
		res.Specs = append(res.Specs, ss)
	}
	return res, nil
}

func subjectOf(m *ocispec.Manifest) string {
	if m.Subject == nil {
		return "missing"
	}
	return m.Subject.Digest.String()
}

// judge decides the status of a fetched spec from the bundles of its subject.
func judge(ss *SpecStatus, cands []*candidate, subject digest.Digest) {
	rd := ss.Referrer.Digest
	// Most specific reason first.
	var reasons [6]error
	var reasonBundle [6]ocispec.Descriptor
	set := func(i int, d ocispec.Descriptor, err error) {
		if reasons[i] == nil {
			reasons[i], reasonBundle[i] = err, d
		}
	}
	for _, c := range cands {
		paired := c.hint == rd || c.claimed == rd
		if c.verified && c.st.Predicate.Referrer.Digest == rd {
			paired = true
		}
		if !paired {
			continue
		}
		if !c.verified {
			i := 4
			if errors.Is(c.err, ErrCertificateExpired) {
				i = 3
			}
			set(i, c.desc, c.err)
			continue
		}
		st := c.st
		switch {
		case !st.hasSubject(subject):
			set(1, c.desc, fmt.Errorf("%w: bundle %s signs %s, not %s", ErrReplayed, c.desc.Digest, strings.Join(st.subjects(), ", "), subject))
		case st.Predicate.Referrer.Digest != rd:
			set(2, c.desc, fmt.Errorf("%w: bundle %s is labelled for %s but its signed predicate names %s", ErrSwapped, c.desc.Digest, rd, st.Predicate.Referrer.Digest))
		case st.Predicate.Spec == nil || !specEqual(st.Predicate.Spec, ss.Spec):
			set(0, c.desc, fmt.Errorf("%w: bundle %s signs another spec for %s", ErrTampered, c.desc.Digest, rd))
		default:
			ss.Verified, ss.Signer, ss.Bundle, ss.Err = true, c.signer, c.desc, nil
			return
		}
	}
	for i, r := range reasons {
		if r != nil {
			ss.Err, ss.Bundle = r, reasonBundle[i]
			return
		}
	}
	ss.Err = fmt.Errorf("%w: no signature bundle names %s", ErrUnsigned, rd)
}

// fetchBundle fetches the bundle layer of a bundle referrer in cosign's layout.
func fetchBundle(ctx context.Context, t *oci.Target, d ocispec.Descriptor) ([]byte, error) {
	m, err := t.FetchManifest(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	if len(m.Layers) != 1 || !strings.HasPrefix(m.Layers[0].MediaType, "application/vnd.dev.sigstore.bundle") {
		return nil, fmt.Errorf("%w: %s@%s: want one layer of media type %s", ErrInvalidBundle, t.Name(), d.Digest, BundleMediaType)
	}
	l := m.Layers[0]
	if l.Size > MaxBundleBytes || l.Size < 0 {
		return nil, fmt.Errorf("%w: %s@%s: bundle of %d bytes, the limit is %d", ErrInvalidBundle, t.Name(), d.Digest, l.Size, MaxBundleBytes)
	}
	data, err := content.FetchAll(ctx, t.Store(), l)
	if err != nil {
		return nil, fmt.Errorf("%w: %s@%s: %v", ErrInvalidBundle, t.Name(), d.Digest, err)
	}
	return data, nil
}

// peekStatement reads the predicateType and predicate referrer of a bundle without verifying it,
// only to pair bundles with specs.
func peekStatement(bundleJSON []byte) (string, digest.Digest, bool) {
	var b bundle.Bundle
	if err := b.UnmarshalJSON(bundleJSON); err != nil || b.GetDsseEnvelope() == nil {
		return "", "", false
	}
	var st Statement
	if err := json.Unmarshal(b.GetDsseEnvelope().Payload, &st); err != nil {
		return "", "", false
	}
	return st.PredicateType, st.Predicate.Referrer.Digest, true
}

// specEqual compares two specs by their JSON encoding (struct field order, sorted map keys).
func specEqual(a, b *spec.Spec) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}
