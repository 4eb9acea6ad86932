package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

type annotateOptions struct {
	target targetOptions
	tag    string
	image  string
}

func annotateCmd() *cobra.Command {
	var opts annotateOptions
	cmd := &cobra.Command{
		Use:   "annotate IMAGE [--tag TAG]",
		Short: "Copy each manifest's spec into the index's annotations, for one-request selection",
		Long: `Write a new image index equal to IMAGE's, with each manifest descriptor annotated with the newest
spec attached to that manifest (dev.compatkit.image-compatibility.spec, compact JSON, and
dev.compatkit.image-compatibility.referrer, the digest of its referrer), and the index's own spec in
the index's annotations; push it and move the tag to it. The image manifests are the same: nothing
is rebuilt. 'select --use-annotations' then needs the index alone.

The new index has a new digest: specs attached to the old index itself are attached again to the
new one; signatures of the old index do not follow. Run annotate again after attaching a new spec:
the referrers stay the source of truth (check and select read them by default and report a stale
annotation).`,
		Example: `  compat-attach annotate --oci-layout examples/hello/build/oci:1.0
  compat-attach annotate --plain-http localhost:5000/hello:1.0`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.image = args[0]
			return runAnnotate(cmd, &opts)
		},
	}
	opts.target.bind(cmd.Flags())
	cmd.Flags().StringVar(&opts.tag, "tag", "", "tag to point at the annotated index (default: IMAGE's tag)")
	return cmd
}

func runAnnotate(cmd *cobra.Command, opts *annotateOptions) error {
	ctx := cmd.Context()
	img, err := opts.target.image(ctx, opts.image, nil)
	if err != nil {
		return err
	}
	if !img.Tree.IsIndex() {
		return withNext(fmt.Errorf("%s is a single manifest, not an index: there is nothing to choose from", opts.image), "select needs no annotation for it")
	}
	if len(img.Tree.Indexes) > 1 {
		return withNext(fmt.Errorf("%s holds nested indexes: annotate writes the specs of one index's entries only", opts.image), "select reads the referrers of nested indexes as they are")
	}
	d, err := img.Reader().Target().Annotate(ctx, img.Tree.Root, opts.tag, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Annotated %s: %s\n", opts.image, img.Ref(d))
	return nil
}
