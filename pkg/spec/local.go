package spec

import "strings"

// Feature sets for compatkit's own host features and NFD's local feature files.
const (
	// CompatkitFeaturePrefix starts the names of compatkit's own feature sets (compatkit.nvidia,
	// compatkit.runtime, compatkit.mpi, compatkit.libc, compatkit.platform): features NFD does
	// not discover.
	CompatkitFeaturePrefix = "compatkit."
	// LocalFeatureSet is NFD's feature set for the name=value lines of its local feature files
	// (source/local): `compat-attach features --nfd-local-file` writes element E of compatkit.X as
	// the line "compatkit.X.E=value", which NFD reports as element "compatkit.X.E" of local.feature.
	LocalFeatureSet = "local.feature"
)

// LocalizeCompatkit rewrites, in place, every term on a compatkit.<name> feature set that uses
// matchExpressions into the equivalent term on NFD's local.feature set, whose elements are named
// "compatkit.<name>.<element>": the form NFD's `nfd compat validate-node` can evaluate on a node
// where compatkit's features were written as a local feature file. compatkit's own host discovery
// publishes both forms, so its verdicts do not change. matchName terms keep their compatkit.<name>
// feature (element names differ between the two forms). It returns the number of terms rewritten.
func (s *Spec) LocalizeCompatkit() int {
	n := 0
	localize := func(terms []FeatureMatcherTerm) {
		for i := range terms {
			t := &terms[i]
			if !strings.HasPrefix(t.Feature, CompatkitFeaturePrefix) || t.MatchName != nil || len(t.MatchExpressions) == 0 {
				continue
			}
			exprs := make(map[string]*MatchExpression, len(t.MatchExpressions))
			for el, e := range t.MatchExpressions {
				exprs[t.Feature+"."+el] = e
			}
			t.Feature, t.MatchExpressions = LocalFeatureSet, exprs
			n++
		}
	}
	for i := range s.Compatibilities {
		for j := range s.Compatibilities[i].Rules {
			r := &s.Compatibilities[i].Rules[j]
			localize(r.MatchFeatures)
			for k := range r.MatchAny {
				localize(r.MatchAny[k].MatchFeatures)
			}
		}
	}
	return n
}
