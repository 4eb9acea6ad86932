package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/cmd/compat-attach/internal/display"
	"github.com/compatkit/compatkit/pkg/author"
)

type explainOptions struct {
	output outputOption
}

func explainCmd() *cobra.Command {
	var opts explainOptions
	cmd := &cobra.Command{
		Use:   "explain PATH",
		Short: "Print the documentation, type, default and allowed values of a setting",
		Long: `Explain a setting of compatkit's CUE module: the core schema (cue), a group template
(templates/<name>) or a domain module (cpu/x86, cpu/arm64, kernel, os, gpu/nvidia, network/rdma,
runtime, and domains of COMPATKIT_CUE_PATH). PATH is <package>.<setting>; a domain's settings are
looked up in its #Config, so gpu/nvidia.driver is gpu/nvidia's #Config.driver. A package alone lists
its settings.`,
		Example: `  compat-attach explain gpu/nvidia
  compat-attach explain gpu/nvidia.driver
  compat-attach explain cue.#Compatibility.weight
  compat-attach explain templates/x86-64-levels.v3`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.output.validate(); err != nil {
				return err
			}
			if strings.TrimSpace(args[0]) == "" {
				return &usageError{err: fmt.Errorf("explain needs a PATH, e.g. gpu/nvidia.driver, cue.#Compatibility.weight or templates/x86-64-levels.v3")}
			}
			e, err := author.Explain(args[0], author.Options{})
			if err != nil {
				return err
			}
			if opts.output.format == "json" {
				return display.Print(cmd.OutOrStdout(), "json", e)
			}
			fmt.Fprint(cmd.OutOrStdout(), e.String())
			return nil
		},
	}
	opts.output.bind(cmd.Flags(), "text", "text", "json")
	return cmd
}
