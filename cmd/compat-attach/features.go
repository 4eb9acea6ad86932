package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/cmd/compat-attach/internal/display"
	"github.com/compatkit/compatkit/pkg/host"
)

type featuresOptions struct {
	output       outputOption
	nfdLocalFile string
	nfdExpiry    time.Duration
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
		Example: `  # Save this machine's features, and check an image against them from anywhere
  compat-attach features > node.json
  compat-attach check --oci-layout examples/hello/build/oci:1.0 --features node.json

  # Publish compatkit's own features (GPU driver, libc, runtimes, MPI) to NFD on this node
  compat-attach features --nfd-local-file /etc/kubernetes/node-feature-discovery/features.d/compatkit --nfd-local-expiry 24h`,
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
			if opts.nfdLocalFile != "" {
				var expiry time.Time
				if opts.nfdExpiry > 0 {
					expiry = time.Now().Add(opts.nfdExpiry)
				}
				if err := host.WriteNFDLocalFileAt(opts.nfdLocalFile, f, expiry); err != nil {
					return err
				}
				cmd.PrintErrf("wrote compatkit's features to %s (NFD local.feature elements compatkit.<name>.<element>)\n", opts.nfdLocalFile)
				return nil
			}
			return display.Print(cmd.OutOrStdout(), opts.output.format, f)
		},
	}
	opts.output.bind(cmd.Flags(), "json", "json", "yaml")
	cmd.Flags().StringVar(&opts.nfdLocalFile, "nfd-local-file", "", "write compatkit's own features (compatkit.*) to this NFD local feature file instead of printing the features")
	cmd.Flags().DurationVar(&opts.nfdExpiry, "nfd-local-expiry", 0, "with --nfd-local-file: NFD drops the features after this long (0: never)")
	return cmd
}
