package main

import (
	"io"

	"github.com/compatkit/compatkit/cmd/compat-attach/internal/display"
	"github.com/compatkit/compatkit/pkg/spec"
)

// writeSpec prints a spec as JSON, or as YAML: the artifact's own YAML (the layer's bytes as
// compatkit writes them), or when the spec holds characters YAML cannot (control characters from
// a hostile or broken spec), a YAML rendering with them escaped.
func writeSpec(w io.Writer, format string, s *spec.Spec) error {
	if format == "json" {
		return display.Print(w, "json", s)
	}
	y, err := s.MarshalYAML()
	if err != nil {
		return display.Print(w, "yaml", s)
	}
	_, err = w.Write(y)
	return err
}
