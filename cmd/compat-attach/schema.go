package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/pkg/author"
)

func schemaCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of compatibility documents, for editors",
		Long: `Print the JSON Schema (draft 2020-12) of compat.#Document, generated from compatkit's CUE
schema, for editors that validate YAML and JSON spec files. The repository commits it as
schema/compat.schema.json (go generate ./pkg/author regenerates it).`,
		Example: `  compat-attach schema -f schema/compat.schema.json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := author.JSONSchema()
			if err != nil {
				return err
			}
			if file == "" || file == "-" {
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			return os.WriteFile(file, b, 0o644)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "write the schema to this file instead of standard output")
	return cmd
}
