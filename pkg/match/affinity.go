package match

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/compatkit/compatkit/internal/safetext"
	"github.com/compatkit/compatkit/pkg/host"
	"github.com/compatkit/compatkit/pkg/spec"
)

// MaxAffinityTerms bounds the node selector terms one spec expands to: matchAny alternatives and
// device lists are ORs, which Kubernetes can only express as separate terms (their product
// across rules). A rule whose expansion would pass the bound is left out (the affinity is
// weakened) and listed in Affinity.Omitted.
const MaxAffinityTerms = 32

// Affinity is a Kubernetes node affinity derived from specs, with what it could not express.
//
// Required terms are one per compatibility set (ORed, as sets are), each the set's rules as
// requirements on the labels NFD publishes; preferred terms give the sets' weights. Kubernetes'
// node selector has only In, NotIn, Exists, DoesNotExist, Gt and Lt on labels, and NFD labels only
// part of what it discovers, so some expressions cannot be expressed: they are left out of their
// term, which weakens it (a node may be selected that fails them, never the reverse), and each is
// listed in Omitted. When a whole term is left empty, the sets cannot constrain scheduling and
// the required affinity is dropped (an empty Kubernetes term would match no node).
type Affinity struct {
	// terms[i] is one ORed alternative: its requirements are ANDed; weight is the set's.
	terms []affTerm
	// Omitted lists what could not be expressed.
	Omitted []Omission `json:"omitted,omitempty"`
}

type affTerm struct {
	reqs   []corev1.NodeSelectorRequirement
	weight int
}

// Omission is an expression, or a rule, that the affinity does not express.
type Omission struct {
	// Set is the tag of the compatibility set (or "set N").
	Set  string `json:"set"`
	Rule string `json:"rule"`
	// What is the expression ("cpu.cpuid: BMI2 Exists") or the rule's matchAny.
	What string `json:"what"`
	// Why it cannot be expressed.
	Why string `json:"why"`
}

// String prints the omitted expression and why it cannot be a node selector requirement, on one
// line: the set's tag, the rule's name and the expression come from a spec (or a platform from an
// index), so each is escaped (safetext.Line) and none can start a line of its own, in a YAML
// comment or on a terminal.
func (o Omission) String() string {
	return fmt.Sprintf("set %s, rule %s: %s: %s", safetext.Line(o.Set), safetext.Line(o.Rule), safetext.Line(o.What), safetext.Line(o.Why))
}

// NodeAffinity derives the node affinity of specs that must all hold (a manifest's spec and its
// index's); nil specs are skipped. With no spec, the affinity does not constrain anything.
func NodeAffinity(specs ...*spec.Spec) *Affinity {
	a := &Affinity{terms: []affTerm{{weight: -1}}}
	for _, s := range specs {
		if s == nil {
			continue
		}
		b := specAffinity(s)
		a.Omitted = append(a.Omitted, b.Omitted...)
		a.terms = product(a.terms, b.terms)
	}
	return a
}

// Require adds requirements to every required term (kubernetes.io/arch for a platform).
func (a *Affinity) Require(reqs ...corev1.NodeSelectorRequirement) {
	for i := range a.terms {
		a.terms[i].reqs = append(slices.Clone(a.terms[i].reqs), reqs...)
	}
}

// Union returns the affinity of "any of as" (the platforms of an index).
func Union(as ...*Affinity) *Affinity {
	u := &Affinity{}
	for _, a := range as {
		u.terms = append(u.terms, a.terms...)
		u.Omitted = append(u.Omitted, a.Omitted...)
	}
	return u
}

// PlatformRequirements are the requirements on Kubernetes' well-known labels kubernetes.io/os and
// kubernetes.io/arch for platform os/arch[/variant] (the variant has no label and is not
// expressed).
func PlatformRequirements(platform string) []corev1.NodeSelectorRequirement {
	parts := strings.Split(platform, "/")
	if len(parts) < 2 {
		return nil
	}
	return []corev1.NodeSelectorRequirement{
		{Key: "kubernetes.io/os", Operator: corev1.NodeSelectorOpIn, Values: []string{parts[0]}},
		{Key: "kubernetes.io/arch", Operator: corev1.NodeSelectorOpIn, Values: []string{parts[1]}},
	}
}

// NodeAffinity returns the Kubernetes node affinity: nil Required when the terms cannot constrain
// scheduling (an empty term matches every node), and preferred terms with the sets' weights (1-100;
// Kubernetes adds the weights of every preferred term a node matches).
func (a *Affinity) NodeAffinity() *corev1.NodeAffinity {
	na := &corev1.NodeAffinity{}
	unconstrained := len(a.terms) == 0
	var weights []int
	for _, t := range a.terms {
		if len(t.reqs) == 0 {
			unconstrained = true
		}
		if !slices.Contains(weights, t.weight) {
			weights = append(weights, t.weight)
		}
	}
	if !unconstrained {
		sel := &corev1.NodeSelector{}
		for _, t := range a.terms {
			sel.NodeSelectorTerms = append(sel.NodeSelectorTerms, corev1.NodeSelectorTerm{MatchExpressions: t.reqs})
		}
		na.RequiredDuringSchedulingIgnoredDuringExecution = sel
	}
	// Preferences only matter when the sets differ in weight (a weight of 0 is a difference too:
	// the other sets are preferred; Kubernetes needs 1-100, so weight-0 sets get no term).
	if len(weights) > 1 {
		for _, t := range a.terms {
			if t.weight > 0 && len(t.reqs) > 0 {
				na.PreferredDuringSchedulingIgnoredDuringExecution = append(na.PreferredDuringSchedulingIgnoredDuringExecution,
					corev1.PreferredSchedulingTerm{Weight: int32(min(t.weight, 100)), Preference: corev1.NodeSelectorTerm{MatchExpressions: t.reqs}})
			}
		}
	}
	return na
}

// Terms returns the required node selector terms, even when one is empty (for tests and
// callers that handle that case themselves).
func (a *Affinity) Terms() []corev1.NodeSelectorTerm {
	var out []corev1.NodeSelectorTerm
	for _, t := range a.terms {
		out = append(out, corev1.NodeSelectorTerm{MatchExpressions: t.reqs})
	}
	return out
}

// product ANDs two DNFs; the weight is the lower known one.
func product(a, b []affTerm) []affTerm {
	var out []affTerm
	for _, x := range a {
		for _, y := range b {
			w := y.weight
			if x.weight >= 0 && (w < 0 || x.weight < w) {
				w = x.weight
			}
			out = append(out, affTerm{reqs: append(slices.Clone(x.reqs), y.reqs...), weight: w})
		}
	}
	return out
}

func specAffinity(s *spec.Spec) *Affinity {
	a := &Affinity{}
	for i, c := range s.Compatibilities {
		set := c.Tag
		if set == "" {
			set = fmt.Sprintf("%d", i+1)
		}
		dnf := []affTerm{{weight: c.Weight}}
		for _, r := range c.Rules {
			omit := func(what, why string) {
				a.Omitted = append(a.Omitted, Omission{Set: set, Rule: r.Name, What: what, Why: why})
			}
			rd := [][]corev1.NodeSelectorRequirement{nil}
			rd = andDNF(rd, termsDNF(r.MatchFeatures, omit))
			if len(r.MatchAny) > 0 {
				var alts [][]corev1.NodeSelectorRequirement
				for _, alt := range r.MatchAny {
					alts = append(alts, termsDNF(alt.MatchFeatures, omit)...)
				}
				rd = andDNF(rd, alts)
			}
			if len(rd)*len(dnf) > MaxAffinityTerms {
				omit("the whole rule", fmt.Sprintf("its alternatives (matchAny, device lists) would make %d node selector terms, more than %d", len(rd)*len(dnf), MaxAffinityTerms))
				continue
			}
			var next []affTerm
			for _, t := range dnf {
				for _, conj := range rd {
					next = append(next, affTerm{reqs: append(slices.Clone(t.reqs), conj...), weight: t.weight})
				}
			}
			dnf = next
		}
		a.terms = append(a.terms, dnf...)
	}
	return a
}

func andDNF(a, b [][]corev1.NodeSelectorRequirement) [][]corev1.NodeSelectorRequirement {
	var out [][]corev1.NodeSelectorRequirement
	for _, x := range a {
		for _, y := range b {
			out = append(out, append(slices.Clone(x), y...))
		}
		if len(out) > MaxAffinityTerms*MaxAffinityTerms {
			break
		}
	}
	return out
}

// termsDNF converts ANDed feature terms to a DNF of label requirements.
func termsDNF(terms []spec.FeatureMatcherTerm, omit func(what, why string)) [][]corev1.NodeSelectorRequirement {
	dnf := [][]corev1.NodeSelectorRequirement{nil}
	for _, t := range terms {
		if t.MatchName != nil {
			omit(t.Feature+": matchName "+t.MatchName.String(), "NFD labels cannot be matched by name patterns")
		}
		if t.Feature == "pci.device" {
			dnf = andDNF(dnf, pciDNF(t, omit))
			continue
		}
		names := make([]string, 0, len(t.MatchExpressions))
		for k := range t.MatchExpressions {
			names = append(names, k)
		}
		sort.Strings(names)
		var conj []corev1.NodeSelectorRequirement
		for _, k := range names {
			reqs, why := requirement(t.Feature, k, t.MatchExpressions[k])
			if why != "" {
				omit(t.Feature+": "+k+" "+t.MatchExpressions[k].String(), why)
				continue
			}
			conj = append(conj, reqs...)
		}
		dnf = andDNF(dnf, [][]corev1.NodeSelectorRequirement{conj})
	}
	return dnf
}

// labelledPCIClasses are the device class prefixes NFD labels by default (deviceClassWhitelist).
var labelledPCIClasses = []string{"03", "0b40", "12"}

// pciDNF: a pci.device term with class and vendor In lists becomes "one of the
// pci-<class>_<vendor>.present labels exists".
func pciDNF(t spec.FeatureMatcherTerm, omit func(what, why string)) [][]corev1.NodeSelectorRequirement {
	var classes, vendors []string
	for k, e := range t.MatchExpressions {
		switch {
		case (k == "class" || k == "vendor") && e.Op == spec.OpIn:
			if k == "class" {
				classes = e.Value
			} else {
				vendors = e.Value
			}
		default:
			omit("pci.device: "+k+" "+e.String(), "NFD labels PCI devices only as pci-<class>_<vendor>.present: only class and vendor In can be expressed")
		}
	}
	if classes == nil || vendors == nil {
		omit("pci.device", "a device needs both class In and vendor In to name NFD's pci-<class>_<vendor>.present labels")
		return [][]corev1.NodeSelectorRequirement{nil}
	}
	var out [][]corev1.NodeSelectorRequirement
	for _, c := range classes {
		labelled := false
		for _, p := range labelledPCIClasses {
			labelled = labelled || strings.HasPrefix(c, p)
		}
		if !labelled {
			omit("pci.device: class "+c, "NFD labels only device classes 03, 0b40 and 12 by default")
			return [][]corev1.NodeSelectorRequirement{nil}
		}
		for _, v := range vendors {
			out = append(out, []corev1.NodeSelectorRequirement{{Key: host.NFDLabelPrefix + "pci-" + c + "_" + v + ".present", Operator: corev1.NodeSelectorOpExists}})
		}
	}
	return out
}

// attributeLabels maps an attribute feature to the label name of an element, for the attributes
// NFD v0.18 labels by default (and compatkit's own local labels); "" when not labelled.
func attributeLabel(feature, elem string) string {
	switch feature {
	case "cpu.model":
		if elem == "vendor_id" || elem == "family" || elem == "id" {
			return "cpu-model." + elem
		}
	case "cpu.cstate", "cpu.pstate", "cpu.security":
		return "cpu-" + strings.TrimPrefix(feature, "cpu.") + "." + elem
	case "cpu.sst":
		return "cpu-power.sst_" + elem
	case "cpu.topology":
		if elem == "hardware_multithreading" {
			return "cpu-hardware_multithreading"
		}
	case "kernel.version":
		return "kernel-version." + elem
	case "kernel.config":
		if elem == "NO_HZ" || elem == "NO_HZ_IDLE" || elem == "NO_HZ_FULL" || elem == "PREEMPT" {
			return "kernel-config." + elem
		}
	case "kernel.selinux":
		return "kernel-selinux." + elem
	case "system.osrelease":
		switch elem {
		case "ID", "VERSION_ID", "VERSION_ID.major", "VERSION_ID.minor":
			return "system-os_release." + elem
		}
	case "memory.numa":
		if elem == "is_numa" {
			return "memory-numa"
		}
	}
	if rest, ok := strings.CutPrefix(feature, "compatkit."); ok {
		return "compatkit-" + rest + "." + elem
	}
	return ""
}

// requirement converts one expression; why says why it cannot be.
func requirement(feature, elem string, e *spec.MatchExpression) ([]corev1.NodeSelectorRequirement, string) {
	if e.Type == "version" {
		return nil, "Kubernetes compares labels as integers only (Gt, Lt), not as versions"
	}
	if feature == "cpu.cpuid" {
		if slices.Contains(host.NFDUnlabelledCPUID, elem) {
			return nil, "NFD does not publish this cpuid flag as a node label (attributeBlacklist)"
		}
		key := host.NFDLabelPrefix + "cpu-cpuid." + elem
		switch e.Op {
		case spec.OpExists:
			return []corev1.NodeSelectorRequirement{{Key: key, Operator: corev1.NodeSelectorOpIn, Values: []string{"true"}}}, ""
		case spec.OpDoesNotExist:
			return []corev1.NodeSelectorRequirement{{Key: key, Operator: corev1.NodeSelectorOpDoesNotExist}}, ""
		}
		return nil, "only Exists and DoesNotExist apply to cpuid flags"
	}
	label := attributeLabel(feature, elem)
	if label == "" {
		return nil, "NFD does not publish " + feature + " " + elem + " as a node label by default"
	}
	key := host.NFDLabelPrefix + label
	req := func(op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
	}
	num := func(i int) (int, bool) {
		n, err := strconv.Atoi(e.Value[i])
		return n, err == nil
	}
	switch e.Op {
	case spec.OpIn:
		return []corev1.NodeSelectorRequirement{req(corev1.NodeSelectorOpIn, e.Value...)}, ""
	case spec.OpNotIn:
		// NFD's NotIn needs the element; Kubernetes' NotIn also matches nodes without the label.
		return []corev1.NodeSelectorRequirement{req(corev1.NodeSelectorOpExists), req(corev1.NodeSelectorOpNotIn, e.Value...)}, ""
	case spec.OpExists:
		return []corev1.NodeSelectorRequirement{req(corev1.NodeSelectorOpExists)}, ""
	case spec.OpDoesNotExist:
		return []corev1.NodeSelectorRequirement{req(corev1.NodeSelectorOpDoesNotExist)}, ""
	case spec.OpIsTrue:
		return []corev1.NodeSelectorRequirement{req(corev1.NodeSelectorOpIn, "true")}, ""
	case spec.OpIsFalse:
		return []corev1.NodeSelectorRequirement{req(corev1.NodeSelectorOpIn, "false")}, ""
	case spec.OpGt, spec.OpGe, spec.OpLt, spec.OpLe:
		n, ok := num(0)
		if !ok {
			return nil, "not an integer"
		}
		switch e.Op {
		case spec.OpGt:
			return []corev1.NodeSelectorRequirement{req(corev1.NodeSelectorOpGt, strconv.Itoa(n))}, ""
		case spec.OpGe:
			return []corev1.NodeSelectorRequirement{req(corev1.NodeSelectorOpGt, strconv.Itoa(n-1))}, ""
		case spec.OpLt:
			return []corev1.NodeSelectorRequirement{req(corev1.NodeSelectorOpLt, strconv.Itoa(n))}, ""
		default:
			return []corev1.NodeSelectorRequirement{req(corev1.NodeSelectorOpLt, strconv.Itoa(n+1))}, ""
		}
	case spec.OpGtLt, spec.OpGeLe:
		lo, ok1 := num(0)
		hi, ok2 := num(1)
		if !ok1 || !ok2 {
			return nil, "not integers"
		}
		if e.Op == spec.OpGeLe {
			lo, hi = lo-1, hi+1
		}
		return []corev1.NodeSelectorRequirement{req(corev1.NodeSelectorOpGt, strconv.Itoa(lo)), req(corev1.NodeSelectorOpLt, strconv.Itoa(hi))}, ""
	case spec.OpInRegexp:
		return nil, "Kubernetes node selectors have no regular expressions"
	}
	return nil, "operator " + string(e.Op) + " has no Kubernetes equivalent"
}
