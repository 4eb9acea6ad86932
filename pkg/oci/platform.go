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

// normVariant applies the one equivalence containerd and image-spec users rely on: arm64's
// default variant is v8, so "arm64" and "arm64/v8" are the same platform.
func normVariant(arch, variant string) string {
	if arch == "arm64" && variant == "v8" {
		return ""
	}
	return variant
}

// SelectPlatform returns the manifest of idx for platform "os/arch[/variant]" (image-spec v1.1
// image-index.md, "platform"). An exact match wins: os, architecture and variant equal, where a
// missing variant only equals a missing variant and arm64's "v8" equals no variant. Only when no
// entry matches exactly does a request without a variant take the first entry with the same os
// and architecture (oras-go's wildcard rule). Among exact matches the first listed wins. The error
// (ErrNoPlatform) lists the platforms the index has.
func SelectPlatform(idx *ocispec.Index, platform string) (ocispec.Descriptor, error) {
	want, err := ParsePlatform(platform)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	wv := normVariant(want.Architecture, want.Variant)
	wildcard := -1
	var have []string
	for i, m := range idx.Manifests {
		p := m.Platform
		if p == nil {
			continue
		}
		have = append(have, FormatPlatform(p))
		if p.OS != want.OS || p.Architecture != want.Architecture {
			continue
		}
		if normVariant(p.Architecture, p.Variant) == wv {
			return m, nil
		}
		if want.Variant == "" && wildcard < 0 {
			wildcard = i
		}
	}
	if wildcard >= 0 {
		return idx.Manifests[wildcard], nil
	}
	if len(have) == 0 {
		return ocispec.Descriptor{}, fmt.Errorf("%w %s: the index lists no platforms", ErrNoPlatform, platform)
	}
	return ocispec.Descriptor{}, fmt.Errorf("%w %s: the index has %s", ErrNoPlatform, platform, strings.Join(have, ", "))
}
