package match

import (
	"sort"
	"strings"

	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
	"sigs.k8s.io/node-feature-discovery/pkg/apis/nfd/nodefeaturerule"

	"github.com/compatkit/compatkit/pkg/spec"
)

// explainRule lists the expressions of a failed rule that do not hold on the host. Flag and
// attribute expressions are evaluated one by one (NFD ANDs them); instance terms (pci.device, ...)
// are evaluated whole, since NFD requires one instance to satisfy all of them together.
func explainRule(g *nfdv1alpha1.GroupRule, features *Features) []Failure {
	var out []Failure
	out = append(out, explainTerms(g.MatchFeatures, features, -1)...)
	if len(g.MatchAny) > 0 {
		var any []Failure
		for i, a := range g.MatchAny {
			fs := explainTerms(a.MatchFeatures, features, i)
			if len(fs) == 0 {
				any = nil // one alternative holds: matchAny is not the cause
				break
			}
			any = append(any, fs...)
		}
		out = append(out, any...)
	}
	return out
}

// compatkitHint ends the reason of a compatkit feature (compatkit.*, or its local.feature mirror)
// the host does not have: NFD publishes it only from compatkit's local feature file.
const compatkitHint = "; NFD publishes compatkit features from `compat-attach features --nfd-local-file`"

// testsCompatkit reports whether local.feature expressions test compatkit features (their
// compatkit.* mirror, spec.LocalizeCompatkit).
func testsCompatkit(exprs *nfdv1alpha1.MatchExpressionSet) bool {
	if exprs == nil {
		return false
	}
	for k := range *exprs {
		if strings.HasPrefix(k, spec.CompatkitFeaturePrefix) {
			return true
		}
	}
	return false
}

func explainTerms(terms nfdv1alpha1.FeatureMatcher, features *Features, anyIdx int) []Failure {
	var out []Failure
	for _, t := range terms {
		name := t.Feature
		fF, okF := features.Flags[name]
		fA, okA := features.Attributes[name]
		fI, okI := features.Instances[name]
		if !okF && !okA && !okI {
			r := "feature not discovered on the host"
			if u, ok := unknownReason(features, name); ok {
				r = u
			} else if strings.HasPrefix(name, spec.CompatkitFeaturePrefix) || (name == spec.LocalFeatureSet && testsCompatkit(t.MatchExpressions)) {
				r += compatkitHint
			}
			out = append(out, Failure{Feature: name, MatchAny: anyIdx, Reason: r})
			continue
		}
		if t.MatchExpressions != nil {
			if okI && !okF && !okA {
				if ok, _, _, err := nodefeaturerule.MatchMulti(t.MatchExpressions, nil, nil, fI.Elements, false); err != nil || !ok {
					out = append(out, Failure{Feature: name, MatchAny: anyIdx, Reason: reason("no instance satisfies all expressions", err)})
				}
			} else {
				keys := make([]string, 0, len(*t.MatchExpressions))
				for k := range *t.MatchExpressions {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					e := (*t.MatchExpressions)[k]
					one := nfdv1alpha1.MatchExpressionSet{k: e}
					ok, _, _, err := nodefeaturerule.MatchMulti(&one, fF.Elements, fA.Elements, fI.Elements, false)
					if err == nil && ok {
						continue
					}
					r := "not satisfied"
					if _, present := fF.Elements[k]; !present {
						if _, present = fA.Elements[k]; !present {
							r = "not present on the host"
							if u, ok := unknownReason(features, name+"."+k); ok {
								r = u
							} else if u, ok := unknownReason(features, name); ok {
								r = u
							} else if name == spec.LocalFeatureSet && strings.HasPrefix(k, spec.CompatkitFeaturePrefix) {
								r += compatkitHint
							}
						}
					}
					if v, present := fA.Elements[k]; present {
						r = "host has " + v
					}
					out = append(out, Failure{Feature: name, Element: k, Expression: fromNFD(e), MatchAny: anyIdx, Reason: reason(r, err)})
				}
			}
		}
		if t.MatchName != nil {
			if ok, _, err := nodefeaturerule.MatchNamesMulti(t.MatchName, fF.Elements, fA.Elements, fI.Elements); err != nil || !ok {
				out = append(out, Failure{Feature: name, Expression: fromNFD(t.MatchName), MatchAny: anyIdx, Reason: reason("no element name matches", err)})
			}
		}
	}
	return out
}

func reason(r string, err error) string {
	if err != nil {
		return r + ": " + err.Error()
	}
	return r
}

func fromNFD(e *nfdv1alpha1.MatchExpression) *spec.MatchExpression {
	if e == nil {
		return nil
	}
	return &spec.MatchExpression{Op: spec.Op(e.Op), Value: append([]string(nil), e.Value...), Type: string(e.Type)}
}
