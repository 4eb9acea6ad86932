// Package safetext escapes text that comes from registries and files (spec descriptions, rule
// names, annotations, error bodies) before it is shown: control characters, escape sequences and
// bidirectional overrides are written as Go escapes, so that such text cannot drive a terminal,
// forge output lines or read differently from what it is.
package safetext

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Unsafe reports whether r must not reach a terminal as it is: C0 and C1 control characters
// (tab and newline included: see Clean for text that may keep them), DEL, the Unicode line and
// paragraph separators U+2028 and U+2029 (YAML parsers, sigs.k8s.io/yaml and kubectl's among
// them, end a line, and so a comment, there, as they do at NEL U+0085, a C1 control), and the
// Unicode bidirectional overrides, isolates and marks that make text read differently from what
// it is ("Trojan Source", CVE-2021-42574).
func Unsafe(r rune) bool {
	switch {
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
		return true
	case r == 0x2028 || r == 0x2029:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e || r == 0x200f || r == 0x061c:
		return true
	}
	return false
}

// Line returns s on one line, with every unsafe character (newlines and tabs included) and every
// invalid UTF-8 byte written as a Go escape (\n, \x1b, \u202e). Use it for one value from
// outside: a rule name, a description, an error body.
func Line(s string) string { return escape(s, false) }

// Clean is Line keeping newlines and tabs: for whole texts whose line structure is the program's
// own.
func Clean(s string) string { return escape(s, true) }

// NeedsEscape reports whether s holds anything Line would escape.
func NeedsEscape(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || Unsafe(r) {
			return true
		}
		i += size
	}
	return false
}

func escape(s string, keepLines bool) string {
	if !NeedsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case keepLines && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case Unsafe(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case Unsafe(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// JSON returns data, valid JSON, with every unsafe character that encoding/json leaves raw
// (DEL, C1 controls, bidirectional overrides; it escapes only C0) written as a \u escape, which
// JSON reads back as the same character. Outside strings valid JSON holds none of them.
func JSON(data []byte) []byte {
	s := string(data)
	if !NeedsEscape(strings.NewReplacer("\n", "", "\t", "", "\r", "").Replace(s)) {
		return data
	}
	var b strings.Builder
	for _, r := range s {
		if Unsafe(r) && r != '\n' && r != '\t' && r != '\r' {
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return []byte(b.String())
}
