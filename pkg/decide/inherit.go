package decide

import (
	"context"
	"errors"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry"

	"github.com/compatkit/compatkit/pkg/author"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/signing"
	"github.com/compatkit/compatkit/pkg/spec"
)

// BaseOptions says which base image a derived image inherits its spec from (Inherit).
type BaseOptions struct {
	// Ref is the base image reference. Empty means the base each subject's manifest (or index)
	// names in its org.opencontainers.image.base.name and .base.digest annotations (BuildKit
	// writes them), pinned to that digest.
	Ref string
	// Target says how to reach Ref (an OCI layout, plain HTTP ...). A base named by annotations
	// is a registry reference reached with Target.PlainHTTP.
	Target oci.Options
	// Disabled inherits nothing, even when the image names its base.
	Disabled bool
	// FromAnnotations follows a base named by the annotations wherever it is. Without it, such a
	// base is followed only when it is on the image's own registry: reading an OCI layout, or an
	// image on one registry, contacts no other registry unless asked to.
	FromAnnotations bool
	// Verifier, when set, inherits only a base spec it verifies (the newest such one).
	Verifier *signing.Verifier
}

// Inherited is an attachment's spec after inheritance, with what to record about it.
type Inherited struct {
	// Spec is the derived spec composed with its base's (the attachment's own when nothing was
	// inherited).
	Spec *spec.Spec
	// Base records the inherited base spec for the provenance layer; nil when none.
	Base *spec.BaseProvenance
	// Unchanged, set by a caller that skips unchanged specs, names the subject's newest referrer
	// whose spec equals Spec: nothing needs pushing.
	Unchanged *ocispec.Descriptor
}

// Inherit composes each attachment's spec with the newest (under opts.Verifier, the newest
// verified) spec of its base image, before anything is pushed (author.Result.Inherit: the derived
// spec keeps every base rule and may only tighten it, unless its relax list says otherwise). The
// base's subject is the base index's entry of the attachment's platform, or the base itself.
// It returns one Inherited per attachment and notes for the user (base without spec, unverified
// base spec, relaxed rules). A conflict is an *author.InheritError naming both sides.
func Inherit(ctx context.Context, img *Image, res *author.Result, jobs []Attachment, opts BaseOptions) ([]Inherited, []string, error) {
	out := make([]Inherited, len(jobs))
	for i, j := range jobs {
		out[i].Spec = j.Spec
	}
	var notes []string
	if opts.Disabled {
		if len(res.Relax) > 0 {
			notes = append(notes, fmt.Sprintf("warning: no base is inherited: the document's relax %v has no effect", res.Relax))
		}
		return out, notes, nil
	}
	bases := map[string]*Image{}
	inherited := false
	for i, j := range jobs {
		ref, topts, err := baseRef(ctx, img, j.Subject, opts)
		if err != nil {
			return nil, nil, err
		}
		if ref == "" {
			continue
		}
		if opts.Ref == "" && !opts.FromAnnotations && !sameRegistry(img, ref) {
			notes = append(notes, fmt.Sprintf("note: %s names its base %s (org.opencontainers.image.base.name), on another registry than the image's: its spec is not inherited unless you pass --base %s or --base-from-annotations", img.Ref(j.Subject), ref, ref))
			continue
		}
		platform := j.Platform
		if platform == "" && j.Subject.Platform != nil {
			platform = oci.FormatPlatform(j.Subject.Platform)
		}
		got, more, err := inheritOne(ctx, bases, ref, topts, platform, j.Platform, img.Ref(j.Subject), res, opts)
		notes = append(notes, more...)
		if err != nil {
			return nil, nil, err
		}
		if got != nil {
			out[i], inherited = *got, true
		}
	}
	if !inherited && len(res.Relax) > 0 {
		notes = append(notes, fmt.Sprintf("warning: the document relaxes %v, but no base spec was inherited: relax has no effect", res.Relax))
	}
	return out, notes, nil
}

// InheritFrom composes the document's spec for each of platforms with the spec of the base image
// opts.Ref for that platform, as Inherit does, when there is no image yet (a build: the BuildKit
// frontend). It returns one Inherited per platform.
func InheritFrom(ctx context.Context, res *author.Result, platforms []string, opts BaseOptions) ([]Inherited, []string, error) {
	out := make([]Inherited, len(platforms))
	var notes []string
	if opts.Ref == "" || opts.Disabled {
		for i, p := range platforms {
			s, err := res.For(p)
			if err != nil {
				return nil, nil, err
			}
			out[i].Spec = s
		}
		return out, notes, nil
	}
	bases := map[string]*Image{}
	for i, p := range platforms {
		s, err := res.For(p)
		if err != nil {
			return nil, nil, err
		}
		out[i].Spec = s
		got, more, err := inheritOne(ctx, bases, opts.Ref, opts.Target, p, p, "the image for "+p, res, opts)
		notes = append(notes, more...)
		if err != nil {
			return nil, nil, err
		}
		if got != nil {
			out[i] = *got
		}
	}
	return out, notes, nil
}

// inheritOne composes the document's spec for docPlatform with the spec of base ref for platform
// (the base index's entry of that platform, or the base itself); nil when the base has no spec.
// what names the derived subject in messages.
func inheritOne(ctx context.Context, bases map[string]*Image, ref string, topts oci.Options, platform, docPlatform, what string, res *author.Result, opts BaseOptions) (*Inherited, []string, error) {
	var notes []string
	b, ok := bases[ref]
	if !ok {
		t, err := oci.Open(ctx, ref, topts)
		if err != nil {
			return nil, nil, fmt.Errorf("base image: %w", err)
		}
		var trust *Trust
		if opts.Verifier != nil {
			trust = &Trust{Verifier: opts.Verifier}
		}
		if b, err = Open(ctx, t, trust); err != nil {
			return nil, nil, fmt.Errorf("base image: %w", err)
		}
		bases[ref] = b
	}
	subject := b.Tree.Root
	if b.Tree.IsIndex() && platform != "" {
		e, err := b.Named(platform)
		if err != nil {
			return nil, nil, fmt.Errorf("base image %s: %w (name a base that has this platform, or inherit nothing)", ref, err)
		}
		subject = e.Descriptor
	}
	ss := b.reader.Spec(ctx, subject)
	switch ss.State {
	case SpecUnreadable, SpecUntrusted:
		return nil, nil, fmt.Errorf("base image %s: %w", b.Ref(subject), ss.Err)
	case SpecNone:
		if b.Tree.IsIndex() && subject.Digest == b.Tree.Root.Digest {
			// The derived spec goes on an index; the base may have specs on its manifests only.
			if entries, derr := b.reader.target.DiscoverTree(ctx, b.Tree); derr == nil && len(entries) > 0 {
				return nil, nil, fmt.Errorf("%w: base image %s has specs on its platform manifests only, and %s gets one spec for all platforms: attach per platform to inherit each platform's base spec, or inherit nothing", ErrBasePerPlatform, ref, what)
			}
		}
		notes = append(notes, fmt.Sprintf("note: base image %s has no compatibility spec: nothing to inherit", b.Ref(subject)))
		return nil, notes, nil
	}
	for _, p := range ss.Passed {
		notes = append(notes, fmt.Sprintf("Ignoring base spec %s: %s", b.Ref(p.Referrer), p.Reason))
	}
	if opts.Verifier == nil {
		notes = append(notes, fmt.Sprintf("warning: inheriting the unverified spec %s of base %s: give the base's trust policy to require a signature", b.Ref(ss.Referrer), ref))
	}
	baseName := b.Ref(subject)
	derived, inh, warnings, err := res.Inherit(docPlatform, ss.Spec, baseName)
	if err != nil {
		return nil, notes, err
	}
	for _, w := range warnings {
		notes = append(notes, fmt.Sprintf("warning: %s (relaxed from base %s)", w, baseName))
	}
	return &Inherited{Spec: derived, Base: &spec.BaseProvenance{
		Ref: ref, Digest: subject.Digest.String(), Referrer: ss.Referrer.Digest.String(), Verified: ss.Verified,
		Inherited: inh.Inherited, Relaxed: inh.Relaxed,
	}}, notes, nil
}

// ErrBasePerPlatform means a spec for a whole index would inherit from a base whose specs are on
// its platform manifests only.
var ErrBasePerPlatform = errors.New("base specs are per platform")

// sameRegistry reports whether ref is on the registry host img was read from (never for an OCI
// layout, which is on no registry).
func sameRegistry(img *Image, ref string) bool {
	r, err := registry.ParseReference(ref)
	if err != nil || img.reader.target == nil || !img.reader.target.IsRegistry() {
		return false
	}
	return r.Registry == img.reader.target.Host()
}

// baseRef is the base image of subject: opts.Ref, or the subject's base annotations.
func baseRef(ctx context.Context, img *Image, subject ocispec.Descriptor, opts BaseOptions) (string, oci.Options, error) {
	if opts.Ref != "" {
		return opts.Ref, opts.Target, nil
	}
	t := img.reader.target
	var ann map[string]string
	if oci.IsIndex(subject.MediaType) {
		idx, err := t.FetchIndex(ctx, subject)
		if err != nil {
			return "", oci.Options{}, err
		}
		ann = idx.Annotations
	} else {
		m, err := t.FetchManifest(ctx, subject)
		if err != nil {
			return "", oci.Options{}, err
		}
		ann = m.Annotations
	}
	name, dgst := strings.TrimSpace(ann[ocispec.AnnotationBaseImageName]), strings.TrimSpace(ann[ocispec.AnnotationBaseImageDigest])
	if name == "" {
		return "", oci.Options{}, nil
	}
	ref := name
	if dgst != "" {
		// Pin the base to the digest the image was built from.
		pr, err := registry.ParseReference(name)
		if err != nil {
			return "", oci.Options{}, fmt.Errorf("%s: annotation %s=%q is not an image reference: %v", img.Ref(subject), ocispec.AnnotationBaseImageName, name, err)
		}
		ref = pr.Registry + "/" + pr.Repository + "@" + dgst
	}
	return ref, oci.Options{PlainHTTP: opts.Target.PlainHTTP}, nil
}
