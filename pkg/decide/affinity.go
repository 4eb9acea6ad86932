package decide

import (
	"context"
	"errors"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/compatkit/compatkit/pkg/match"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/signing"
	"github.com/compatkit/compatkit/pkg/spec"
)

// ImageAffinity is the Kubernetes node affinity of an image (match.Affinity), with the specs it
// was derived from.
type ImageAffinity struct {
	// Affinity is the affinity: for an index, one alternative per platform entry (each with its
	// kubernetes.io/os and kubernetes.io/arch requirements), each the product of the entry's
	// manifest spec and the specs of the indexes above it.
	Affinity *match.Affinity
	// Specs are the specs used, in the order they were read (manifest, then the indexes above it,
	// entry by entry; a spec shared by entries appears once per entry).
	Specs []*SubjectSpec
	// Untrusted are the subjects whose specs a trust policy kept out (SpecUntrusted): their
	// specs are left out of the affinity, which is weaker for it.
	Untrusted []*SubjectSpec
	// Excluded lists the entries (os/arch[/variant], or "manifest") that AffinityOptions.RequireTrusted
	// left out because no trusted spec covers them.
	Excluded []string
}

// AffinityOptions tune Image.Affinity.
type AffinityOptions struct {
	// Platform, when set, keeps only that entry of an index (Named).
	Platform string
	// RequireTrusted leaves out the entries that no verified spec covers (neither their own nor
	// an index's), as Options.RequireTrusted makes them not compatible; when none is left the
	// error wraps signing.ErrNoTrustedSpec. It needs a trust policy (the Image's Reader).
	RequireTrusted bool
}

// Affinity derives the image's node affinity on NFD's labels: for a single manifest, its spec's;
// for an index, the union over its platform entries (BuildKit's attestation entries excluded), or
// the entry platform names when it is not empty (Named). A subject whose specs cannot be read
// makes it an error (an affinity from specs that cannot be read would be a guess; the error wraps
// the SubjectSpec's Err and names the subject); specs a trust policy keeps out are left out and
// listed in Untrusted. The error wraps a *match.TooLargeError, with the referrer of the spec that
// took it past the bound, when the affinity would be too large.
func (img *Image) Affinity(ctx context.Context, opts AffinityOptions) (*ImageAffinity, error) {
	platform := opts.Platform
	out := &ImageAffinity{}
	// trusted reports whether a verified spec covers subjects (read already: cached).
	trusted := func(subjects []ocispec.Descriptor) bool {
		for _, ss := range img.reader.Specs(ctx, subjects) {
			if ss.State == SpecFound && ss.Verified {
				return true
			}
		}
		return false
	}
	specsOf := func(subjects []ocispec.Descriptor) ([]*spec.Spec, []string, error) {
		var specs []*spec.Spec
		var refs []string
		for _, ss := range img.reader.Specs(ctx, subjects) {
			switch ss.State {
			case SpecUnreadable:
				return nil, nil, fmt.Errorf("the specs of %s: %w", img.Ref(ss.Subject), ss.Err)
			case SpecUntrusted:
				out.Untrusted = append(out.Untrusted, ss)
			case SpecFound:
				specs = append(specs, ss.Spec)
				refs = append(refs, img.Ref(ss.Referrer))
				out.Specs = append(out.Specs, ss)
			}
		}
		return specs, refs, nil
	}
	tooLarge := func(err error, what string, refs []string) error {
		var tl *match.TooLargeError
		if errors.As(err, &tl) && tl.Spec >= 0 && tl.Spec < len(refs) {
			err = fmt.Errorf("spec %s: %w", refs[tl.Spec], err)
		}
		return fmt.Errorf("no node affinity for %s: %w", what, err)
	}
	if !img.Tree.IsIndex() {
		specs, refs, err := specsOf([]ocispec.Descriptor{img.Tree.Root})
		if err != nil {
			return nil, err
		}
		if opts.RequireTrusted && !trusted([]ocispec.Descriptor{img.Tree.Root}) {
			out.Excluded = append(out.Excluded, "manifest")
			return nil, fmt.Errorf("%w: %s", signing.ErrNoTrustedSpec, noTrustedText(img.Ref(img.Tree.Root), out.Untrusted))
		}
		if out.Affinity, err = match.NodeAffinity(specs...); err != nil {
			return nil, tooLarge(err, img.Ref(img.Tree.Root), refs)
		}
		return out, nil
	}
	var entries []oci.IndexEntry
	if platform != "" {
		e, err := img.Named(platform)
		if err != nil {
			return nil, err
		}
		entries = []oci.IndexEntry{e}
	} else {
		for _, e := range img.Tree.Manifests {
			if !e.Attestation() && e.Descriptor.Platform != nil {
				entries = append(entries, e)
			}
		}
	}
	parts := make([]*match.Affinity, 0, len(entries))
	for _, e := range entries {
		subjects := []ocispec.Descriptor{e.Descriptor}
		for i := len(e.Indexes) - 1; i >= 0; i-- {
			subjects = append(subjects, e.Indexes[i])
		}
		// Read every subject first (one concurrent read), then decide about trust.
		img.reader.Specs(ctx, subjects)
		p := oci.FormatPlatform(e.Descriptor.Platform)
		if opts.RequireTrusted && !trusted(subjects) {
			out.Excluded = append(out.Excluded, p)
			continue
		}
		specs, refs, err := specsOf(subjects)
		if err != nil {
			return nil, err
		}
		pa, err := match.NodeAffinity(specs...)
		if err != nil {
			return nil, tooLarge(err, img.Ref(e.Descriptor)+" ("+p+")", refs)
		}
		reqs, omitted := match.PlatformRequirements(p)
		pa.Require(reqs...)
		if omitted != "" {
			pa.Omitted = append(pa.Omitted, match.Omission{Set: "platform", Rule: p,
				What: omitted, Why: "a node that cannot run this entry may be selected"})
		}
		parts = append(parts, pa)
	}
	if opts.RequireTrusted && len(parts) == 0 {
		return nil, fmt.Errorf("%w: no entry of %s (%s) has a trusted spec", signing.ErrNoTrustedSpec, img.Ref(img.Tree.Root), strings.Join(out.Excluded, ", "))
	}
	var err error
	if out.Affinity, err = match.Union(parts...); err != nil {
		return nil, tooLarge(err, fmt.Sprintf("%s (%d platforms)", img.Ref(img.Tree.Root), len(parts)), nil)
	}
	return out, nil
}

// noTrustedText says why a single manifest has no trusted spec: the first reason a policy gave.
func noTrustedText(ref string, untrusted []*SubjectSpec) string {
	for _, ss := range untrusted {
		if ss.Err != nil {
			return ss.Err.Error()
		}
	}
	return ref + " has no spec"
}
