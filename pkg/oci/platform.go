package oci

import (
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ParsePlatform parses "os/arch[/variant]" into an image-spec v1.1 platform (image-index.md,
// "platform": os, architecture, variant with GOOS/GOARCH values). Each part must be non-empty.
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return ocispec.Platform{}, fmt.Errorf("platform %q: expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8", s)
	}
	for _, p := range parts {
		if p == "" || strings.TrimSpace(p) != p {
			return ocispec.Platform{}, fmt.Errorf("platform %q: empty or blank part: expected OS/ARCH[/VARIANT], e.g. linux/amd64", s)
		}
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// FormatPlatform prints p as "os/arch[/variant]", the form ParsePlatform reads.
func FormatPlatform(p *ocispec.Platform) string {
	if p == nil {
		return "(no platform)"
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
