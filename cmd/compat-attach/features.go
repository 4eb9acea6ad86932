package main

import (
	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/pkg/host"
)

type featuresOptions struct {
	output outputOption
}

func featuresCmd() *cobra.Command {
	var opts featuresOptions
	cmd := &cobra.Command{
		Use:   "features",
		Short: "Print this host's features in NFD's Features shape",
		Long: `Discover this host's features with NFD's feature sources (cpu, kernel, pci, system, ...) and
compatkit's own (compatkit.platform, compatkit.libc), and print them as NFD's Features JSON, the
shape 'nfd export features' prints. Save it to check images against this machine from elsewhere
(check --features FILE). Sources that fail (missing DMI or /proc/modules) are reported on stderr.`,
		Example: `  compat-attach features > node.json
  compat-attach check --oci-layout examples/hello/build/oci:1.0 --features node.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.output.validate(); err != nil {
				return err
			}
			f, warnings, err := host.New().Discover(cmd.Context())
			for _, w := range warnings {
				cmd.PrintErrf("warning: feature source %s\n", w)
			}
			if err != nil {
				return err
			}
			return writeData(cmd.OutOrStdout(), opts.output.format, f)
		},
	}
	opts.output.bind(cmd.Flags(), "json", "json", "yaml")
	return cmd
}
