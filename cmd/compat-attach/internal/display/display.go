// Package display renders the models of compat-attach's commands, in one place, as oras's
// cmd/oras/internal/display does: each command builds one model value and Print renders it as
// text (the model's own Text method), JSON or YAML. Text that comes from a registry or a file
// (descriptions, rule names, tags, error bodies) cannot drive the terminal: Safe escapes control
// characters in everything written to stdout and stderr.
package display

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"sigs.k8s.io/yaml"
)

// Texter is a model that can render itself for people.
type Texter interface {
	// Text writes the model as text (human-readable) to w.
	Text(w io.Writer) error
}

// Print renders model to w in format: "text" or "table" (model.Text), "json" (indented) or
// "yaml". JSON and YAML render the model's exported fields.
func Print(w io.Writer, format string, model any) error {
	switch format {
	case "text", "table":
		t, ok := model.(Texter)
		if !ok {
			return fmt.Errorf("display: %T has no text form", model)
		}
		return t.Text(w)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(model)
	case "yaml":
		b, err := yaml.Marshal(model)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return fmt.Errorf("unsupported output format %q", format)
}

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

// Row adds a row; tabs and newlines inside cells are replaced by spaces.
func (t *Table) Row(cols ...string) {
	for i, c := range cols {
		cols[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cols, "\t"))
}

// Flush writes the table.
func (t *Table) Flush() error { return t.tw.Flush() }

// unsafeRune reports whether r must not reach a terminal as it is: C0 and C1 control characters
// (but tab and newline), DEL, and the Unicode bidirectional overrides and isolates that can make
// text read differently from what it is ("Trojan Source", CVE-2021-42574).
func unsafeRune(r rune) bool {
	switch {
	case r == '\n' || r == '\t':
		return false
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e || r == 0x200f || r == 0x061c:
		return true
	}
	return false
}

// Clean returns s with every unsafe character (see Safe) written as a Go escape (\x1b, \u202e),
// and invalid UTF-8 bytes as \xNN.
func Clean(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafeRune(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// safeWriter escapes unsafe characters in what passes through it.
type safeWriter struct {
	w   io.Writer
	buf []byte // an incomplete UTF-8 sequence from the previous write
}

// Safe wraps w so that control characters, escape sequences and bidirectional overrides in what
// is written appear escaped (Clean) instead of acting on the terminal. Tabs and newlines pass.
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
	for _, r := range string(data) {
		if unsafeRune(r) || r == utf8.RuneError {
			clean = []byte(Clean(string(data)))
			break
		}
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

var _ = unicode.IsPrint
