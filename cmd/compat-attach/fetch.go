package main

import (
	"github.com/spf13/cobra"

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
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.image = args[0]
			if err := opts.output.validate(); err != nil {
				return err
			}
			return runFetch(cmd, &opts)
		},
	}
	opts.target.bind(cmd.Flags())
	opts.platform.bind(cmd.Flags(), "fetch the spec of this platform's manifest (os/arch[/variant])")
	opts.output.bind(cmd.Flags(), "yaml", "yaml", "json")
	opts.policy.bind(cmd.Flags())
	return cmd
}

func runFetch(cmd *cobra.Command, opts *fetchOptions) error {
	ctx := cmd.Context()
	if _, err := opts.platform.parse(); err != nil {
		return err
	}
	r, err := resolveImage(ctx, opts.image, &opts.target, opts.platform.raw)
	if err != nil {
		return err
	}
	v, err := opts.policy.verifier(ctx)
	if err != nil {
		return err
	}
	var s *spec.Spec
	if v != nil {
		s, _, err = trustedSpec(ctx, r, r.manifest, v, cmd.ErrOrStderr())
		if isNoTrustedSpec(err) {
			return withNext(err, "see why with `compat-attach verify %s`", opts.target.ref(opts.image))
		}
	} else {
		s, _, err = r.target.NewestSpec(ctx, r.manifest)
	}
	if err != nil {
		return withNext(err, "list what is attached with `compat-attach discover %s`", opts.target.ref(opts.image))
	}
	return writeSpec(cmd.OutOrStdout(), opts.output.format, s)
}
