package match

import (
	"maps"
	"strings"

	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"

	"github.com/compatkit/compatkit/pkg/host"
)

// rewriteKernelFull makes the `type: version` expressions of g over kernel.version's full element
// test its release element instead (host.KernelVersion.Release: the release up to its first
// character that is not a digit or a dot, at most three numbers, "major.minor.revision"). NFD
// compares full as a semantic version and fails the rule on distribution releases
// ("4.18.0-553.el8_10.x86_64", "5.15.90.1-microsoft-standard-WSL2", "6.12.95+deb13-amd64" whose
// full is "6.12.95_deb13-amd64"); where NFD can read full, release gives the same answer (NFD
// drops the pre-release part). g is modified in place (Compile owns it); it reports whether any
// expression was rewritten.
func rewriteKernelFull(g *nfdv1alpha1.GroupRule) bool {
	changed := false
	terms := func(m nfdv1alpha1.FeatureMatcher) {
		for i := range m {
			t := &m[i]
			if !strings.EqualFold(t.Feature, host.KernelVersionFeature) || t.MatchExpressions == nil {
				continue
			}
			e, ok := (*t.MatchExpressions)["full"]
			if !ok || e == nil || e.Type != nfdv1alpha1.TypeVersion {
				continue
			}
			if _, both := (*t.MatchExpressions)["release"]; both {
				continue // the author tests release already: keep both as written
			}
			set := maps.Clone(*t.MatchExpressions)
			delete(set, "full")
			set["release"] = e
			t.MatchExpressions = &set
			changed = true
		}
	}
	terms(g.MatchFeatures)
	for i := range g.MatchAny {
		terms(g.MatchAny[i].MatchFeatures)
	}
	return changed
}

// withKernelRelease returns features with kernel.version's release element added
// (host.NormalizeKernelVersion) when it lacks one, for profiles saved without it (`nfd export
// features`); features itself is not modified. Otherwise it returns features as is.
func withKernelRelease(features *Features) *Features {
	if features == nil {
		return features
	}
	el := features.Attributes[host.KernelVersionFeature].Elements
	if _, ok := el["release"]; ok || el["full"] == "" {
		return features
	}
	out := *features
	out.Attributes = maps.Clone(features.Attributes)
	host.NormalizeKernelVersion(&out)
	return &out
}
