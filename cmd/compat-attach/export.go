package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/cmd/compat-attach/internal/ciout"
	"github.com/compatkit/compatkit/cmd/compat-attach/internal/display"
	"github.com/compatkit/compatkit/pkg/author"
	"github.com/compatkit/compatkit/pkg/spec"
)

type exportOptions struct {
	output   outputOption
	cue      cueOptions
	platform string
	files    []string
	outDir   string
	summary  bool
	ci       ciout.Files
}

func exportCmd() *cobra.Command {
	var opts exportOptions
	cmd := &cobra.Command{
		Use:   "export FILE...",
		Short: "Compile a spec to NFD's image-compatibility v1alpha1 YAML or JSON",
		Long: `Compile the spec and print the NFD v1alpha1 document that attach would push (layers[0] of the
referrer). A document with per-platform specs needs --platform, or --out-dir to write them all.`,
		Example: `  # The spec for the x86-64-v3 image of the example
  compat-attach export examples/hello/compat.cue --platform linux/amd64/v3

  # As JSON
  compat-attach export compat.cue -o json

  # One line per compatibility set: platform, tag, weight, rule names
  compat-attach export examples/hello/compat.cue --summary

  # Every spec of the document into a directory (default.yaml, linux-amd64-v3.yaml, ...)
  compat-attach export examples/hello/compat.cue --out-dir build/specs`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.files = args
			if err := oneDocument(args); err != nil {
				return err
			}
			if err := opts.output.validate(); err != nil {
				return err
			}
			if opts.outDir != "" && opts.platform != "" {
				return usagef("--out-dir writes every platform's spec: drop --platform")
			}
			if opts.summary && opts.outDir != "" {
				return usagef("--summary prints; --out-dir writes: give one")
			}
			return runExport(cmd, &opts)
		},
	}
	opts.output.bind(cmd.Flags(), "yaml", "yaml", "json")
	opts.cue.bind(cmd.Flags())
	cmd.Flags().StringVar(&opts.platform, "platform", "", "the platform (os/arch[/variant]) whose spec to export")
	cmd.Flags().BoolVar(&opts.summary, "summary", false, "print one line per compatibility set of every spec (or of --platform's): platform, tag, weight and rule names")
	cmd.Flags().StringVar(&opts.outDir, "out-dir", "", "write every spec of the document into this directory, one file per platform (default.yaml for the top-level spec), and print their paths")
	opts.ci.Bind(cmd.Flags())
	return cmd
}

func runExport(cmd *cobra.Command, opts *exportOptions) error {
	res, err := author.Compile(cmd.Context(), opts.files, opts.cue.options())
	if err != nil {
		return err
	}
	if opts.outDir != "" {
		return exportAll(cmd, opts, res)
	}
	if opts.summary {
		return exportSummary(cmd.OutOrStdout(), opts.platform, res)
	}
	s, err := res.For(opts.platform)
	if err != nil {
		if opts.platform == "" && len(res.Platforms) > 0 {
			return withNext(err, "choose one with --platform (the document's platforms are listed above)")
		}
		return err
	}
	if opts.platform != "" && len(res.Platforms) > 0 && s == res.Default {
		cmd.PrintErrf("note: the document has no spec for %s: this is its top-level spec, which attach gives to the entries no platform key names\n", opts.platform)
	}
	return writeSpec(cmd.OutOrStdout(), opts.output.format, s)
}

// exportAll writes every spec of res into opts.outDir and prints the paths; outputs spec-dir and
// specs (one path per line).
func exportAll(cmd *cobra.Command, opts *exportOptions, res *author.Result) error {
	if err := os.MkdirAll(opts.outDir, 0o755); err != nil {
		return err
	}
	ext := ".yaml"
	if opts.output.format == "json" {
		ext = ".json"
	}
	all := documentSpecs(res)
	var paths []string
	for _, o := range all {
		var b bytes.Buffer
		if err := writeSpec(&b, opts.output.format, o.s); err != nil {
			return err
		}
		name := "default"
		if o.platform != "" {
			name = strings.ReplaceAll(o.platform, "/", "-")
		}
		p := filepath.Join(opts.outDir, name+ext)
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			return err
		}
		paths = append(paths, p)
		fmt.Fprintln(cmd.OutOrStdout(), p)
	}
	if err := opts.ci.Set("spec-dir", opts.outDir); err != nil {
		return err
	}
	return opts.ci.SetLines("specs", paths)
}

// exportSummary prints one line per compatibility set: the spec's platform ("(top-level)" for the
// document's top-level spec), the set's tag and weight, and its rules' names.
func exportSummary(w io.Writer, platform string, res *author.Result) error {
	specs := documentSpecs(res)
	if platform != "" {
		s, err := res.For(platform)
		if err != nil {
			return err
		}
		specs = []namedSpec{{platform, s}}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PLATFORM\tSET\tWEIGHT\tRULES")
	for _, n := range specs {
		name := n.platform
		if name == "" {
			name = "(top-level)"
		}
		for i, c := range n.s.Compatibilities {
			tag := c.Tag
			if tag == "" {
				tag = fmt.Sprintf("#%d", i+1)
			}
			rules := make([]string, len(c.Rules))
			for j, r := range c.Rules {
				rules[j] = r.Name
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", display.Line(name), display.Line(tag), c.Weight, display.Line(strings.Join(rules, "; ")))
		}
	}
	return tw.Flush()
}

// namedSpec is one spec of a compiled document and its platform key ("" for the top-level spec).
type namedSpec struct {
	platform string
	s        *spec.Spec
}

// documentSpecs lists the specs of res: the top-level one first, then each platform's, by key.
func documentSpecs(res *author.Result) []namedSpec {
	var out []namedSpec
	if res.Default != nil {
		out = append(out, namedSpec{"", res.Default})
	}
	keys := make([]string, 0, len(res.Platforms))
	for k := range res.Platforms {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, namedSpec{k, res.Platforms[k]})
	}
	return out
}
