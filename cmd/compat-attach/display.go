package main

import (
	"io"

	"github.com/compatkit/compatkit/cmd/compat-attach/internal/display"
	"github.com/compatkit/compatkit/pkg/spec"
)

// writeSpec prints a spec as JSON, or as the artifact's YAML (the layer's exact bytes).
func writeSpec(w io.Writer, format string, s *spec.Spec) error {
	if format == "json" {
		return display.Print(w, "json", s)
	}
	y, err := s.MarshalYAML()
	if err != nil {
		return err
	}
	_, err = w.Write(y)
	return err
}
