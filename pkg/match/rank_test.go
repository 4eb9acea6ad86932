package match

import (
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"

	"github.com/compatkit/compatkit/pkg/spec"
)

func flagSpec(weight int, flags ...string) *spec.Spec {
	exprs := map[string]*spec.MatchExpression{}
	for _, f := range flags {
		exprs[f] = &spec.MatchExpression{Op: spec.OpExists}
	}
	return &spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{{Weight: weight, Rules: []spec.Rule{{
		Name: "flags", MatchFeatures: []spec.FeatureMatcherTerm{{Feature: "cpu.cpuid", MatchExpressions: exprs}}}}}}}
}

func hostWith(flags ...string) *Features {
	f := nfdv1alpha1.NewFeatures()
	f.Flags["cpu.cpuid"] = nfdv1alpha1.NewFlagFeatures(flags...)
	return f
}

func cand(pos int, s, idx *spec.Spec) Candidate {
	return Candidate{Descriptor: ocispec.Descriptor{Digest: digest.FromString(string(rune('a' + pos)))}, Position: pos, Spec: s, IndexSpec: idx}
}

func order(rs []Ranked) []int {
	var out []int
	for _, r := range rs {
		out = append(out, r.Position)
	}
	return out
}

func TestRank(t *testing.T) {
	v1 := flagSpec(50, "SSE2")
	v3 := flagSpec(90, "SSE2", "AVX2", "FMA3")
	for _, tc := range []struct {
		name       string
		cands      []Candidate
		host       *Features
		want       []int
		bestCompat bool
		bestScore  int
	}{
		{"v3 host picks v3", []Candidate{cand(0, v1, nil), cand(1, v3, nil)}, hostWith("SSE2", "AVX2", "FMA3"), []int{1, 0}, true, 90},
		{"no AVX2 picks v1", []Candidate{cand(0, v1, nil), cand(1, v3, nil)}, hostWith("SSE2"), []int{0, 1}, true, 50},
		{"ties keep index order", []Candidate{cand(0, flagSpec(70, "SSE2"), nil), cand(1, flagSpec(70, "SSE2"), nil)}, hostWith("SSE2"), []int{0, 1}, true, 70},
		{"no spec ranks after a matching spec", []Candidate{cand(0, nil, nil), cand(1, flagSpec(0, "SSE2"), nil)}, hostWith("SSE2"), []int{1, 0}, true, 0},
		{"no spec ranks before incompatible", []Candidate{cand(0, v3, nil), cand(1, nil, nil)}, hostWith("SSE2"), []int{1, 0}, true, 0},
		{"nothing fits", []Candidate{cand(0, v3, nil), cand(1, flagSpec(10, "ASIMD"), nil)}, hostWith("SSE2"), []int{0, 1}, false, 0},
		{"index spec applies to all", []Candidate{cand(0, v1, flagSpec(0, "AVX512F")), cand(1, nil, flagSpec(0, "AVX512F"))}, hostWith("SSE2"), []int{0, 1}, false, 0},
		{"index spec scores a manifest without its own", []Candidate{cand(0, nil, flagSpec(40, "SSE2")), cand(1, flagSpec(30, "SSE2"), flagSpec(40, "SSE2"))}, hostWith("SSE2"), []int{0, 1}, true, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Rank(tc.cands, tc.host, RankOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if o := order(got); len(o) != len(tc.want) || o[0] != tc.want[0] || o[1] != tc.want[1] {
				t.Fatalf("order %v, want %v", o, tc.want)
			}
			if got[0].Compatible != tc.bestCompat || got[0].Score != tc.bestScore {
				t.Fatalf("best %+v, want compatible=%v score=%d", got[0], tc.bestCompat, tc.bestScore)
			}
			for _, r := range got {
				if !r.Compatible && r.Reason == "" {
					t.Errorf("incompatible candidate %d without a reason", r.Position)
				}
			}
		})
	}
}

func TestRankRuntimes(t *testing.T) {
	gpu := &spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{
		{Weight: 90, Tag: "nvidia", Rules: []spec.Rule{{Name: "nvidia runtime", MatchFeatures: []spec.FeatureMatcherTerm{{
			Feature: RuntimeFeature, MatchExpressions: map[string]*spec.MatchExpression{"nvidia": {Op: spec.OpExists}}}}}}},
		{Weight: 10, Tag: "cpu", Rules: []spec.Rule{{Name: "any", MatchFeatures: []spec.FeatureMatcherTerm{{
			Feature: "cpu.cpuid", MatchExpressions: map[string]*spec.MatchExpression{"SSE2": {Op: spec.OpExists}}}}}}},
	}}
	host := hostWith("SSE2")
	host.Attributes[RuntimeFeature] = nfdv1alpha1.AttributeFeatureSet{Elements: map[string]string{"nvidia": "1.17.0", "runc": "1.1.12"}}
	c := []Candidate{cand(0, gpu, nil)}

	got, _ := Rank(c, host, RankOptions{AllowedRuntimes: []string{"runc", "nvidia"}})
	if got[0].Runtime != "nvidia" || got[0].Score != 90 {
		t.Fatalf("allowed nvidia: %+v", got[0])
	}
	got, _ = Rank(c, host, RankOptions{AllowedRuntimes: []string{"runc"}})
	if got[0].Runtime != "" || got[0].Score != 10 || !got[0].Compatible {
		t.Fatalf("nvidia not allowed: want the cpu set (score 10) and no runtime, got %+v", got[0])
	}
	got, _ = Rank(c, host, RankOptions{})
	if got[0].Runtime != "" || got[0].Score != 90 {
		t.Fatalf("no allowed list: a runtime is never taken from the spec alone: %+v", got[0])
	}

	// The compiled form (local.feature compatkit.runtime.nvidia) names the same runtime.
	gpu.LocalizeCompatkit()
	host.Attributes[spec.LocalFeatureSet] = nfdv1alpha1.AttributeFeatureSet{Elements: map[string]string{"compatkit.runtime.nvidia": "1.17.0"}}
	got, _ = Rank([]Candidate{cand(0, gpu, nil)}, host, RankOptions{AllowedRuntimes: []string{"runc", "nvidia"}})
	if got[0].Runtime != "nvidia" || got[0].Score != 90 {
		t.Fatalf("compiled form, nvidia allowed: %+v", got[0])
	}
}
