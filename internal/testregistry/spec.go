package testregistry

import (
	"fmt"

	"github.com/compatkit/compatkit/pkg/spec"
)

// SampleSpec returns a valid spec (one set requiring cpu.cpuid AVX2) whose weight and description
// tell specs apart.
func SampleSpec(weight int) *spec.Spec {
	return &spec.Spec{
		Version: spec.Version,
		Compatibilities: []spec.Compatibility{{
			Weight:      weight,
			Description: fmt.Sprintf("weight %d", weight),
			Rules: []spec.Rule{{
				Name: "avx2",
				MatchFeatures: []spec.FeatureMatcherTerm{{
					Feature:          "cpu.cpuid",
					MatchExpressions: map[string]*spec.MatchExpression{"AVX2": {Op: spec.OpExists}},
				}},
			}},
		}},
	}
}
