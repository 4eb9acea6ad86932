package match_test

import (
	"context"
	"fmt"
	"testing"

	compatv1alpha1 "sigs.k8s.io/node-feature-discovery/api/image-compatibility/v1alpha1"
	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
	nodevalidator "sigs.k8s.io/node-feature-discovery/pkg/client-nfd/compat/node-validator"
	"sigs.k8s.io/node-feature-discovery/source"
	"sigs.k8s.io/yaml"

	"github.com/compatkit/compatkit/pkg/match"
	"github.com/compatkit/compatkit/pkg/spec"
)

// tableSource is an NFD feature source serving the features of the current table row, so that
// NFD's own node validator (the code behind `nfd compat validate-node`) evaluates the same input.
// Its features are named "tbl.<feature>".
type tableSource struct{ f *nfdv1alpha1.Features }

func (s *tableSource) Name() string                        { return "tbl" }
func (s *tableSource) Discover() error                     { return nil }
func (s *tableSource) GetFeatures() *nfdv1alpha1.Features  { return s.f }
func (s *tableSource) SetFeatures(f *nfdv1alpha1.Features) { s.f = f }

var tbl = &tableSource{}

func init() { source.Register(tbl) }

// specClient hands NFD's node validator the spec exactly as NFD's artifact client decodes the
// artifact's layer: sigs.k8s.io/yaml into NFD's own v1alpha1 types.
type specClient struct{ layer []byte }

func (c specClient) FetchCompatibilitySpec(context.Context) (*compatv1alpha1.Spec, error) {
	var s compatv1alpha1.Spec
	if err := yaml.Unmarshal(c.layer, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func flags(names ...string) nfdv1alpha1.FlagFeatureSet { return nfdv1alpha1.NewFlagFeatures(names...) }

// hosts: a table of feature sets (unprefixed, as a source returns them).
var hosts = map[string]*nfdv1alpha1.Features{
	"v4-intel": {
		Flags: map[string]nfdv1alpha1.FlagFeatureSet{
			"cpuid":        flags("AVX", "AVX2", "BMI1", "BMI2", "FMA3", "F16C", "LZCNT", "MOVBE", "OSXSAVE", "AVX512F", "AVX512BW", "AVX512CD", "AVX512DQ", "AVX512VL", "SSE42"),
			"loadedmodule": flags("ib_core", "mlx5_core"),
		},
		Attributes: map[string]nfdv1alpha1.AttributeFeatureSet{
			"model":   {Elements: map[string]string{"vendor_id": "Intel", "family": "6", "id": "143"}},
			"version": {Elements: map[string]string{"full": "6.1.0-18-amd64", "major": "6", "minor": "1"}},
			"config":  {Elements: map[string]string{"NO_HZ": "true", "PREEMPT": "false"}},
		},
		Instances: map[string]nfdv1alpha1.InstanceFeatureSet{
			"pci": {Elements: []nfdv1alpha1.InstanceFeature{
				{Attributes: map[string]string{"vendor": "10de", "class": "0302", "device": "20b0"}},
				{Attributes: map[string]string{"vendor": "15b3", "class": "0207", "device": "101b"}},
			}},
		},
	},
	"v2-amd-old-kernel": {
		Flags: map[string]nfdv1alpha1.FlagFeatureSet{
			"cpuid":        flags("SSE42", "POPCNT", "CX16"),
			"loadedmodule": flags("ext4"),
		},
		Attributes: map[string]nfdv1alpha1.AttributeFeatureSet{
			"model":   {Elements: map[string]string{"vendor_id": "AMD", "family": "23", "id": "49"}},
			"version": {Elements: map[string]string{"full": "4.18.0-553.el8", "major": "4", "minor": "18"}},
			"config":  {Elements: map[string]string{"NO_HZ": "false", "PREEMPT": "true"}},
		},
		Instances: map[string]nfdv1alpha1.InstanceFeatureSet{
			"pci": {Elements: []nfdv1alpha1.InstanceFeature{{Attributes: map[string]string{"vendor": "8086", "class": "0200", "device": "1572"}}}},
		},
	},
	"empty": nfdv1alpha1.NewFeatures(),
}

func expr(op spec.Op, values ...string) *spec.MatchExpression {
	return &spec.MatchExpression{Op: op, Value: values}
}

func term(feature string, exprs map[string]*spec.MatchExpression) spec.FeatureMatcherTerm {
	return spec.FeatureMatcherTerm{Feature: "tbl." + feature, MatchExpressions: exprs}
}

// rules: one rule per operator and shape NFD supports.
var rules = []spec.Rule{
	{Name: "x86-64-v3", MatchFeatures: []spec.FeatureMatcherTerm{term("cpuid", map[string]*spec.MatchExpression{
		"AVX2": expr(spec.OpExists), "BMI2": expr(spec.OpExists), "FMA3": expr(spec.OpExists)})}},
	{Name: "no AVX512F", MatchFeatures: []spec.FeatureMatcherTerm{term("cpuid", map[string]*spec.MatchExpression{"AVX512F": expr(spec.OpDoesNotExist)})}},
	{Name: "vendor In", MatchFeatures: []spec.FeatureMatcherTerm{term("model", map[string]*spec.MatchExpression{"vendor_id": expr(spec.OpIn, "Intel", "Hygon")})}},
	{Name: "vendor NotIn", MatchFeatures: []spec.FeatureMatcherTerm{term("model", map[string]*spec.MatchExpression{"vendor_id": expr(spec.OpNotIn, "Intel")})}},
	{Name: "kernel regexp", MatchFeatures: []spec.FeatureMatcherTerm{term("version", map[string]*spec.MatchExpression{"full": expr(spec.OpInRegexp, `^6\.`)})}},
	{Name: "kernel major Gt", MatchFeatures: []spec.FeatureMatcherTerm{term("version", map[string]*spec.MatchExpression{"major": expr(spec.OpGt, "4")})}},
	{Name: "kernel minor Lt", MatchFeatures: []spec.FeatureMatcherTerm{term("version", map[string]*spec.MatchExpression{"minor": expr(spec.OpLt, "10")})}},
	{Name: "family GtLt", MatchFeatures: []spec.FeatureMatcherTerm{term("model", map[string]*spec.MatchExpression{"family": expr(spec.OpGtLt, "5", "20")})}},
	{Name: "family GeLe", MatchFeatures: []spec.FeatureMatcherTerm{term("model", map[string]*spec.MatchExpression{"family": expr(spec.OpGeLe, "6", "7")})}},
	{Name: "kernel Ge version", MatchFeatures: []spec.FeatureMatcherTerm{term("version", map[string]*spec.MatchExpression{"full": {Op: spec.OpGe, Value: []string{"5.15"}, Type: "version"}})}},
	{Name: "kernel Le version", MatchFeatures: []spec.FeatureMatcherTerm{term("version", map[string]*spec.MatchExpression{"full": {Op: spec.OpLe, Value: []string{"5.4"}, Type: "version"}})}},
	{Name: "config IsTrue", MatchFeatures: []spec.FeatureMatcherTerm{term("config", map[string]*spec.MatchExpression{"NO_HZ": expr(spec.OpIsTrue)})}},
	{Name: "config IsFalse", MatchFeatures: []spec.FeatureMatcherTerm{term("config", map[string]*spec.MatchExpression{"PREEMPT": expr(spec.OpIsFalse)})}},
	{Name: "module matchName", MatchFeatures: []spec.FeatureMatcherTerm{{Feature: "tbl.loadedmodule", MatchName: expr(spec.OpInRegexp, "^mlx5")}}},
	{Name: "nvidia GPU instance", MatchFeatures: []spec.FeatureMatcherTerm{term("pci", map[string]*spec.MatchExpression{
		"vendor": expr(spec.OpIn, "10de"), "class": expr(spec.OpIn, "0300", "0302")})}},
	{Name: "instance fields from two devices do not combine", MatchFeatures: []spec.FeatureMatcherTerm{term("pci", map[string]*spec.MatchExpression{
		"vendor": expr(spec.OpIn, "15b3"), "class": expr(spec.OpIn, "0302")})}},
	{Name: "missing feature", MatchFeatures: []spec.FeatureMatcherTerm{term("nosuch", map[string]*spec.MatchExpression{"x": expr(spec.OpExists)})}},
	{Name: "matchAny AMD or v3", MatchAny: []spec.MatchAnyElem{
		{MatchFeatures: []spec.FeatureMatcherTerm{term("model", map[string]*spec.MatchExpression{"vendor_id": expr(spec.OpIn, "AMD")})}},
		{MatchFeatures: []spec.FeatureMatcherTerm{term("cpuid", map[string]*spec.MatchExpression{"AVX2": expr(spec.OpExists)})}},
	}},
	{Name: "matchFeatures and matchAny", MatchFeatures: []spec.FeatureMatcherTerm{term("cpuid", map[string]*spec.MatchExpression{"SSE42": expr(spec.OpExists)})},
		MatchAny: []spec.MatchAnyElem{{MatchFeatures: []spec.FeatureMatcherTerm{term("loadedmodule", map[string]*spec.MatchExpression{"ib_core": expr(spec.OpExists)})}}}},
}

// TestAgreesWithNFD builds a spec holding every rule (one rule per set, plus one set with all of
// them and one with vars and a rule.matched back-reference), serialises it as the artifact layer,
// and compares compatkit's verdict on every rule with what NFD's node validator decides from the
// same bytes, on every host of the table.
func TestAgreesWithNFD(t *testing.T) {
	s := &spec.Spec{Version: spec.Version}
	for i, r := range rules {
		s.Compatibilities = append(s.Compatibilities, spec.Compatibility{Rules: []spec.Rule{r}, Weight: i % 101, Tag: r.Name})
	}
	s.Compatibilities = append(s.Compatibilities, spec.Compatibility{Rules: rules, Tag: "all"})
	withVars := rules[0]
	withVars.Vars = map[string]string{"v3": "true"}
	s.Compatibilities = append(s.Compatibilities, spec.Compatibility{Tag: "backref", Rules: []spec.Rule{withVars, {
		Name:          "uses rule.matched",
		MatchFeatures: []spec.FeatureMatcherTerm{{Feature: "rule.matched", MatchExpressions: map[string]*spec.MatchExpression{"v3": expr(spec.OpIsTrue)}}},
	}}})
	layer, err := s.MarshalYAML()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := spec.Parse(layer, "layer")
	if err != nil {
		t.Fatal(err)
	}
	prog, err := match.Compile(parsed)
	if err != nil {
		t.Fatal(err)
	}

	for hostName, f := range hosts {
		t.Run(hostName, func(t *testing.T) {
			tbl.SetFeatures(f)
			nv := nodevalidator.New(
				nodevalidator.WithArgs(&nodevalidator.Args{}),
				nodevalidator.WithArtifactClient(specClient{layer: layer}),
				nodevalidator.WithSources(map[string]source.FeatureSource{"tbl": tbl}),
			)
			want, err := nv.Execute(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			prefixed := nfdv1alpha1.NewFeatures()
			for k, v := range f.Flags {
				prefixed.Flags["tbl."+k] = v
			}
			for k, v := range f.Attributes {
				prefixed.Attributes["tbl."+k] = v
			}
			for k, v := range f.Instances {
				prefixed.Instances["tbl."+k] = v
			}
			got, err := prog.Evaluate(prefixed)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Sets) != len(want) {
				t.Fatalf("%d sets, NFD has %d", len(got.Sets), len(want))
			}
			matchedSets := 0
			for i, ws := range want {
				all := true
				for j, wr := range ws.Rules {
					gr := got.Sets[i].Rules[j]
					if gr.Matched != wr.IsMatch {
						t.Errorf("set %q rule %q: compatkit matched=%v, NFD isMatch=%v", ws.Tag, wr.Name, gr.Matched, wr.IsMatch)
					}
					if !gr.Matched && len(gr.Failed) == 0 {
						t.Errorf("set %q rule %q failed without an explanation", ws.Tag, wr.Name)
					}
					all = all && wr.IsMatch
				}
				if got.Sets[i].Matched != all {
					t.Errorf("set %q: compatkit matched=%v, NFD's rules say %v", ws.Tag, got.Sets[i].Matched, all)
				}
				if all {
					matchedSets++
				}
			}
			if got.Compatible != (matchedSets > 0) {
				t.Errorf("compatible=%v with %d matching sets", got.Compatible, matchedSets)
			}
			t.Logf("%s: %d of %d sets match, score %d", hostName, matchedSets, len(want), got.Score)
		})
	}
	// The table must exercise both outcomes, or it proves nothing.
	if fmt.Sprint(len(hosts)) == "0" {
		t.Fatal("empty table")
	}
}
