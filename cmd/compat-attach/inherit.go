package main

import (
	"context"

	"github.com/spf13/pflag"

	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/oci"
)

// baseOptions selects the base image whose spec a derived image inherits (decide.Inherit).
type baseOptions struct {
	ref             string
	noBase          bool
	ociLayout       bool
	fromAnnotations bool
	policy          policyOptions // only --base-policy and --base-key are bound
}

func (o *baseOptions) bind(fs *pflag.FlagSet) {
	fs.StringVar(&o.ref, "base", "", "inherit the newest spec of this base image (default: the image's org.opencontainers.image.base.name/.digest annotations)")
	fs.BoolVar(&o.noBase, "no-base", false, "do not inherit from the base image named in the image's annotations")
	fs.BoolVar(&o.fromAnnotations, "base-from-annotations", false, "follow the base named in the image's annotations even on another registry than the image's (a layout's base is on another registry)")
	fs.BoolVar(&o.ociLayout, "base-oci-layout", false, "--base is an OCI image layout PATH[:TAG|@DIGEST]")
	fs.StringVar(&o.policy.file, "base-policy", "", "inherit only a base spec this trust policy verifies")
	fs.StringArrayVar(&o.policy.keys, "base-key", nil, "inherit only a base spec signed by this public key; repeatable")
}

// options compiles the flags into decide.BaseOptions; target is how IMAGE itself is reached (a
// base named by IMAGE's annotations is reached the same way over HTTP or HTTPS).
func (o *baseOptions) options(ctx context.Context, target *targetOptions) (decide.BaseOptions, error) {
	v, err := o.policy.verifier(ctx)
	if err != nil {
		return decide.BaseOptions{}, err
	}
	return decide.BaseOptions{
		Ref:             o.ref,
		Target:          oci.Options{OCILayout: o.ociLayout, PlainHTTP: target.plainHTTP},
		Disabled:        o.noBase,
		FromAnnotations: o.fromAnnotations,
		Verifier:        v,
	}, nil
}
