package main

import (
	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/pkg/author"
)

type exportOptions struct {
	output   outputOption
	cue      cueOptions
	platform string
	files    []string
}

func exportCmd() *cobra.Command {
	var opts exportOptions
	cmd := &cobra.Command{
		Use:   "export FILE...",
		Short: "Compile a spec to NFD's image-compatibility v1alpha1 YAML or JSON",
		Long: `Compile the spec and print the NFD v1alpha1 document that attach would push (layers[0] of the
referrer). A document with per-platform specs needs --platform.`,
		Example: `  # The spec for the x86-64-v3 image of the example
  compat-attach export examples/hello/compat.cue --platform linux/amd64/v3

  # As JSON
  compat-attach export compat.cue -o json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.files = args
			if err := oneDocument(args); err != nil {
				return err
			}
			if err := opts.output.validate(); err != nil {
				return err
			}
			return runExport(cmd, &opts)
		},
	}
	opts.output.bind(cmd.Flags(), "yaml", "yaml", "json")
	opts.cue.bind(cmd.Flags())
	cmd.Flags().StringVar(&opts.platform, "platform", "", "the platform (os/arch[/variant]) whose spec to export")
	return cmd
}

func runExport(cmd *cobra.Command, opts *exportOptions) error {
	res, err := author.Compile(cmd.Context(), opts.files, opts.cue.options())
	if err != nil {
		return err
	}
	s, err := res.For(opts.platform)
	if err != nil {
		if opts.platform == "" && len(res.Platforms) > 0 {
			return withNext(err, "choose one with --platform (the document's platforms are listed above)")
		}
		return err
	}
	return writeSpec(cmd.OutOrStdout(), opts.output.format, s)
}
