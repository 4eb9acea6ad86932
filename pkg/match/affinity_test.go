package match_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/compatkit/compatkit/pkg/host"
	"github.com/compatkit/compatkit/pkg/match"
	"github.com/compatkit/compatkit/pkg/spec"
)

// requirementMatches is Kubernetes' node selector requirement semantics
// (k8s.io/component-helpers/scheduling/corev1/nodeaffinity, through labels.Selector): NotIn and
// DoesNotExist match a node without the label; Gt and Lt need an integer label.
func requirementMatches(r corev1.NodeSelectorRequirement, labels map[string]string) bool {
	v, ok := labels[r.Key]
	switch r.Operator {
	case corev1.NodeSelectorOpIn:
		return ok && slices.Contains(r.Values, v)
	case corev1.NodeSelectorOpNotIn:
		return !ok || !slices.Contains(r.Values, v)
	case corev1.NodeSelectorOpExists:
		return ok
	case corev1.NodeSelectorOpDoesNotExist:
		return !ok
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !ok || len(r.Values) != 1 {
			return false
		}
		have, err1 := strconv.ParseInt(v, 10, 64)
		want, err2 := strconv.ParseInt(r.Values[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if r.Operator == corev1.NodeSelectorOpGt {
			return have > want
		}
		return have < want
	}
	return false
}

// selectorMatches: terms are ORed, a term's requirements ANDed, an empty term matches nothing,
// a nil selector matches every node.
func selectorMatches(sel *corev1.NodeSelector, labels map[string]string) bool {
	if sel == nil {
		return true
	}
	for _, t := range sel.NodeSelectorTerms {
		if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
			continue
		}
		ok := true
		for _, r := range t.MatchExpressions {
			ok = ok && requirementMatches(r, labels)
		}
		if ok {
			return true
		}
	}
	return false
}

func ex(op spec.Op, v ...string) *spec.MatchExpression {
	return &spec.MatchExpression{Op: op, Value: v}
}

func ft(feature string, m map[string]*spec.MatchExpression) spec.FeatureMatcherTerm {
	return spec.FeatureMatcherTerm{Feature: feature, MatchExpressions: m}
}

// expressible: specs that the affinity expresses fully.
var expressible = map[string]*spec.Spec{
	"x86-64-v3 without AVX-512": {Version: spec.Version, Compatibilities: []spec.Compatibility{{Weight: 90, Rules: []spec.Rule{
		{Name: "v3", MatchFeatures: []spec.FeatureMatcherTerm{ft("cpu.cpuid", map[string]*spec.MatchExpression{"AVX2": ex(spec.OpExists), "FMA3": ex(spec.OpExists)})}},
		{Name: "no AVX-512", MatchFeatures: []spec.FeatureMatcherTerm{ft("cpu.cpuid", map[string]*spec.MatchExpression{"AVX512F": ex(spec.OpDoesNotExist)})}},
	}}}},
	"kernel and OS": {Version: spec.Version, Compatibilities: []spec.Compatibility{{Rules: []spec.Rule{
		{Name: "kernel 5-6", MatchFeatures: []spec.FeatureMatcherTerm{ft("kernel.version", map[string]*spec.MatchExpression{"major": ex(spec.OpGeLe, "5", "6")})}},
		{Name: "not rhel", MatchFeatures: []spec.FeatureMatcherTerm{ft("system.osrelease", map[string]*spec.MatchExpression{"ID": ex(spec.OpNotIn, "rhel")})}},
	}}}},
	"GPU or AVX-512 (sets)": {Version: spec.Version, Compatibilities: []spec.Compatibility{
		{Tag: "gpu", Weight: 100, Rules: []spec.Rule{{Name: "NVIDIA or AMD GPU", MatchFeatures: []spec.FeatureMatcherTerm{
			ft("pci.device", map[string]*spec.MatchExpression{"class": ex(spec.OpIn, "0300", "0302"), "vendor": ex(spec.OpIn, "10de", "1002")})}}}},
		{Tag: "cpu", Weight: 20, Rules: []spec.Rule{{Name: "AVX-512", MatchFeatures: []spec.FeatureMatcherTerm{
			ft("cpu.cpuid", map[string]*spec.MatchExpression{"AVX512F": ex(spec.OpExists)}),
			ft("kernel.version", map[string]*spec.MatchExpression{"major": ex(spec.OpGt, "4")})}}}},
	}},
	"matchAny": {Version: spec.Version, Compatibilities: []spec.Compatibility{{Rules: []spec.Rule{
		{Name: "AMD or AVX2", MatchAny: []spec.MatchAnyElem{
			{MatchFeatures: []spec.FeatureMatcherTerm{ft("cpu.model", map[string]*spec.MatchExpression{"vendor_id": ex(spec.OpIn, "AMD")})}},
			{MatchFeatures: []spec.FeatureMatcherTerm{ft("cpu.cpuid", map[string]*spec.MatchExpression{"AVX2": ex(spec.OpExists)})}},
		}},
		{Name: "kernel < 7", MatchFeatures: []spec.FeatureMatcherTerm{ft("kernel.version", map[string]*spec.MatchExpression{"major": ex(spec.OpLt, "7")})},
			MatchAny: []spec.MatchAnyElem{
				{MatchFeatures: []spec.FeatureMatcherTerm{ft("system.osrelease", map[string]*spec.MatchExpression{"ID": ex(spec.OpIn, "ubuntu")})}},
				{MatchFeatures: []spec.FeatureMatcherTerm{ft("kernel.config", map[string]*spec.MatchExpression{"PREEMPT": ex(spec.OpIsTrue)})}},
			}},
	}}}},
}

// sampleLabels makes the labels of a random node, as NFD and the kubelet publish them.
func sampleLabels(r *rand.Rand) map[string]string {
	l := map[string]string{"kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux"}
	p := host.NFDLabelPrefix
	l[p+"cpu-cpuid.AVX"] = "true" // every node has some cpuid label
	for _, f := range []string{"AVX2", "FMA3", "AVX512F"} {
		if r.IntN(2) == 0 {
			l[p+"cpu-cpuid."+f] = "true"
		}
	}
	l[p+"cpu-model.vendor_id"] = []string{"Intel", "AMD"}[r.IntN(2)]
	l[p+"kernel-version.major"] = fmt.Sprint(4 + r.IntN(4))
	if r.IntN(4) > 0 {
		l[p+"system-os_release.ID"] = []string{"ubuntu", "rhel", "debian"}[r.IntN(3)]
	}
	if r.IntN(2) == 0 {
		l[p+"kernel-config.PREEMPT"] = []string{"true", "false"}[r.IntN(2)]
	}
	for _, d := range []string{"0302_10de", "0300_1002", "0300_1a03"} {
		if r.IntN(3) == 0 {
			l[p+"pci-"+d+".present"] = "true"
		}
	}
	return l
}

// TestAffinityAgreesWithCheck: for fully expressible specs, the generated required affinity
// selects exactly the sample nodes whose labels (mapped back to features) match's verdict
// accepts.
func TestAffinityAgreesWithCheck(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var nodes []map[string]string
	for range 300 {
		nodes = append(nodes, sampleLabels(r))
	}
	for name, s := range expressible {
		t.Run(name, func(t *testing.T) {
			a, err := match.NodeAffinity(s)
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Omitted) > 0 {
				t.Fatalf("omitted %v", a.Omitted)
			}
			na := a.NodeAffinity()
			p, err := match.Compile(s)
			if err != nil {
				t.Fatal(err)
			}
			yes := 0
			for _, l := range nodes {
				res, err := p.Verdict(host.FeaturesFromLabels(l))
				if err != nil {
					t.Fatal(err)
				}
				if got := selectorMatches(na.RequiredDuringSchedulingIgnoredDuringExecution, l); got != res.Compatible {
					t.Fatalf("node %v: affinity %v, check %v\nterms %+v", l, got, res.Compatible, na.RequiredDuringSchedulingIgnoredDuringExecution)
				}
				if res.Compatible {
					yes++
				}
			}
			if yes == 0 || yes == len(nodes) {
				t.Errorf("%d of %d nodes compatible: the sample does not discriminate", yes, len(nodes))
			}
		})
	}
}

// TestAffinityWeakens: what cannot be expressed is listed and left out, so that the affinity never
// rejects a node that check accepts.
func TestAffinityWeakens(t *testing.T) {
	s := &spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{{Tag: "v3", Weight: 80, Rules: []spec.Rule{
		{Name: "v3", MatchFeatures: []spec.FeatureMatcherTerm{ft("cpu.cpuid", map[string]*spec.MatchExpression{"AVX2": ex(spec.OpExists), "BMI2": ex(spec.OpExists)})}},
		{Name: "kernel", MatchFeatures: []spec.FeatureMatcherTerm{ft("kernel.version", map[string]*spec.MatchExpression{
			"full": {Op: spec.OpGe, Value: []string{"5.15"}, Type: "version"}, "major": ex(spec.OpGe, "5")})}},
		{Name: "regexp", MatchFeatures: []spec.FeatureMatcherTerm{ft("system.osrelease", map[string]*spec.MatchExpression{"ID": ex(spec.OpInRegexp, "^ubu")})}},
	}}, {Tag: "any", Weight: 10, Rules: []spec.Rule{
		{Name: "NIC", MatchFeatures: []spec.FeatureMatcherTerm{ft("pci.device", map[string]*spec.MatchExpression{"class": ex(spec.OpIn, "0200"), "vendor": ex(spec.OpIn, "15b3")})}},
	}}}}
	a, err := match.NodeAffinity(s)
	if err != nil {
		t.Fatal(err)
	}
	var whats []string
	for _, o := range a.Omitted {
		whats = append(whats, o.What)
	}
	want := []string{"cpu.cpuid: BMI2 Exists", "kernel.version: full Ge [5.15] (version)", "system.osrelease: ID InRegexp [^ubu]", "pci.device: class 0200"}
	if !slices.Equal(whats, want) {
		t.Errorf("omitted %q, want %q", whats, want)
	}
	na := a.NodeAffinity()
	// The NIC set's only term is empty (unconstrained), so nothing is required.
	if na.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		t.Errorf("required %+v", na.RequiredDuringSchedulingIgnoredDuringExecution)
	}
	if len(na.PreferredDuringSchedulingIgnoredDuringExecution) != 1 || na.PreferredDuringSchedulingIgnoredDuringExecution[0].Weight != 80 {
		t.Errorf("preferred %+v", na.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	terms := a.Terms()
	got := fmt.Sprint(terms[0].MatchExpressions)
	if !strings.Contains(got, "cpu-cpuid.AVX2 In [true]") || !strings.Contains(got, "kernel-version.major Gt [4]") {
		t.Errorf("v3 term %s", got)
	}
	// Weakened, never stricter: every node check accepts, the first term selects.
	p, _ := match.Compile(s)
	r := rand.New(rand.NewPCG(5, 6))
	sel := &corev1.NodeSelector{NodeSelectorTerms: terms[:1]}
	for range 300 {
		l := sampleLabels(r)
		f := host.FeaturesFromLabels(l)
		res, _ := p.Verdict(f)
		if res.Sets[0].Matched && !selectorMatches(sel, l) {
			t.Fatalf("check accepts %v, the affinity does not", l)
		}
	}
}

func TestAffinityBoundsAlternatives(t *testing.T) {
	var alts []spec.MatchAnyElem
	for i := range 8 {
		alts = append(alts, spec.MatchAnyElem{MatchFeatures: []spec.FeatureMatcherTerm{ft("cpu.model", map[string]*spec.MatchExpression{"id": ex(spec.OpIn, fmt.Sprint(i))})}})
	}
	s := &spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{{Rules: []spec.Rule{
		{Name: "a", MatchAny: alts}, {Name: "b", MatchAny: alts}, {Name: "c", MatchAny: alts},
	}}}}
	a, err := match.NodeAffinity(s)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(a.Terms()); n > match.MaxAffinityTerms {
		t.Errorf("%d terms", n)
	}
	// a gives 8 terms; a×b would give 64: b is left out, then c likewise.
	if n := len(a.Terms()); n != 8 || len(a.Omitted) != 2 || a.Omitted[0].Rule != "b" || a.Omitted[1].Rule != "c" {
		t.Errorf("omitted %v", a.Omitted)
	}
}

// Sets of weights 70 and 0 differ: the 70 set becomes a preferred term.
func TestAffinityPrefersWeightedSet(t *testing.T) {
	set := func(w int, flag string) spec.Compatibility {
		return spec.Compatibility{Weight: w, Rules: []spec.Rule{{Name: flag, MatchFeatures: []spec.FeatureMatcherTerm{{
			Feature: "cpu.cpuid", MatchExpressions: map[string]*spec.MatchExpression{flag: {Op: spec.OpExists}}}}}}}
	}
	a, err := match.NodeAffinity(&spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{set(70, "AVX2"), set(0, "AVX")}})
	if err != nil {
		t.Fatal(err)
	}
	na := a.NodeAffinity()
	if len(na.PreferredDuringSchedulingIgnoredDuringExecution) != 1 || na.PreferredDuringSchedulingIgnoredDuringExecution[0].Weight != 70 {
		t.Fatalf("preferred terms: %+v", na.PreferredDuringSchedulingIgnoredDuringExecution)
	}
}

// bombSets is a spec of n sets, each one rule of alts matchAny alternatives (one cpuid flag each).
func bombSets(n, alts int) *spec.Spec {
	var any []spec.MatchAnyElem
	for i := range alts {
		any = append(any, spec.MatchAnyElem{MatchFeatures: []spec.FeatureMatcherTerm{ft("cpu.cpuid", map[string]*spec.MatchExpression{fmt.Sprintf("F%d", i): ex(spec.OpExists)})}})
	}
	s := &spec.Spec{Version: spec.Version}
	for range n {
		s.Compatibilities = append(s.Compatibilities, spec.Compatibility{Rules: []spec.Rule{{Name: "r", MatchAny: any}}})
	}
	return s
}

// pciBomb is a spec of one rule naming classes x vendors PCI devices (all of labelled classes).
func pciBomb(classes, vendors int) *spec.Spec {
	var cs, vs []string
	for i := range classes {
		cs = append(cs, fmt.Sprintf("03%02x", i%256))
	}
	for i := range vendors {
		vs = append(vs, fmt.Sprintf("%04x", i))
	}
	return &spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{{Rules: []spec.Rule{{Name: "gpu", MatchFeatures: []spec.FeatureMatcherTerm{
		ft("pci.device", map[string]*spec.MatchExpression{"class": ex(spec.OpIn, cs...), "vendor": ex(spec.OpIn, vs...)})}}}}}}
}

// allocs returns the bytes f allocates (runtime.MemStats.TotalAlloc, this goroutine's and any
// other's: tests in this package do not run in parallel).
func allocs(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestAffinityTooLarge: specs whose affinity would pass the bounds fail with a *TooLargeError that
// names the spec, before the terms are built (a few MB at most, where 256 sets of 32 alternatives
// in a manifest's spec and its index's made 67 million terms and ran out of memory).
func TestAffinityTooLarge(t *testing.T) {
	within := bombSets(32, 32) // 1024 terms: the bound itself
	if a, err := match.NodeAffinity(within); err != nil || len(a.Terms()) != match.MaxNodeSelectorTerms {
		t.Fatalf("32 x 32: %v", err)
	}
	for _, tc := range []struct {
		name     string
		specs    []*spec.Spec
		spec     int
		combined bool
		terms    int
	}{
		{"256 sets of 32 alternatives", []*spec.Spec{bombSets(256, 32)}, 0, false, 8192},
		{"the manifest's and the index's", []*spec.Spec{bombSets(256, 32), bombSets(256, 32)}, 0, false, 8192},
		{"each within, their product not", []*spec.Spec{nil, within, within}, 2, true, 1024 * 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			n := allocs(func() { _, err = match.NodeAffinity(tc.specs...) })
			var tl *match.TooLargeError
			if !errors.As(err, &tl) || tl.Spec != tc.spec || tl.Combined != tc.combined || tl.Terms != tc.terms {
				t.Fatalf("err %#v, want spec %d (combined %v) at %d terms", err, tc.spec, tc.combined, tc.terms)
			}
			if want := fmt.Sprintf("%d node selector terms, more than %d", tc.terms, match.MaxNodeSelectorTerms); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
			if n > 64<<20 {
				t.Errorf("%d MB allocated", n>>20)
			}
		})
	}
	// Few terms, each of many requirements: the product is bounded by requirements too.
	wide := &spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{{Rules: []spec.Rule{bombSets(1, 32).Compatibilities[0].Rules[0], {Name: "many"}}}}}
	many := map[string]*spec.MatchExpression{}
	for i := range 1500 {
		many[fmt.Sprintf("G%d", i)] = ex(spec.OpExists)
	}
	wide.Compatibilities[0].Rules[1].MatchFeatures = []spec.FeatureMatcherTerm{ft("cpu.cpuid", many)}
	a, err := match.NodeAffinity(wide) // 32 terms of 1501 requirements
	if err != nil || len(a.Terms()) != 32 {
		t.Fatalf("one wide spec: %v", err)
	}
	var tl *match.TooLargeError
	if _, err := match.NodeAffinity(wide, wide); !errors.As(err, &tl) || tl.Terms != 1024 || tl.Requirements != 2*1024*1501 || !strings.Contains(err.Error(), "requirements") {
		t.Fatalf("two wide specs: %v", err)
	}
	// Union: the platforms of an index together.
	if _, err := match.Union(a); err != nil {
		t.Fatal(err)
	}
	if _, err := match.Union(a, a); !errors.As(err, &tl) || tl.Spec != -1 || tl.Requirements != 2*32*1501 {
		t.Fatalf("union of two wide affinities: %v", err)
	}
	parts := []*match.Affinity{}
	for range 33 {
		p, _ := match.NodeAffinity(bombSets(1, 32))
		parts = append(parts, p)
	}
	if _, err := match.Union(parts...); !errors.As(err, &tl) || tl.Spec != -1 || tl.Terms != 33*32 {
		t.Fatalf("union of 33 x 32 terms: %v", err)
	}
}

// TestAffinityPCIBombCounted: a rule of 4,096 classes by 4,096 vendors (16 million terms) is left
// out, as any rule past MaxAffinityTerms, after counting it, not building it (it took 16 s and
// 7 GB).
func TestAffinityPCIBombCounted(t *testing.T) {
	s := pciBomb(4096, 4096)
	var a *match.Affinity
	var err error
	n := allocs(func() { a, err = match.NodeAffinity(s, s) })
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Omitted) != 2 || a.Omitted[0].What != "the whole rule" || !strings.Contains(a.Omitted[0].Why, "16777216 node selector terms, more than 32") {
		t.Fatalf("omitted %v", a.Omitted)
	}
	if n > 16<<20 {
		t.Errorf("%d MB allocated", n>>20)
	}
	// More alternatives than an int counts: 8 terms of 4096 x 4096 devices each.
	big := pciBomb(4096, 4096)
	big.Compatibilities[0].Rules[0].MatchFeatures = slices.Repeat(big.Compatibilities[0].Rules[0].MatchFeatures, 8)
	a, err = match.NodeAffinity(big)
	if err != nil || len(a.Omitted) != 1 || !strings.Contains(a.Omitted[0].Why, "2^63 or more node selector terms") {
		t.Fatalf("omitted %v, %v", a.Omitted, err)
	}
	// An empty device list after a large one: the rule cannot hold (no term), nothing is built.
	noVendor := ft("pci.device", map[string]*spec.MatchExpression{"class": ex(spec.OpIn, "0300"), "vendor": ex(spec.OpIn, []string{}...)})
	empty := pciBomb(4096, 4096)
	empty.Compatibilities[0].Rules[0].MatchFeatures = append(empty.Compatibilities[0].Rules[0].MatchFeatures, noVendor)
	n = allocs(func() { a, err = match.NodeAffinity(empty) })
	if err != nil || len(a.Terms()) != 0 || len(a.Omitted) != 0 || n > 16<<20 {
		t.Fatalf("empty device list: %d terms, omitted %v, %v, %d MB", len(a.Terms()), a.Omitted, err, n>>20)
	}
	// The same as one alternative of two: the count (1) fits, building stops at the large list.
	alts := pciBomb(4096, 4096)
	r := &alts.Compatibilities[0].Rules[0]
	r.MatchAny = []spec.MatchAnyElem{{MatchFeatures: append(r.MatchFeatures, noVendor)}, {MatchFeatures: []spec.FeatureMatcherTerm{ft("cpu.cpuid", map[string]*spec.MatchExpression{"AVX2": ex(spec.OpExists)})}}}
	r.MatchFeatures = nil
	n = allocs(func() { a, err = match.NodeAffinity(alts) })
	if err != nil || len(a.Omitted) != 1 || !strings.Contains(a.Omitted[0].Why, "would make more than 32 node selector terms") || n > 16<<20 {
		t.Fatalf("empty alternative: omitted %v, %v, %d MB", a.Omitted, err, n>>20)
	}
	// Within the bound, a device list still expands.
	a, err = match.NodeAffinity(pciBomb(4, 8))
	if err != nil || len(a.Omitted) != 0 || len(a.Terms()) != 32 {
		t.Fatalf("4 x 8 devices: %d terms, omitted %v, %v", len(a.Terms()), a.Omitted, err)
	}
}

// TestOmissionOneLine: an omission names a set, a rule and an expression from a spec (or a
// platform from an index); printed, none of them starts a line.
func TestOmissionOneLine(t *testing.T) {
	o := match.Omission{Set: "x\nhostPID: true", Rule: "linux/amd64\u2028hostNetwork: true", What: "cpu.cpuid: \rA Exists", Why: "why\x1b[2J"}
	if got := o.String(); strings.ContainsAny(got, "\n\r\u2028\x1b") {
		t.Fatalf("%q", got)
	}
}

// An index entry for an x86-64 level requires the level's labelled flags, which nodes of NFD v0.18
// and v0.19 both publish; a v3 node's labels satisfy it, a v2 node's do not.
func TestPlatformRequirementsX86Level(t *testing.T) {
	reqs, omitted := match.PlatformRequirements("linux/amd64/v3")
	got := fmt.Sprint(reqs)
	for _, want := range []string{"kubernetes.io/arch In [amd64]", "cpu-cpuid.AVX2 In [true]", "cpu-cpuid.OSXSAVE In [true]", "cpu-cpuid.LAHF In [true]"} {
		if !strings.Contains(got, want) {
			t.Errorf("requirements %s lack %s", got, want)
		}
	}
	if strings.Contains(got, "BMI2") || !strings.Contains(omitted, "BMI2") || !strings.Contains(omitted, "x86-64-v3") {
		t.Errorf("requirements %s, omitted %q", got, omitted)
	}
	sel := &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: reqs}}}
	v3 := map[string]string{"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
	for _, f := range []string{"AVX", "AVX2", "FMA3", "MOVBE", "OSXSAVE", "LAHF", "X86_64_V2", "X86_64_V3"} {
		v3[host.NFDLabelPrefix+"cpu-cpuid."+f] = "true"
	}
	if !selectorMatches(sel, v3) {
		t.Errorf("a v3 node does not match %s", got)
	}
	delete(v3, host.NFDLabelPrefix+"cpu-cpuid.AVX2")
	if selectorMatches(sel, v3) {
		t.Errorf("a node without AVX2 matches %s", got)
	}
	if reqs, omitted := match.PlatformRequirements("linux/amd64/v1"); len(reqs) != 2 || omitted != "" {
		t.Errorf("v1: %v %q", reqs, omitted)
	}
	if _, omitted := match.PlatformRequirements("linux/arm64/v9"); !strings.Contains(omitted, "arm version") {
		t.Errorf("arm64/v9: %q", omitted)
	}
}
