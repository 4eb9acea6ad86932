package author

import (
	"fmt"
	"sort"
	"strings"

	"github.com/compatkit/compatkit/pkg/spec"
)

// Warnings returns what vet warns about in r's specs without refusing them: each `type: version`
// expression over kernel.version's full element. NFD compares full as a semantic version and
// fails the whole check on distribution kernels ("4.18.0-553.el8_10.x86_64",
// "5.15.90.1-microsoft-standard-WSL2"); compatkit compares their release instead (see
// domains/kernel/README.md). Item is "file:line:col" of the rule when known, else
// "PLATFORM compatibilities[i].rules[j]". The when/otherwise warnings of WhenWarnings follow.
func (r *Result) Warnings() []Warning {
	if r == nil {
		return nil
	}
	var out []Warning
	check := func(platform string, s *spec.Spec) {
		if s == nil {
			return
		}
		for i, c := range s.Compatibilities {
			for j, rule := range c.Rules {
				terms := append([]spec.FeatureMatcherTerm(nil), rule.MatchFeatures...)
				for _, a := range rule.MatchAny {
					terms = append(terms, a.MatchFeatures...)
				}
				for _, t := range terms {
					e := t.MatchExpressions["full"]
					if !strings.EqualFold(t.Feature, "kernel.version") || e == nil || e.Type != "version" {
						continue
					}
					item := r.RulePos(platform, i, j)
					if item == "" {
						item = strings.TrimSpace(fmt.Sprintf("%s compatibilities[%d].rules[%d]", platform, i, j))
					}
					out = append(out, Warning{Item: item, Msg: "type: version over kernel.version.full: NFD cannot read distribution kernels (4.18.0-553.el8_10.x86_64) as versions and fails the check there; compare kernel.version major and minor as integers (domains/kernel min/max), or the release element (\"6.12.95\") that compatkit adds"})
				}
			}
		}
	}
	check("", r.Default)
	platforms := make([]string, 0, len(r.Platforms))
	for p := range r.Platforms {
		platforms = append(platforms, p)
	}
	sort.Strings(platforms)
	for _, p := range platforms {
		check(p, r.Platforms[p])
	}
	return append(out, r.WhenWarnings()...)
}
