package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/pkg/author"
)

type vetOptions struct {
	output outputOption
	files  []string
}

func vetCmd() *cobra.Command {
	var opts vetOptions
	cmd := &cobra.Command{
		Use:   "vet FILE...",
		Short: "Validate compatibility specs written in CUE, YAML or JSON",
		Long: `Validate compatibility specs against compatkit's schema: NFD's v1alpha1 spec, its operators
and their arity, weights 0-100 and NFD's feature names. All .cue files given form one CUE package;
each .yaml/.yml/.json file is one spec. Problems are printed as file:line:col: message.`,
		Example: `  # Validate the example's spec
  compat-attach vet examples/hello/compat.cue

  # The problems as JSON, for editors and CI annotations
  compat-attach vet -o json compat.cue`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.files = args
			if err := opts.output.validate(); err != nil {
				return err
			}
			return runVet(cmd, &opts)
		},
	}
	opts.output.bind(cmd.Flags(), "text", "text", "json")
	return cmd
}

func runVet(cmd *cobra.Command, opts *vetOptions) error {
	wd, _ := os.Getwd()
	err := author.Vet(cmd.Context(), opts.files, author.Options{Dir: wd})
	var ae *author.Error
	if err != nil && !errors.As(err, &ae) {
		return err
	}
	out := cmd.OutOrStdout()
	if opts.output.format == "json" {
		problems := []author.Problem{}
		if ae != nil {
			problems = ae.Problems
		}
		if werr := writeData(out, "json", map[string]any{"valid": err == nil, "problems": problems}); werr != nil {
			return werr
		}
		if err != nil {
			return &exitError{code: exitFailure}
		}
		return nil
	}
	if err != nil {
		for _, p := range ae.Problems {
			fmt.Fprintln(cmd.ErrOrStderr(), p.String())
		}
		return &exitError{code: exitFailure, msg: fmt.Sprintf("%d problem(s) found", len(ae.Problems))}
	}
	fmt.Fprintf(out, "%d file(s) valid\n", len(opts.files))
	return nil
}
