package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/cmd/compat-attach/internal/display"
	"github.com/compatkit/compatkit/pkg/host"
)

type featuresOptions struct {
	output       outputOption
	nfdLocalFile string
	nfdExpiry    time.Duration
	hostRoot     string
	platform     string
	quiet        bool
}

func featuresCmd() *cobra.Command {
	var opts featuresOptions
	cmd := &cobra.Command{
		Use:   "features",
		Short: "Print this host's features in NFD's Features shape",
		Long: `Discover this host's features with NFD's feature sources (cpu, kernel, pci, system, ...) and
compatkit's own (compatkit.platform, compatkit.libc), and print them as NFD's Features JSON, the
shape 'nfd export features' prints. Save it to check images against this machine from elsewhere
(check --features FILE). Sources that fail (missing DMI or /proc/modules) are reported on stderr,
one line each (-q: none).

With --host-root DIR, describe the machine whose root file system or support dump is at DIR
instead: a mounted root, an extracted sosreport (its top directory, or the directory holding it),
or one node directory of an OpenShift must-gather. Only DIR's files are read (no command runs, and
nothing of this machine is asked): cpu.cpuid and cpu.model from DIR/proc/cpuinfo, the kernel
release from proc/sys/kernel/osrelease, a uname -a output (sos_commands/kernel/uname_-a) or
proc/version, NFD's pci, usb, system, memory, network and storage sources under DIR. The platform
is proc/cpuinfo's architecture unless --platform says it. What DIR cannot tell is listed in
compatkit.unknown, so that check says "unknown on this host" for rules over it.`,
		Example: `  # Save this machine's features, and check an image against them from anywhere
  compat-attach features > node.json
  compat-attach check --oci-layout examples/hello/build/oci:1.0 --features node.json

  # Publish compatkit's own features (GPU driver, libc, runtimes, MPI) to NFD on this node
  compat-attach features --nfd-local-file /etc/kubernetes/node-feature-discovery/features.d/compatkit --nfd-local-expiry 24h

  # Features of the machine a sosreport was taken on
  compat-attach features --host-root sosreport-node1-2026-12-01-abcdef -o yaml > node1.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.output.validate(); err != nil {
				return err
			}
			d := host.New()
			if opts.hostRoot != "" {
				if opts.nfdLocalFile != "" {
					return &usageError{err: fmt.Errorf("--nfd-local-file publishes this node's features: it cannot be used with --host-root")}
				}
				var err error
				if d, err = host.HostRoot(opts.hostRoot, host.HostRootOptions{Platform: opts.platform}); err != nil {
					return err
				}
			} else if opts.platform != "" {
				return &usageError{err: fmt.Errorf("--platform needs --host-root (this host's platform is discovered)")}
			}
			f, warnings, err := d.Discover(cmd.Context())
			if f != nil {
				warnings = append(warnings, host.MissingFeatureWarnings(f)...)
				warnings = append(warnings, host.UnknownWarnings(f)...)
			}
			if !opts.quiet {
				for _, w := range warnings {
					cmd.PrintErrf("warning: feature source %s\n", w)
				}
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
	cmd.Flags().StringVar(&opts.hostRoot, "host-root", "", "describe the machine whose root file system, sosreport or must-gather node directory is at this directory, from its files only")
	cmd.Flags().StringVar(&opts.platform, "platform", "", "with --host-root: the machine's platform (os/arch[/variant]), instead of the architecture its proc/cpuinfo shows")
	cmd.Flags().BoolVarP(&opts.quiet, "quiet", "q", false, "do not print a warning for each feature source that could not be read")
	return cmd
}
