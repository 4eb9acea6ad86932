package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/cmd/compat-attach/internal/display"
	"github.com/compatkit/compatkit/pkg/author"
)

type vetOptions struct {
	output  outputOption
	cue     cueOptions
	files   []string
	domains []string
}

func vetCmd() *cobra.Command {
	var opts vetOptions
	cmd := &cobra.Command{
		Use:   "vet FILE... | vet --domain DIR",
		Short: "Validate compatibility specs written in CUE, YAML or JSON",
		Long: `Validate compatibility specs against compatkit's schema: NFD's v1alpha1 spec, its operators
and their arity, weights 0-100, NFD's feature names and the cpu.cpuid flags NFD v0.19 reports (a
misspelt "AVX521F" is an error with a did-you-mean; COMPATKIT_ALLOW_FLAGS=NAME,... accepts flags
of a newer NFD, in vet, export and attach alike). The .cue files of one directory form one CUE
package, as the cue tool loads them; each .yaml/.yml/.json file is one spec. Problems are printed as file:line:col: message.

--domain DIR runs every check of a domain module, as go test ./domains/ does, with no Go: a doc
comment on the package and on every field, README.md, examples/good/*.cue compile and
examples/bad/*.cue fail with their "// error: " message, every #Config setting is set by a good
example, and the ` + "```cue" + ` blocks of README.md compile (not those marked ` + "```cue fragment" + `). DIR is
the domain directory (the one holding its .cue files); its parent is the --cue-path root, so
DIR/*.cue is imported as "compatkit.dev/domains/<base of DIR>" (give --cue-path ROOT for a domain
below ROOT, such as ROOT/hpc/slurm).`,
		Example: `  # Validate the example's spec
  compat-attach vet examples/hello/compat.cue

  # The problems as JSON, for editors and CI annotations
  compat-attach vet -o json compat.cue

  # Every check of a domain outside the repository (imported as compatkit.dev/domains/slurm)
  compat-attach vet --domain ~/my-domains/slurm`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.files = args
			if len(args) == 0 && len(opts.domains) == 0 {
				return usagef("vet needs FILE... or --domain DIR")
			}
			if err := opts.output.validate(); err != nil {
				return err
			}
			return runVet(cmd, &opts)
		},
	}
	opts.output.bind(cmd.Flags(), "text", "text", "json")
	opts.cue.bind(cmd.Flags())
	cmd.Flags().StringArrayVar(&opts.domains, "domain", nil, "run every check of the domain module in DIR, whose parent is the --cue-path root (repeatable)")
	return cmd
}

// vetGroups splits the arguments into what is validated together: the .cue files of one
// directory form one CUE package (as the cue tool loads them); every YAML or JSON file stands alone.
func vetGroups(files []string) [][]string {
	var groups [][]string
	byDir := map[string]int{}
	for _, f := range files {
		if filepath.Ext(f) != ".cue" {
			groups = append(groups, []string{f})
			continue
		}
		dir := filepath.Dir(f)
		if i, ok := byDir[dir]; ok {
			groups[i] = append(groups[i], f)
			continue
		}
		byDir[dir] = len(groups)
		groups = append(groups, []string{f})
	}
	return groups
}

func runVet(cmd *cobra.Command, opts *vetOptions) error {
	var ae *author.Error
	for _, g := range vetGroups(opts.files) {
		res, err := author.Compile(cmd.Context(), g, opts.cue.options())
		if err == nil {
			for _, w := range res.Warnings() {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+w.String())
			}
		}
		var ge *author.Error
		if err != nil && !errors.As(err, &ge) {
			return err
		}
		if ge != nil {
			if ae == nil {
				ae = &author.Error{}
			}
			ae.Problems = append(ae.Problems, ge.Problems...)
		}
	}
	for _, d := range opts.domains {
		if ps := author.CheckDomain(d, opts.cue.options()); len(ps) > 0 {
			if ae == nil {
				ae = &author.Error{}
			}
			ae.Problems = append(ae.Problems, ps...)
		}
	}
	var err error
	if ae != nil {
		err = ae
	}
	out := cmd.OutOrStdout()
	if opts.output.format == "json" {
		problems := []author.Problem{}
		if ae != nil {
			problems = ae.Problems
		}
		if werr := display.Print(out, "json", map[string]any{"valid": err == nil, "problems": problems}); werr != nil {
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
	if len(opts.files) > 0 {
		fmt.Fprintf(out, "%d file(s) valid\n", len(opts.files))
	}
	for _, d := range opts.domains {
		fmt.Fprintf(out, "domain %s: every check passed\n", d)
	}
	return nil
}

// oneDocument checks that files form one document, as export and attach compile them: the .cue
// files of one directory (a CUE package), or a single YAML or JSON file.
// compileNext says what to do after the document file could not be compiled: check the path
// when it does not exist, else vet it.
func compileNext(err error, file string) error {
	if errors.Is(err, fs.ErrNotExist) {
		return withNext(err, "check the path of --spec (%s)", file)
	}
	return withNext(err, "run `compat-attach vet %s` and fix the problems above", file)
}

func oneDocument(files []string) error {
	if g := vetGroups(files); len(g) > 1 {
		return &usageError{err: fmt.Errorf("%d documents given (%s and %s): give one, the .cue files of one directory or one YAML/JSON file (vet checks several at once)", len(g), g[0][0], g[1][0])}
	}
	return nil
}
