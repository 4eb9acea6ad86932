package main

import (
	"flag"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/compatkit/compatkit/cmd/compat-attach/internal/display"
)

// version is set at link time (-ldflags "-X main.version=v0.1.0").
var version = "v0.1.0-dev"

func newRootCmd() *cobra.Command {
	var global globalOptions
	cmd := &cobra.Command{
		Use:   "compat-attach",
		Short: "Describe what an image needs of a host, attach it to the image, and check hosts against it",
		Long: `compat-attach writes image-compatibility specs in CUE, attaches them to existing OCI images as
referrers (Node Feature Discovery's image-compatibility v1alpha1 artifact), and reads them back to
check a host, without pulling the image's layers.

IMAGE is a registry reference (registry/repo:tag or registry/repo@digest), or with --oci-layout an
OCI image layout PATH[:TAG] or PATH@DIGEST.

Semantics: each compatibility set of a spec is an alternative; a set matches when all its rules
match; an image is compatible with a host when at least one set matches (an image with no spec is
compatible); its score is the highest weight among the matching sets (0-100).

Exit codes: 0 success or compatible, 1 error, 2 usage, 3 not compatible.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			quietKlog(global.verbose)
			// Text from registries and files (descriptions, rule names, error bodies) is shown,
			// never obeyed by the terminal.
			root := cmd.Root()
			root.SetOut(display.Safe(root.OutOrStdout()))
			root.SetErr(display.Safe(root.ErrOrStderr()))
			s, err := global.session()
			if err != nil {
				return err
			}
			cmd.SetContext(withSession(cmd.Context(), s))
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err: err} })
	global.bind(cmd.PersistentFlags())
	cmd.AddCommand(
		vetCmd(),
		exportCmd(),
		attachCmd(),
		discoverCmd(),
		fetchCmd(),
		selectCmd(),
		annotateCmd(),
		checkCmd(),
		featuresCmd(),
		explainCmd(), initCmd(), schemaCmd(),
		reportCmd(),
		affinityCmd(),
		signCmd(),
		verifyCmd(),
		generateKeyPairCmd(),
		inferCmd(),
		webhookCmd(),
	)
	return cmd
}

// quietKlog silences NFD's klog output (missing DMI files and the like) unless verbose.
func quietKlog(verbose bool) {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	if verbose {
		_ = fs.Set("v", "2")
		return
	}
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("alsologtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(io.Discard)
}
