package decide

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/compatkit/compatkit/internal/parallel"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/signing"
	"github.com/compatkit/compatkit/pkg/spec"
)

// SpecState says what reading the specs of one subject (a manifest or an index) found.
type SpecState string

// The states of a subject's specs.
const (
	// SpecNone: the subject has no compatibility referrer.
	SpecNone SpecState = "none"
	// SpecFound: the spec that counts was read: the newest one, or under a trust policy the newest
	// one that verifies.
	SpecFound SpecState = "found"
	// SpecUntrusted: under a trust policy, the subject has specs but none verifies.
	SpecUntrusted SpecState = "untrusted"
	// SpecUnreadable: listing or reading the subject's specs failed; what it requires is unknown. It
	// is never taken as "no spec".
	SpecUnreadable SpecState = "unreadable"
)

// SubjectSpec is what a subject's referrers say, after the trust policy.
type SubjectSpec struct {
	// Subject is the manifest or index read.
	Subject ocispec.Descriptor `json:"subject"`
	// State says what was found.
	State SpecState `json:"state"`
	// Spec is the spec that counts (State SpecFound).
	Spec *spec.Spec `json:"-"`
	// Referrer is the descriptor of Spec's referrer manifest (State SpecFound).
	Referrer ocispec.Descriptor `json:"referrer,omitzero"`
	// Created is the referrer's org.opencontainers.image.created time; zero when unknown.
	Created time.Time `json:"created,omitzero"`
	// Verified is true when a trusted signature covers Spec (under a trust policy).
	Verified bool `json:"verified,omitempty"`
	// Signer describes who signed Spec ("key <hint>", "keyless issuer=... subject=...").
	Signer string `json:"signer,omitempty"`
	// Platform is the platform the signature binds Spec to (signing.Predicate.Platform): for a
	// single manifest, whose platform no index states, it is a requirement on the host.
	Platform string `json:"platform,omitempty"`
	// Unlisted is true when the subject's referrers listing does not show Spec: its signature
	// named it (signing.SpecStatus.Unlisted).
	Unlisted bool `json:"unlisted,omitempty"`
	// FromAnnotation is true when Spec was read from the index's annotations (compat-attach
	// annotate) rather than from the referrer.
	FromAnnotation bool `json:"fromAnnotation,omitempty"`
	// FromAttestation is true when Spec was read from a build's in-toto attestation (compatkit's
	// BuildKit frontend; Referrer is then the attestation manifest): the subject has no
	// compatibility referrer, and no trust policy is in force.
	FromAttestation bool `json:"fromAttestation,omitempty"`
	// Passed lists, under a trust policy, the specs that do not verify, each with the reason: the
	// first MaxPassed of them (newest first by their unsigned listing time); PassedMore counts the
	// others.
	Passed     []PassedSpec `json:"passed,omitempty"`
	PassedMore int          `json:"passedMore,omitempty"`
	// Err says why the state is SpecUnreadable or SpecUntrusted.
	Err error `json:"-"`
}

// MaxPassed is how many specs that a trust policy kept out a SubjectSpec lists with their reasons.
const MaxPassed = 5

// PassedSpec is a spec referrer that a trust policy kept out of a decision.
type PassedSpec struct {
	// Referrer is the spec's referrer manifest.
	Referrer ocispec.Descriptor `json:"referrer"`
	// Reason says why it was not used (unsigned, wrong key, tampered ...).
	Reason string `json:"reason"`
}

// Reason returns Err's text, or "".
func (s *SubjectSpec) Reason() string {
	if s == nil || s.Err == nil {
		return ""
	}
	return s.Err.Error()
}

// Trust says which specs count: those a trust policy verifies. A nil *Trust means no policy: the
// newest spec of each subject counts, as NFD reads it.
type Trust struct {
	// Verifier is the compiled trust policy (signing.Policy.Compile).
	Verifier *signing.Verifier
	// Verify tunes verification: where the signature bundles are (cosign's COSIGN_REPOSITORY) and
	// how many of a subject's bundles are read.
	Verify signing.VerifyOptions
}

// Reader reads the specs of subjects in one repository or layout, under an optional trust
// policy, each subject at most once. It is safe for concurrent use.
type Reader struct {
	target   *oci.Target
	verifier *signing.Verifier
	vopts    signing.VerifyOptions

	mu    sync.Mutex
	cache map[digest.Digest]*readOnce
	att   map[digest.Digest][]ocispec.Descriptor // build attestations by image manifest
}

// addAttestations records the build attestation manifests that tree lists.
func (r *Reader) addAttestations(tree *oci.Tree) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for d, atts := range attestationsOf(tree) {
		if r.att == nil {
			r.att = map[digest.Digest][]ocispec.Descriptor{}
		}
		if _, ok := r.att[d]; !ok {
			r.att[d] = atts
		}
	}
}

type readOnce struct {
	once sync.Once
	done atomic.Bool
	s    *SubjectSpec
}

// NewReader returns a Reader of t's specs. Without trust the newest spec of a subject counts (what
// NFD evaluates); with a policy, the newest spec that a trusted signature covers
// (signing.VerifySpecs), and those that do not verify are listed in SubjectSpec.Passed.
func NewReader(t *oci.Target, trust *Trust) *Reader {
	r := &Reader{target: t, cache: map[digest.Digest]*readOnce{}}
	if trust != nil && trust.Verifier != nil {
		r.verifier, r.vopts = trust.Verifier, trust.Verify
	}
	return r
}

// Target returns the repository or layout the Reader reads.
func (r *Reader) Target() *oci.Target { return r.target }

// Verifier returns the trust policy, nil when there is none.
func (r *Reader) Verifier() *signing.Verifier { return r.verifier }

// Spec reads the spec that counts for subject. Errors are not returned but recorded: a subject
// whose referrers cannot be listed or whose spec cannot be fetched or parsed is SpecUnreadable, with
// Err naming the registry, the reference and what failed.
func (r *Reader) Spec(ctx context.Context, subject ocispec.Descriptor) *SubjectSpec {
	r.mu.Lock()
	o, ok := r.cache[subject.Digest]
	if !ok {
		o = &readOnce{}
		r.cache[subject.Digest] = o
	}
	r.mu.Unlock()
	o.once.Do(func() {
		o.s = r.read(ctx, subject)
		o.done.Store(true)
	})
	if o.s.State == SpecUnreadable && (errors.Is(o.s.Err, context.Canceled) || errors.Is(o.s.Err, context.DeadlineExceeded)) {
		// A cancelled read is not the subject's state: the next caller reads again.
		r.mu.Lock()
		if r.cache[subject.Digest] == o {
			delete(r.cache, subject.Digest)
		}
		r.mu.Unlock()
	}
	return o.s
}

// Specs reads the specs of subjects concurrently (at most oci.DefaultConcurrency at once), in the
// order given.
func (r *Reader) Specs(ctx context.Context, subjects []ocispec.Descriptor) []*SubjectSpec {
	out := make([]*SubjectSpec, len(subjects))
	parallel.Each(len(subjects), oci.DefaultConcurrency, func(i int) { out[i] = r.Spec(ctx, subjects[i]) })
	return out
}

// Cached returns what was read for subject, without reading: false when it was not read (or
// is being read).
func (r *Reader) Cached(subject ocispec.Descriptor) (*SubjectSpec, bool) {
	r.mu.Lock()
	o, ok := r.cache[subject.Digest]
	r.mu.Unlock()
	if !ok || !o.done.Load() {
		return nil, false
	}
	return o.s, true
}

func (r *Reader) read(ctx context.Context, subject ocispec.Descriptor) *SubjectSpec {
	out := &SubjectSpec{Subject: subject}
	if r.target == nil {
		out.State, out.Err = SpecUnreadable, fmt.Errorf("%s: not among the specs read beforehand", subject.Digest)
		return out
	}
	if r.verifier == nil {
		// Build attestations are read only when the subject has no referrer, but their manifests
		// are fetched alongside the listing: a build's image costs no extra round trip.
		r.mu.Lock()
		atts := r.att[subject.Digest]
		r.mu.Unlock()
		var early sync.WaitGroup
		for _, a := range atts {
			early.Go(func() { _, _ = r.target.FetchManifest(ctx, a) })
		}
		defer early.Wait()
		s, ref, err := r.target.NewestSpec(ctx, subject)
		switch {
		case errors.Is(err, oci.ErrNoSpec):
			out.State = SpecNone
			early.Wait()
			r.fromAttestation(ctx, out)
		case err != nil:
			out.State, out.Err = SpecUnreadable, err
		default:
			out.State, out.Spec, out.Referrer = SpecFound, s, ref
			out.Created, _ = oci.Created(ref)
		}
		return out
	}
	res, err := signing.VerifySpecs(ctx, r.target, subject, r.verifier, r.vopts)
	if err != nil {
		out.State, out.Err = SpecUnreadable, err
		return out
	}
	if len(res.Specs) == 0 {
		out.State = SpecNone
		return out
	}
	if res.BundlesSkipped > 0 {
		// Some signature bundles were not read: one of them may sign a spec newer than any that
		// verified. What counts is unknown, not "the newest verified so far".
		for _, s := range res.Specs {
			if !s.Verified {
				out.State = SpecUnreadable
				out.Err = fmt.Errorf("%s@%s lists more signature bundles than --max-referrers (%d were not read), and %s is not among the verified ones: which signed spec is the newest is unknown (someone may be flooding the listing); raise --max-referrers, or keep signatures in a --signature-repository that only signers can push to", r.target.Name(), subject.Digest, res.BundlesSkipped, s.Referrer.Digest)
				return out
			}
		}
	}
	for _, s := range res.Specs {
		if s.Verified {
			continue
		}
		if len(out.Passed) < MaxPassed {
			out.Passed = append(out.Passed, PassedSpec{Referrer: s.Referrer, Reason: s.Reason()})
		} else {
			out.PassedMore++
		}
	}
	if n := res.Newest(); n != nil {
		out.State, out.Spec, out.Referrer, out.Created = SpecFound, n.Spec, n.Referrer, n.Created
		out.Verified, out.Signer, out.Platform, out.Unlisted = true, n.Signer, n.Platform, n.Unlisted
		return out
	}
	out.State = SpecUntrusted
	out.Err = fmt.Errorf("%w: none of the %d specs of %s@%s verifies under the policy (%s)", signing.ErrNoTrustedSpec, len(res.Specs), r.target.Name(), subject.Digest, r.verifier)
	return out
}

// fromAttestation fills out (a subject without compatibility referrer, read without a trust
// policy) from the build attestation the index lists for it, if any.
func (r *Reader) fromAttestation(ctx context.Context, out *SubjectSpec) {
	r.mu.Lock()
	atts := r.att[out.Subject.Digest]
	r.mu.Unlock()
	for _, a := range atts {
		got, err := readAttested(ctx, r.target, out.Subject, a)
		switch {
		case errors.Is(err, ErrNotBuildAttested):
			continue
		case err != nil:
			out.State, out.Err = SpecUnreadable, err
		default:
			out.State, out.Spec, out.Referrer, out.FromAttestation = SpecFound, got.Spec, a, true
		}
		return
	}
}

// annotated returns the spec that `compat-attach annotate` copied into an index's annotations for
// a subject (ann: the descriptor's annotations in the index, or the index's own), and false when
// the subject is not annotated.
func annotated(ann map[string]string, subject ocispec.Descriptor, what string) (*SubjectSpec, bool) {
	s, ref, present, err := oci.AnnotatedSpec(ann, what)
	if !present {
		return nil, false
	}
	out := &SubjectSpec{Subject: subject, FromAnnotation: true}
	switch {
	case err != nil:
		out.State, out.Err = SpecUnreadable, err
	case s == nil:
		out.State = SpecNone
	default:
		out.State, out.Spec, out.Referrer = SpecFound, s, ref
	}
	return out, true
}
