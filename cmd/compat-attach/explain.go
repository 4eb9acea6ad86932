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
	cue    cueOptions
	list   bool
}

func explainCmd() *cobra.Command {
	var opts explainOptions
	cmd := &cobra.Command{
		Use:   "explain [PATH]",
		Short: "Print the documentation, type, default and allowed values of a setting",
		Long: `Explain a setting of compatkit's CUE module: the core schema (cue), a group template
(templates/<name>) or a domain module (cpu/x86, cpu/arm64, kernel, os, gpu/nvidia, network/rdma,
runtime, and the domains of --cue-path or COMPATKIT_CUE_PATH). PATH is <package>.<setting>; a
domain's settings are looked up in its #Config, so gpu/nvidia.driver is gpu/nvidia's
#Config.driver. A package alone lists its settings. Without PATH (or with --list), list the domains
and templates, built in and of --cue-path, with the first sentence of their docs.`,
		Example: `  compat-attach explain
  compat-attach explain gpu/nvidia
  compat-attach explain gpu/nvidia.driver
  compat-attach explain cue.#Compatibility.weight
  compat-attach explain templates/x86-64-levels.v3
  compat-attach explain --cue-path ~/my-domains hpc/slurm.partition`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.output.validate(); err != nil {
				return err
			}
			if opts.list || len(args) == 0 {
				if len(args) > 0 {
					return usagef("explain --list takes no PATH")
				}
				return runExplainList(cmd, &opts)
			}
			if strings.TrimSpace(args[0]) == "" {
				return &usageError{err: fmt.Errorf("explain needs a PATH, e.g. gpu/nvidia.driver, cue.#Compatibility.weight or templates/x86-64-levels.v3 (explain alone lists the domains and templates)")}
			}
			e, err := author.Explain(args[0], opts.cue.options())
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
	opts.cue.bind(cmd.Flags())
	cmd.Flags().BoolVar(&opts.list, "list", false, "list the domains and templates (built in and of --cue-path) with their one-line docs")
	return cmd
}

// runExplainList prints the domains and templates, one a line: the path explain takes and the
// first sentence of the package doc.
func runExplainList(cmd *cobra.Command, opts *explainOptions) error {
	pkgs, err := author.ListPackages(opts.cue.options())
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if opts.output.format == "json" {
		return display.Print(out, "json", pkgs)
	}
	width := 0
	for _, p := range pkgs {
		width = max(width, len(p.Path))
	}
	heading := ""
	for _, p := range pkgs {
		h := "domains:"
		if strings.HasPrefix(p.Path, "templates/") {
			h = "templates:"
		}
		if h != heading {
			if heading != "" {
				fmt.Fprintln(out)
			}
			fmt.Fprintln(out, h)
			heading = h
		}
		summary := shorten(p.Summary, 100)
		if p.External != "" {
			summary += " (from " + p.External + ")"
		}
		fmt.Fprintf(out, "  %-*s  %s\n", width, p.Path, summary)
	}
	fmt.Fprintln(out, "\n`compat-attach explain <path>` lists a package's settings, `explain <path>.<setting>` documents one.")
	fmt.Fprintln(out, "Import a domain as \"compatkit.dev/domains/<path>\", a template as \"compatkit.dev/<path>\", with")
	fmt.Fprintln(out, ":<package> where the directory name is not the package name (-o json gives each import path).")
	return nil
}

// shorten cuts s at a word boundary to at most n bytes, with "..." when cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := strings.LastIndex(s[:n-3], " ")
	if cut <= 0 {
		cut = n - 3
	}
	return strings.TrimRight(s[:cut], ",;:") + "..."
}
