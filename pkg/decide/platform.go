package decide

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"

	"github.com/compatkit/compatkit/pkg/host"
	"github.com/compatkit/compatkit/pkg/oci"
)

// platformMatcher says which platforms a host of one platform runs and which it prefers, as
// containerd's platforms.Only does (github.com/containerd/platforms): amd64 v4 runs v4, v3, v2 and
// v1 (and 386), in that order of preference; arm64 v8.x runs v8.x down to v8.0 (and arm v8 .. v5);
// arm v7 runs v7, v6 and v5. An empty os or architecture, and BuildKit's unknown/unknown
// attestation entries, never match.
type platformMatcher struct {
	p  ocispec.Platform
	mc platforms.MatchComparer
}

func newPlatformMatcher(p ocispec.Platform) platformMatcher {
	return platformMatcher{p: p, mc: platforms.Only(p)}
}

// runs reports whether a host of the matcher's platform runs an image of platform p.
func (m platformMatcher) runs(p *ocispec.Platform) bool {
	if p == nil || p.OS == "" || p.Architecture == "" || (p.OS == "unknown" && p.Architecture == "unknown") {
		return false
	}
	return m.mc.Match(*p)
}

// prefers reports whether the matcher's host prefers an image of platform a to one of b (both
// runnable): the closer variant first (containerd's order).
func (m platformMatcher) prefers(a, b *ocispec.Platform) bool {
	if a == nil || b == nil {
		return false
	}
	return m.mc.Less(*a, *b)
}

// sameFamily reports whether p has the matcher's os and architecture (any variant): an entry the
// host may be unable to run only because of its variant.
func (m platformMatcher) sameFamily(p *ocispec.Platform) bool {
	if p == nil {
		return false
	}
	n := platforms.Normalize(*p)
	w := platforms.Normalize(m.p)
	return n.OS == w.OS && n.Architecture == w.Architecture
}

// ValidatePlatform checks a platform given by a user for a decision (a --platform flag): os and
// architecture are required, and unknown/unknown (BuildKit's attestation entries) names no image.
func ValidatePlatform(p ocispec.Platform) error {
	if p.OS == "" || p.Architecture == "" {
		return fmt.Errorf("platform %q: os and architecture are required (e.g. linux/amd64)", oci.FormatPlatform(&p))
	}
	if p.OS == "unknown" || p.Architecture == "unknown" {
		return fmt.Errorf("platform %q names BuildKit's attestation manifests, not an image: give an os/arch such as linux/amd64", oci.FormatPlatform(&p))
	}
	n := platforms.Normalize(p)
	if p.Variant == "" {
		return nil
	}
	switch n.Architecture {
	case "amd64":
		if n.Variant != "" && n.Variant != "v2" && n.Variant != "v3" && n.Variant != "v4" {
			return fmt.Errorf("platform %q: amd64 variants are the x86-64 levels v1, v2, v3 and v4", oci.FormatPlatform(&p))
		}
	case "arm64":
		if !host.ARM64Variant(p.Variant) {
			return fmt.Errorf("platform %q: arm64 variants are v8, v8.1 .. v8.9, v9, v9.1 .. v9.7", oci.FormatPlatform(&p))
		}
	case "arm":
		switch n.Variant {
		case "v5", "v6", "v7", "v8":
		default:
			return fmt.Errorf("platform %q: arm variants are v5, v6, v7 and v8", oci.FormatPlatform(&p))
		}
	}
	return nil
}

// platformMismatch says why a host of platform hp cannot run an image of platform p, naming the
// cpuid flags an amd64 host lacks for a higher x86-64 level.
func platformMismatch(hp ocispec.Platform, p *ocispec.Platform, f *host.Features) string {
	want := oci.FormatPlatform(p)
	have := oci.FormatPlatform(&hp)
	n := platforms.Normalize(*p)
	if n.Architecture == "amd64" && hp.Architecture == "amd64" && n.OS == hp.OS {
		level, err := strconv.Atoi(strings.TrimPrefix(p.Variant, "v"))
		hl, herr := strconv.Atoi(strings.TrimPrefix(hp.Variant, "v"))
		if herr != nil || hl < 1 {
			hl = 1
		}
		if err == nil && level > hl {
			var missing []string
			var flags map[string]nfdv1alpha1.Nil
			if f != nil {
				flags = f.Flags["cpu.cpuid"].Elements
			}
			for l := host.X86Level(f) + 1; l <= level; l++ {
				for _, fl := range host.X86LevelFlags(l) {
					if _, ok := flags[fl]; !ok {
						missing = append(missing, fl)
					}
				}
			}
			s := fmt.Sprintf("platform %s needs an x86-64-v%d CPU; this host is %s (x86-64-v%d)", want, level, have, hl)
			if len(missing) > 0 {
				s += ", without " + strings.Join(missing, " ")
			}
			return s
		}
	}
	return fmt.Sprintf("platform %s does not run on this host (%s)", want, have)
}
