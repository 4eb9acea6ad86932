package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/cmd/compat-attach/internal/display"
	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/spec"
)

type fetchOptions struct {
	target   targetOptions
	platform platformOption
	output   outputOption
	policy   policyOptions
	image    string
}

func fetchCmd() *cobra.Command {
	var opts fetchOptions
	cmd := &cobra.Command{
		Use:   "fetch IMAGE [--platform os/arch[/variant]]",
		Short: "Print the newest compatibility spec of an image",
		Long: `Print the newest compatibility spec (by org.opencontainers.image.created) attached to IMAGE, or
with --platform to that platform's manifest of an index: the same spec NFD's
'nfd compat validate-node' reads.

Under a trust policy (--policy, --key, --certificate-identity ...; see 'compat-attach verify --help'),
the newest spec that verifies is printed; each newer spec that does not is named on stderr with the
reason, and when none verifies fetch fails.`,
		Example: `  compat-attach fetch --oci-layout examples/hello/build/oci:1.0 --platform linux/amd64/v3
  compat-attach fetch --plain-http localhost:5000/hello:1.0 --platform linux/arm64 -o json
  compat-attach fetch --plain-http localhost:5000/hello:1.0 --platform linux/arm64 --key cosign.pub`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			opts.image = args[0]
			return validateAll(opts.output.validate, opts.platform.validate, opts.policy.validate)
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runFetch(cmd, &opts) },
	}
	opts.target.bind(cmd.Flags())
	opts.platform.bind(cmd.Flags(), "fetch the spec of this platform's manifest (os/arch[/variant])")
	opts.output.bind(cmd.Flags(), "yaml", "yaml", "json")
	opts.policy.bind(cmd.Flags())
	return cmd
}

func runFetch(cmd *cobra.Command, opts *fetchOptions) error {
	ctx := cmd.Context()
	trust, err := opts.policy.trust(ctx, &opts.target)
	if err != nil {
		return err
	}
	img, err := opts.target.image(ctx, opts.image, trust)
	if err != nil {
		return err
	}
	subject := img.Tree.Root
	if opts.platform.raw != "" {
		e, err := img.Named(opts.platform.raw)
		if err != nil {
			return withNext(fmt.Errorf("%s: %w", opts.image, err), "pick one of the index's platforms with --platform")
		}
		subject = e.Descriptor
	}
	ss := img.Reader().Spec(ctx, subject)
	printPassed(cmd, img, ss)
	switch ss.State {
	case decide.SpecNone:
		err := fmt.Errorf("%w: %s has no referrer of artifactType %s", oci.ErrNoSpec, img.Ref(subject), spec.ArtifactType)
		if opts.platform.raw == "" && img.Tree.IsIndex() {
			return withNext(err, "specs are often attached per platform: add --platform (%s), or list them with `compat-attach discover %s`", strings.Join(img.Platforms(), ", "), opts.target.ref(opts.image))
		}
		return withNext(err, "list what is attached with `compat-attach discover %s`", opts.target.ref(opts.image))
	case decide.SpecUntrusted:
		return withNext(ss.Err, "see why with `compat-attach verify %s`", opts.target.ref(opts.image))
	case decide.SpecUnreadable:
		return withNext(ss.Err, "list what is attached with `compat-attach discover %s`", opts.target.ref(opts.image))
	}
	if ss.Verified {
		cmd.PrintErrf("Using spec %s: VERIFIED (%s)\n", img.Ref(ss.Referrer), ss.Signer)
	} else {
		if ss.FromAttestation {
			cmd.PrintErrf("Using the spec of the build attestation %s\n", display.Line(img.Ref(ss.Referrer)))
		}
		cmd.PrintErrln(unverifiedNote)
	}
	return writeSpec(cmd.OutOrStdout(), opts.output.format, ss.Spec)
}
