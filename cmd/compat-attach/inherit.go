package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/pflag"
	"oras.land/oras-go/v2/registry"

	"github.com/compatkit/compatkit/pkg/author"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/spec"
)

// Annotations of an image that name its base (OCI image-spec v1.1 annotations.md).
const (
	annotationBaseName   = ocispec.AnnotationBaseImageName
	annotationBaseDigest = ocispec.AnnotationBaseImageDigest
)

// baseOptions selects the base image whose spec a derived image inherits.
type baseOptions struct {
	ref       string
	noBase    bool
	ociLayout bool
	policy    policyOptions // only --base-policy and --base-key are bound
}

func (o *baseOptions) bind(fs *pflag.FlagSet) {
	fs.StringVar(&o.ref, "base", "", "inherit the newest spec of this base image (default: the image's org.opencontainers.image.base.name/.digest annotations)")
	fs.BoolVar(&o.noBase, "no-base", false, "do not inherit from the base image named in the image's annotations")
	fs.BoolVar(&o.ociLayout, "base-oci-layout", false, "--base is an OCI image layout PATH[:TAG|@DIGEST]")
	fs.StringVar(&o.policy.file, "base-policy", "", "inherit only a base spec this trust policy verifies")
	fs.StringArrayVar(&o.policy.keys, "base-key", nil, "inherit only a base spec signed by this public key; repeatable")
}

// inheritedSpec is a job's spec after inheritance and what to record about it.
type inheritedSpec struct {
	spec *spec.Spec
	base *spec.BaseProvenance
}

// inheritAll composes every job's spec with its base image's newest (trusted) spec, before anything
// is pushed. A conflict is an error naming both sides; relaxations print warnings.
func inheritAll(ctx context.Context, stderr io.Writer, opts *attachOptions, r *resolved, res *author.Result, jobs []attachment) ([]inheritedSpec, error) {
	out := make([]inheritedSpec, len(jobs))
	for i, j := range jobs {
		out[i].spec = j.spec
	}
	if opts.base.noBase {
		if len(res.Relax) > 0 {
			fmt.Fprintf(stderr, "warning: --no-base: the document's relax %v has no effect\n", res.Relax)
		}
		return out, nil
	}
	v, err := opts.base.policy.verifier(ctx)
	if err != nil {
		return nil, err
	}
	bases := map[string]*resolved{}
	inherited := false
	defer func() {
		if !inherited && len(res.Relax) > 0 {
			fmt.Fprintf(stderr, "warning: the document relaxes %v, but no base spec was inherited: relax has no effect\n", res.Relax)
		}
	}()
	for i, j := range jobs {
		ref, baseOpts, err := baseRef(ctx, opts, r, j.subject)
		if err != nil {
			return nil, err
		}
		if ref == "" {
			continue
		}
		b, ok := bases[ref]
		if !ok {
			if b, err = resolveImage(ctx, ref, baseOpts, ""); err != nil {
				return nil, fmt.Errorf("base image: %w", err)
			}
			bases[ref] = b
		}
		subject := b.root
		platform := j.platform
		if platform == "" && j.subject.Platform != nil {
			platform = oci.FormatPlatform(j.subject.Platform)
		}
		if b.index != nil && platform != "" {
			if subject, err = oci.SelectPlatform(b.index, platform); err != nil {
				return nil, withNext(fmt.Errorf("base image %s: %w", ref, err), "name a base that has this platform with --base, or --no-base")
			}
		}
		var baseSpec *spec.Spec
		var referrer ocispec.Descriptor
		if v != nil {
			baseSpec, referrer, err = trustedSpec(ctx, b, subject, v, stderr)
		} else {
			baseSpec, referrer, err = b.target.NewestSpec(ctx, subject)
		}
		if isNoSpec(err) {
			if b.index != nil && subject.Digest == b.root.Digest {
				// The derived spec goes on an index; the base may have specs on its manifests only.
				if entries, derr := b.target.Discover(ctx); derr == nil && len(entries) > 0 {
					return nil, withNext(fmt.Errorf("base image %s has specs on its platform manifests only, and %s gets one spec for all platforms", ref, r.ref(j.subject)),
						"attach per platform (--platform P, or platforms: in the document) to inherit each platform's base spec, or pass --no-base")
				}
			}
			fmt.Fprintf(stderr, "note: base image %s has no compatibility spec: nothing to inherit\n", b.ref(subject))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("base image %s: %w", b.ref(subject), err)
		}
		if v == nil {
			fmt.Fprintf(stderr, "warning: inheriting the unverified spec %s of base %s: pass --base-key or --base-policy to require a signature\n", b.ref(referrer), ref)
		}
		baseName := b.ref(subject)
		derived, inh, warnings, err := res.Inherit(j.platform, baseSpec, baseName)
		var ie *author.InheritError
		if errors.As(err, &ie) {
			return nil, withNext(err, "make the rule at least as strict as the base's, or name it in relax: [...] to drop it explicitly")
		}
		if err != nil {
			return nil, err
		}
		for _, w := range warnings {
			fmt.Fprintf(stderr, "warning: %s (relaxed from base %s)\n", w, baseName)
		}
		inherited = true
		out[i] = inheritedSpec{spec: derived, base: &spec.BaseProvenance{
			Ref: ref, Digest: subject.Digest.String(), Referrer: referrer.Digest.String(), Verified: v != nil,
			Inherited: inh.Inherited, Relaxed: inh.Relaxed,
		}}
	}
	return out, nil
}

// baseRef is the base image of subject: --base, or the subject's base annotations.
func baseRef(ctx context.Context, opts *attachOptions, r *resolved, subject ocispec.Descriptor) (string, *targetOptions, error) {
	if opts.base.ref != "" {
		return opts.base.ref, &targetOptions{ociLayout: opts.base.ociLayout, plainHTTP: opts.target.plainHTTP}, nil
	}
	var ann map[string]string
	if isIndex(subject) {
		idx, err := r.target.FetchIndex(ctx, subject)
		if err != nil {
			return "", nil, err
		}
		ann = idx.Annotations
	} else {
		m, err := r.target.FetchManifest(ctx, subject)
		if err != nil {
			return "", nil, err
		}
		ann = m.Annotations
	}
	name, dgst := ann[annotationBaseName], ann[annotationBaseDigest]
	if name == "" {
		return "", nil, nil
	}
	ref := name
	if dgst != "" {
		// Pin the base to the digest the image was built from.
		pr, err := registry.ParseReference(name)
		if err != nil {
			return "", nil, fmt.Errorf("%s: annotation %s=%q is not an image reference: %v", r.ref(subject), annotationBaseName, name, err)
		}
		ref = pr.Registry + "/" + pr.Repository + "@" + dgst
	}
	if strings.TrimSpace(ref) == "" {
		return "", nil, nil
	}
	return ref, &targetOptions{plainHTTP: opts.target.plainHTTP}, nil
}
