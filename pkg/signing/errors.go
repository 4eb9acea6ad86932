package signing

import (
	"errors"

	"github.com/compatkit/compatkit/pkg/oci"
)

// Sentinel errors of this package. The reasons a spec is not verified (SpecStatus.Err) wrap one
// of the first eight; check them with errors.Is.
var (
	// ErrUnsigned means no sigstore bundle (v0.3, application/vnd.dev.sigstore.bundle.v0.3+json)
	// attached to the image names the spec referrer.
	ErrUnsigned = errors.New("unsigned")
	// ErrUntrusted means bundles name the spec but none verifies under the policy: wrong key,
	// certificate identity (issuer or SAN) not allowed, certificate not from a trusted CA, or a
	// broken DSSE signature.
	ErrUntrusted = errors.New("no trusted signature")
	// ErrCertificateExpired means the only signatures are made with a certificate that was not
	// valid at signing time (or now, when the bundle has no timestamp).
	ErrCertificateExpired = errors.New("certificate not valid at signing time")
	// ErrReplayed means a trusted in-toto statement names the spec but its subject is another
	// image: a bundle copied from another image.
	ErrReplayed = errors.New("statement subject is another image (replay)")
	// ErrSwapped means a bundle attached as the spec's signature carries a trusted statement whose
	// predicate names another referrer manifest: the spec was swapped.
	ErrSwapped = errors.New("predicate names another referrer (swap)")
	// ErrTampered means the spec content differs from the signed one, or does not match its digest.
	ErrTampered = errors.New("spec content differs from the signed one (tampered)")
	// ErrWrongPlatform means a trusted statement signs the spec for a platform other than the one
	// the index lists the subject under: the index entry was relabelled.
	ErrWrongPlatform = errors.New("signed for another platform (relabelled)")
	// ErrWrongSubject means the spec referrer manifest is attached to another image than the one
	// being read (a referrer listed under the wrong subject, possible with the referrers tag schema).
	// It is oci.ErrWrongSubject.
	ErrWrongSubject = oci.ErrWrongSubject

	// ErrFutureDated means a spec to sign is dated beyond oci.MaxClockSkew in the future.
	ErrFutureDated = errors.New("dated in the future")

	// ErrNoTrustedSpec means no spec of a subject verifies under the policy.
	ErrNoTrustedSpec = errors.New("no trusted spec")
	// ErrInvalidPolicy means a trust policy does not parse or names nothing to trust.
	ErrInvalidPolicy = errors.New("invalid trust policy")
	// ErrInvalidKey means a key file cannot be read, decrypted or parsed.
	ErrInvalidKey = errors.New("invalid key")
	// ErrInvalidBundle means a bundle referrer does not have cosign's shape or its bundle does not
	// parse as a sigstore bundle v0.3 with a DSSE envelope holding an in-toto v1 statement.
	ErrInvalidBundle = errors.New("invalid signature bundle")
	// ErrNoIdentityToken means keyless signing found no OIDC identity token.
	ErrNoIdentityToken = errors.New("no OIDC identity token")
)
