package signing

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"oras.land/oras-go/v2/content"

	"github.com/compatkit/compatkit/internal/parallel"
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
	// Referrer is the spec referrer manifest, as listed.
	Referrer ocispec.Descriptor
	// Created orders the specs. For a verified spec it is the org.opencontainers.image.created
	// annotation inside the fetched, digest-checked referrer manifest, which the signature covers
	// (the statement names that manifest's digest); for the others, the listing's annotation. A
	// time beyond oci.MaxClockSkew in the future counts as none (zero).
	Created time.Time
	// Spec is the fetched spec, only for a spec that a verified bundle names (the others are not
	// fetched).
	Spec *spec.Spec
	// Verified is true when a trusted bundle signs exactly this spec for exactly this subject.
	Verified bool
	// Signer describes the trusted signer ("key <hint>" or "keyless issuer=... subject=...").
	Signer string
	// Bundle is the bundle referrer that verified it, or the one the reason is about.
	Bundle ocispec.Descriptor
	// Unlisted is true when the subject's referrers listing does not show the spec: a verified
	// bundle named it, and it was fetched by its digest (a listing that hides a newer signed spec
	// cannot roll a subject back to an older one).
	Unlisted bool
	// Platform is the platform the signature binds the spec to (Predicate.Platform), when Verified;
	// "" when it binds none.
	Platform string
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

// Result lists every spec referrer of a subject with its status: the verified ones first, newest
// first by their signed creation time, then the others in listing order (newest first by the
// listing's unsigned annotation).
type Result struct {
	Subject ocispec.Descriptor
	Specs   []SpecStatus
	// BundlesSkipped counts the signature bundles not looked at (beyond VerifyOptions.MaxReferrers):
	// when it is not zero, an unverified spec may be signed by a bundle that was not read.
	BundlesSkipped int
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

// DefaultMaxReferrers is VerifyOptions.MaxReferrers's default.
const DefaultMaxReferrers = 64

// VerifyOptions tune VerifySpecs.
type VerifyOptions struct {
	// SignatureRepository holds the signature bundles when they are not beside the image (cosign's
	// COSIGN_REPOSITORY); nil means the image's own repository.
	SignatureRepository *oci.Target
	// MaxReferrers bounds how many signature bundles of one subject are fetched and verified
	// (those that name a listed spec first, newest first); <= 0 means DefaultMaxReferrers. It
	// bounds what reading costs whatever is pushed: specs themselves are fetched only when a
	// verified bundle names them.
	MaxReferrers int
	// Now is the current time for the clock-skew rule; zero means time.Now().
	Now time.Time
}

// candidate is one bundle referrer of the subject, verified or not.
type candidate struct {
	desc     ocispec.Descriptor
	hint     digest.Digest // AnnotationSpecReferrer (untrusted)
	claimed  digest.Digest // predicate referrer of the unverified statement (untrusted)
	st       *Statement    // verified statement, nil when err != nil
	signer   string
	err      error
	verified bool
}

// IsBundle reports whether artifactType is a sigstore bundle's, with or without parameters
// (application/vnd.dev.sigstore.bundle.v0.3+json, application/vnd.dev.sigstore.bundle+json;version=0.3).
func IsBundle(artifactType string) bool {
	return strings.HasPrefix(artifactType, "application/vnd.dev.sigstore.bundle")
}

// VerifySpecs lists the spec referrers of subject and decides, under v, which are VERIFIED: a
// bundle referrer of subject (in opts.SignatureRepository when set) verifies under the policy,
// its statement's subject is subject, its predicate names the spec referrer's digest, and the
// fetched spec equals the signed one. Bundles are verified first, and only the specs they name are
// fetched: unsigned specs cost their listing alone, however many are pushed. SpecStatus.Err says
// why a spec is not verified. An error listing the referrers is returned; an error fetching one
// spec or bundle becomes that spec's status.
func VerifySpecs(ctx context.Context, t *oci.Target, subject ocispec.Descriptor, v *Verifier, opts VerifyOptions) (*Result, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	limit := opts.MaxReferrers
	if limit <= 0 {
		limit = DefaultMaxReferrers
	}
	sigT := opts.SignatureRepository
	if sigT == nil {
		sigT = t
	}
	// One listing gives the specs and, beside the image, the bundles.
	all, err := t.Referrers(ctx, subject, "")
	if err != nil {
		return nil, err
	}
	var specRefs, bundleRefs []ocispec.Descriptor
	for _, r := range all {
		switch {
		case r.ArtifactType == spec.ArtifactType:
			specRefs = append(specRefs, r)
		case sigT == t && IsBundle(r.ArtifactType):
			bundleRefs = append(bundleRefs, r)
		}
	}
	res := &Result{Subject: subject}
	if len(specRefs) == 0 {
		return res, nil
	}
	if sigT != t {
		if bundleRefs, err = sigT.Referrers(ctx, subject, ""); err != nil {
			return nil, err
		}
		bundleRefs = slices.DeleteFunc(bundleRefs, func(d ocispec.Descriptor) bool { return !IsBundle(d.ArtifactType) })
	}
	listed := map[digest.Digest]bool{}
	for _, r := range specRefs {
		listed[r.Digest] = true
	}
	// Other attestations (SLSA provenance, SBOMs ...) are not ours; bundles whose unsigned hint
	// names a listed spec are looked at first.
	bundleRefs = slices.DeleteFunc(bundleRefs, func(d ocispec.Descriptor) bool {
		pt, ok := d.Annotations[AnnotationBundlePredicateType]
		return ok && pt != PredicateType
	})
	sort.SliceStable(bundleRefs, func(i, j int) bool {
		hi, hj := listed[digest.Digest(bundleRefs[i].Annotations[AnnotationSpecReferrer])], listed[digest.Digest(bundleRefs[j].Annotations[AnnotationSpecReferrer])]
		return hi && !hj
	})
	if len(bundleRefs) > limit {
		res.BundlesSkipped = len(bundleRefs) - limit
		bundleRefs = bundleRefs[:limit]
	}
	cands := make([]*candidate, len(bundleRefs))
	parallel.Each(len(bundleRefs), oci.DefaultConcurrency, func(i int) {
		cands[i] = v.bundle(ctx, sigT, bundleRefs[i])
	})
	// A bundle that could not be read (network, registry failure, byte budget) is not an absent
	// signature: the subject's trusted spec is unknown.
	for _, c := range cands {
		if oci.IsReadFailure(c.err) {
			return nil, fmt.Errorf("reading the signature bundle %s@%s of %s@%s: %w", sigT.Name(), c.desc.Digest, t.Name(), subject.Digest, c.err)
		}
	}
	cands = slices.DeleteFunc(cands, func(c *candidate) bool { return errors.Is(c.err, errNotOurs) })
	// The specs that a verified statement for this subject names are fetched and checked, listed
	// or not.
	signedFor := map[digest.Digest]*candidate{}
	var unlisted []digest.Digest
	for _, c := range cands {
		if !c.verified || !c.st.hasSubject(subject.Digest) {
			continue
		}
		rd := c.st.Predicate.Referrer.Digest
		if _, ok := signedFor[rd]; ok {
			continue
		}
		signedFor[rd] = c
		if !listed[rd] {
			unlisted = append(unlisted, rd)
		}
	}
	for _, rd := range unlisted {
		r := signedFor[rd].st.Predicate.Referrer
		specRefs = append(specRefs, ocispec.Descriptor{MediaType: r.MediaType, Digest: r.Digest, Size: r.Size, ArtifactType: spec.ArtifactType})
	}
	for _, r := range specRefs {
		ss := SpecStatus{Subject: subject, Referrer: r, Unlisted: !listed[r.Digest]}
		ss.Created, _ = oci.CreatedBefore(r, now)
		if c, ok := signedFor[r.Digest]; ok {
			if err := verifyNamed(ctx, t, &ss, c, now); err != nil {
				return nil, err
			}
		} else {
			judge(&ss, cands, subject.Digest)
		}
		res.Specs = append(res.Specs, ss)
	}
	sort.SliceStable(res.Specs, func(i, j int) bool {
		a, b := &res.Specs[i], &res.Specs[j]
		if a.Verified != b.Verified {
			return a.Verified
		}
		if a.Verified && !a.Created.Equal(b.Created) {
			return a.Created.After(b.Created)
		}
		return false
	})
	return res, nil
}

// bundleOutcome is what fetching and verifying one bundle referrer gave.
type bundleOutcome struct {
	claimed  digest.Digest
	st       *Statement
	signer   string
	err      error
	verified bool
}

// bundle fetches and verifies the bundle referrer bd, once per Verifier (by its digest); a read
// failure is not remembered.
func (v *Verifier) bundle(ctx context.Context, sigT *oci.Target, bd ocispec.Descriptor) *candidate {
	c := &candidate{desc: bd, hint: digest.Digest(bd.Annotations[AnnotationSpecReferrer])}
	if o, ok := v.verified.Load(bd.Digest); ok {
		c.setOutcome(o.(*bundleOutcome))
		return c
	}
	o := &bundleOutcome{}
	data, err := fetchBundle(ctx, sigT, bd)
	switch {
	case oci.IsReadFailure(err):
		c.err = err
		return c
	case err != nil:
		o.err = err
	default:
		if pt, d, ok := peekStatement(data); ok {
			if pt != PredicateType {
				o.err = errNotOurs
				break
			}
			o.claimed = d
		}
		o.st, o.signer, o.err = v.VerifyBundle(data)
		o.verified = o.err == nil
	}
	v.verified.Store(bd.Digest, o)
	c.setOutcome(o)
	return c
}

func (c *candidate) setOutcome(o *bundleOutcome) {
	c.claimed, c.st, c.signer, c.err, c.verified = o.claimed, o.st, o.signer, o.err, o.verified
}

// errNotOurs marks a bundle of another predicate type, found only once fetched.
var errNotOurs = errors.New("another attestation")

// verifyNamed fetches the spec that the verified bundle c names and checks it: attached to the
// subject, equal to the signed spec, listed under the platform it was signed for. Its creation
// time is then the one inside the fetched manifest, which the signature covers. A read failure is
// returned: a signed spec that cannot be read leaves the subject's trusted spec unknown.
func verifyNamed(ctx context.Context, t *oci.Target, ss *SpecStatus, c *candidate, now time.Time) error {
	s, m, err := t.FetchSpec(ctx, ss.Referrer)
	switch {
	case oci.IsReadFailure(err):
		return fmt.Errorf("reading the signed spec %s@%s: %w", t.Name(), ss.Referrer.Digest, err)
	case err != nil && ss.Unlisted && errors.Is(err, oci.ErrNotFound):
		return fmt.Errorf("a verified signature bundle (%s) names the spec %s@%s, which the registry does not have: the spec was deleted, or the signature is for content never pushed; delete the bundle or push the spec again", c.desc.Digest, t.Name(), ss.Referrer.Digest)
	case err != nil && (errors.Is(err, content.ErrMismatchedDigest) || strings.Contains(err.Error(), "tampered")):
		ss.Err, ss.Bundle = fmt.Errorf("%w: %v", ErrTampered, err), c.desc
		return nil
	case err != nil:
		ss.Err, ss.Bundle = err, c.desc
		return nil
	}
	if err := oci.CheckSubject(m, ss.Subject, t.Name()+"@"+ss.Referrer.Digest.String()); err != nil {
		ss.Err, ss.Bundle = err, c.desc
		return nil
	}
	if c.st.Predicate.Spec == nil || !specEqual(c.st.Predicate.Spec, s) {
		ss.Err, ss.Bundle = fmt.Errorf("%w: bundle %s signs another spec for %s", ErrTampered, c.desc.Digest, ss.Referrer.Digest), c.desc
		return nil
	}
	if signed, listed := c.st.Predicate.Platform, platformOf(ss.Subject); signed != "" && listed != "" && signed != listed {
		ss.Err, ss.Bundle = fmt.Errorf("%w: bundle %s signs spec %s for %s, but the index lists %s as %s", ErrWrongPlatform, c.desc.Digest, ss.Referrer.Digest, signed, ss.Subject.Digest, listed), c.desc
		return nil
	}
	ss.Spec, ss.Verified, ss.Signer, ss.Bundle, ss.Platform = s, true, c.signer, c.desc, c.st.Predicate.Platform
	ss.Created, _ = oci.CreatedBefore(ocispec.Descriptor{Annotations: m.Annotations}, now)
	return nil
}

// judge says why a spec that no verified bundle names for this subject is not verified, from the
// bundles that claim it (by their unsigned hint or statement): the most specific reason first.
func judge(ss *SpecStatus, cands []*candidate, subject digest.Digest) {
	rd := ss.Referrer.Digest
	var reasons [5]error
	var reasonBundle [5]ocispec.Descriptor
	set := func(i int, d ocispec.Descriptor, err error) {
		if reasons[i] == nil {
			reasons[i], reasonBundle[i] = err, d
		}
	}
	for _, c := range cands {
		if c.hint != rd && c.claimed != rd && !(c.verified && c.st.Predicate.Referrer.Digest == rd) {
			continue
		}
		switch {
		case !c.verified && errors.Is(c.err, ErrCertificateExpired):
			set(2, c.desc, c.err)
		case !c.verified:
			set(3, c.desc, c.err)
		case !c.st.hasSubject(subject):
			set(0, c.desc, fmt.Errorf("%w: bundle %s signs %s, not %s", ErrReplayed, c.desc.Digest, strings.Join(c.st.subjects(), ", "), subject))
		case c.st.Predicate.Referrer.Digest != rd:
			set(1, c.desc, fmt.Errorf("%w: bundle %s is labelled for %s but its signed predicate names %s", ErrSwapped, c.desc.Digest, rd, c.st.Predicate.Referrer.Digest))
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
// A read failure (oci.IsReadFailure) is returned as it is; anything else wraps ErrInvalidBundle.
func fetchBundle(ctx context.Context, t *oci.Target, d ocispec.Descriptor) ([]byte, error) {
	m, err := t.FetchManifest(ctx, d)
	if oci.IsReadFailure(err) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	if len(m.Layers) != 1 || !IsBundle(m.Layers[0].MediaType) {
		return nil, fmt.Errorf("%w: %s@%s: want one layer of media type %s", ErrInvalidBundle, t.Name(), d.Digest, BundleMediaType)
	}
	data, err := t.FetchBlob(ctx, m.Layers[0], MaxBundleBytes)
	if oci.IsReadFailure(err) {
		return nil, err
	}
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
