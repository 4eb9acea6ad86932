// Package display renders the models of compat-attach's commands, in one place, as oras's
// cmd/oras/internal/display does: each command builds one model value and Print renders it as
// text (the model's own Text method), JSON or YAML. Text that comes from a registry or a file
// (descriptions, rule names, tags, error bodies) cannot drive the terminal: Safe escapes control
// characters in everything written to stdout and stderr.
package display

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"sigs.k8s.io/yaml"

	"github.com/compatkit/compatkit/internal/safetext"
)

// Texter is a model that can render itself for people.
type Texter interface {
	// Text writes the model as text (human-readable) to w.
	Text(w io.Writer) error
}

// Print renders model to w in format: "text" or "table" (model.Text), "json" (indented) or
// "yaml". JSON and YAML render the model's exported fields; characters a terminal would act on
// (DEL, C1 controls, bidirectional overrides) are written escaped, as \u escapes in JSON (valid
// JSON, read back as the same text) and as Go escapes in YAML strings (YAML cannot hold them).
func Print(w io.Writer, format string, model any) error {
	switch format {
	case "text", "table":
		t, ok := model.(Texter)
		if !ok {
			return fmt.Errorf("display: %T has no text form", model)
		}
		return t.Text(w)
	case "json":
		data, err := json.MarshalIndent(model, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(safetext.JSON(data), '\n'))
		return err
	case "yaml":
		data, err := json.Marshal(model)
		if err != nil {
			return err
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return err
		}
		b, err := yaml.Marshal(cleanStrings(v))
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return fmt.Errorf("unsupported output format %q", format)
}

// cleanStrings escapes, in a decoded JSON value, the characters of strings (keys too) that YAML
// cannot hold or a terminal would act on.
func cleanStrings(v any) any {
	switch x := v.(type) {
	case string:
		return safetext.Clean(x)
	case []any:
		for i := range x {
			x[i] = cleanStrings(x[i])
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[safetext.Clean(k)] = cleanStrings(e)
		}
		return out
	}
	return v
}

// Line is safetext.Line: one value from a registry or file, on one line, escaped.
func Line(s string) string { return safetext.Line(s) }

// Table prints aligned columns; the first row is the header.
type Table struct {
	tw *tabwriter.Writer
}

// NewTable starts a table on w with the given header.
func NewTable(w io.Writer, header ...string) *Table {
	t := &Table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.Row(header...)
	return t
}

// Row adds a row; each cell is escaped onto one line (Line).
func (t *Table) Row(cols ...string) {
	for i, c := range cols {
		cols[i] = safetext.Line(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cols, "\t"))
}

// Flush writes the table.
func (t *Table) Flush() error { return t.tw.Flush() }

// safeWriter escapes unsafe characters in what passes through it.
type safeWriter struct {
	w   io.Writer
	buf []byte // an incomplete UTF-8 sequence from the previous write
}

// Safe wraps w so that control characters, escape sequences and bidirectional overrides in what
// is written appear escaped (safetext.Clean) instead of acting on the terminal. Tabs and newlines
// pass: values that come from outside are escaped one by one with Line where a newline could
// forge an output line.
// Unwrap returns w.
func Safe(w io.Writer) io.Writer {
	if s, ok := w.(*safeWriter); ok {
		return s
	}
	return &safeWriter{w: w}
}

// Unwrap returns the writer Safe wrapped.
func (s *safeWriter) Unwrap() io.Writer { return s.w }

func (s *safeWriter) Write(p []byte) (int, error) {
	data := append(s.buf, p...)
	s.buf = nil
	// Keep an incomplete UTF-8 sequence at the end for the next write.
	if n := len(data); n > 0 {
		for k := 1; k <= 3 && k <= n; k++ {
			if utf8.RuneStart(data[n-k]) {
				if !utf8.FullRune(data[n-k:]) {
					s.buf = append([]byte(nil), data[n-k:]...)
					data = data[:n-k]
				}
				break
			}
		}
	}
	clean := data
	if text := string(data); safetext.NeedsEscape(strings.NewReplacer("\n", "", "\t", "").Replace(text)) {
		clean = []byte(safetext.Clean(text))
	}
	if _, err := s.w.Write(clean); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Raw returns the writer under Safe's wrapping (for progress lines that use \r), or w.
func Raw(w io.Writer) io.Writer {
	if s, ok := w.(*safeWriter); ok {
		return s.w
	}
	return w
}
