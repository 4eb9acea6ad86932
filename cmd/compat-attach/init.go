package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/pkg/author"
)

type initOptions struct {
	template string
	file     string
	force    bool
	list     bool
}

func initCmd() *cobra.Command {
	var opts initOptions
	cmd := &cobra.Command{
		Use:   "init --template NAME",
		Short: "Write a starting compat.cue from a template",
		Long: `Write a starting compat.cue for one kind of image. The file vets as it is; edit it, then run
compat-attach vet. --list shows the templates. An existing file is not replaced without --force.`,
		Example: `  compat-attach init --list
  compat-attach init --template multi-arch
  compat-attach init --template cuda --file gpu/compat.cue
  compat-attach init --template basic --file -     # print it`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if opts.list || opts.template == "" {
				if !opts.list {
					return usagef("give --template NAME (or --list)")
				}
				for _, s := range author.Scaffolds() {
					fmt.Fprintf(out, "%-15s %s\n", s.Name, s.Summary)
				}
				return nil
			}
			s, err := author.ScaffoldByName(opts.template)
			if err != nil {
				return &usageError{err: err}
			}
			if opts.file == "-" {
				fmt.Fprint(out, s.Content)
				return nil
			}
			flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if opts.force {
				flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
			}
			f, err := os.OpenFile(opts.file, flags, 0o644)
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s exists: use --force to replace it, or --file to write elsewhere", opts.file)
			}
			if err != nil {
				return err
			}
			if _, err := f.WriteString(s.Content); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(out, "wrote %s (template %s); check it with: compat-attach vet %s\n", opts.file, s.Name, opts.file)
			return nil
		},
	}
	var names []string
	for _, s := range author.Scaffolds() {
		names = append(names, s.Name)
	}
	cmd.Flags().StringVarP(&opts.template, "template", "t", "", "template: "+strings.Join(names, ", "))
	cmd.Flags().StringVarP(&opts.file, "file", "f", "compat.cue", `file to write ("-": standard output)`)
	cmd.Flags().BoolVar(&opts.force, "force", false, "replace an existing file")
	cmd.Flags().BoolVar(&opts.list, "list", false, "list the templates")
	return cmd
}
