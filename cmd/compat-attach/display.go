package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"

	"github.com/compatkit/compatkit/pkg/spec"
)

// writeData prints v as JSON (indented) or YAML.
func writeData(w io.Writer, format string, v any) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return fmt.Errorf("unsupported output format %q", format)
}

// table prints aligned columns; the first row is the header.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cols ...string) { fmt.Fprintln(t.tw, strings.Join(cols, "\t")) }

func (t *table) flush() error { return t.tw.Flush() }

// writeSpec prints a spec as JSON, or as the artifact's YAML (the layer's exact bytes).
func writeSpec(w io.Writer, format string, s *spec.Spec) error {
	if format == "json" {
		return writeData(w, "json", s)
	}
	y, err := s.MarshalYAML()
	if err != nil {
		return err
	}
	_, err = w.Write(y)
	return err
}
