package oci

import (
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/compatkit/compatkit/internal/safetext"
)

// ParsePlatform parses "os/arch[/variant]" into an image-spec v1.1 platform (image-index.md,
// "platform": os, architecture, variant with GOOS/GOARCH values). Each part must be non-empty,
// without surrounding blanks, control characters or invisible ones (safetext.NeedsEscape).
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return ocispec.Platform{}, fmt.Errorf("platform %q: expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8", s)
	}
	for _, p := range parts {
		if p == "" || strings.TrimSpace(p) != p {
			return ocispec.Platform{}, fmt.Errorf("platform %q: empty or blank part: expected OS/ARCH[/VARIANT], e.g. linux/amd64", s)
		}
		if safetext.NeedsEscape(p) {
			return ocispec.Platform{}, fmt.Errorf("platform %q: control or invisible characters: expected OS/ARCH[/VARIANT], e.g. linux/amd64", s)
		}
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// FormatPlatform prints p as "os/arch[/variant]", the form ParsePlatform reads, and "(no
// platform)" for nil. A platform comes from an index, which anyone who can push writes: control
// characters, newlines, line separators and bidirectional overrides in its parts are escaped
// (safetext.Line: a newline as the two characters \n), so that the result is always one line of
// text, safe in a message or an output line whatever the registry sent.
func FormatPlatform(p *ocispec.Platform) string {
	if p == nil {
		return "(no platform)"
	}
	s := safetext.Line(p.OS) + "/" + safetext.Line(p.Architecture)
	if p.Variant != "" {
		s += "/" + safetext.Line(p.Variant)
	}
	return s
}
