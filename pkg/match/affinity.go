package match

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/compatkit/compatkit/internal/safetext"
	"github.com/compatkit/compatkit/pkg/host"
	"github.com/compatkit/compatkit/pkg/spec"
)

// MaxAffinityTerms bounds the node selector terms one compatibility set expands to: matchAny
// alternatives and device lists are ORs, which Kubernetes can only express as separate terms
// (their product across rules). A rule whose expansion would pass the bound is left out (the
// affinity is weakened) and listed in Affinity.Omitted; its size is counted first, so that a rule
// of 4,096 PCI classes by 4,096 vendors costs its count, not its 16 million terms.
const MaxAffinityTerms = 32

// Bounds of a whole affinity: every spec that must hold (their product) and every platform of an
// index (their union). Beyond them NodeAffinity and Union fail with a *TooLargeError, checked
// before the terms are built: 256 sets of 32 alternatives in a manifest's spec and again in its
// index's would otherwise be 67 million terms. Such an affinity is also far larger than a pod
// spec may be (etcd takes objects of 1.5 MiB).
const (
	// MaxNodeSelectorTerms bounds the required node selector terms of an affinity.
	MaxNodeSelectorTerms = 1024
	// MaxNodeSelectorRequirements bounds the requirements of all its terms together.
	MaxNodeSelectorRequirements = 1 << 16
)

// TooLargeError is the error of NodeAffinity and Union when the affinity would pass
// MaxNodeSelectorTerms or MaxNodeSelectorRequirements. Nothing is built then: the decision is
// better left to a check on the node or at admission (pkg/decide), which costs what the spec
// costs.
type TooLargeError struct {
	// Spec is the position, in NodeAffinity's specs, of the spec that took the affinity past the
	// bound; -1 for Union.
	Spec int
	// Combined is true when the spec is within the bounds alone and its product with the specs
	// before it (those that must hold too) is not.
	Combined bool
	// Terms is the number of terms the affinity would have had: the spec's, counted before
	// anything is built, or the product's with the specs before it (math.MaxInt when beyond
	// counting).
	Terms int
	// Requirements is the number of requirements counted up to the term that passed
	// MaxNodeSelectorRequirements (the terms were within their bound then); 0 otherwise.
	Requirements int
}

// Error says which bound the affinity passes.
func (e *TooLargeError) Error() string {
	what := fmt.Sprintf("%s node selector terms, more than %d", count(e.Terms), MaxNodeSelectorTerms)
	if e.Terms <= MaxNodeSelectorTerms {
		what = fmt.Sprintf("more than %d node selector requirements in all (%s counted)", MaxNodeSelectorRequirements, count(e.Requirements))
	}
	switch {
	case e.Spec < 0:
		return "the platforms together would make an affinity of " + what
	case e.Combined:
		return "with the specs that must hold with it, the affinity would have " + what
	}
	return "the affinity would have " + what
}

// count prints a saturated count.
func count(n int) string {
	if n == math.MaxInt {
		return "2^63 or more"
	}
	return strconv.Itoa(n)
}

// mulCount is a*b for counts (non-negative), saturating at math.MaxInt: sizes are compared with
// their bounds before anything is allocated, and a spec can name more terms than an int holds.
func mulCount(a, b int) int {
	if a == 0 || b == 0 {
		return 0
	}
	if a > math.MaxInt/b {
		return math.MaxInt
	}
	return a * b
}

// addCount is a+b for counts, saturating at math.MaxInt.
func addCount(a, b int) int {
	if a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}

// affSize is the size of a DNF: its terms and their requirements in all.
type affSize struct{ terms, reqs int }

func (z affSize) tooLarge() bool {
	return z.terms > MaxNodeSelectorTerms || z.reqs > MaxNodeSelectorRequirements
}

func (z affSize) add(o affSize) affSize {
	return affSize{addCount(z.terms, o.terms), addCount(z.reqs, o.reqs)}
}

// sizeOf counts the terms and requirements of ts.
func sizeOf(ts []affTerm) affSize {
	z := affSize{terms: len(ts)}
	for _, t := range ts {
		z.reqs = addCount(z.reqs, len(t.reqs)+len(t.fields))
	}
	return z
}

// productSize is the size of the product of DNFs of sizes a and b: |a|·|b| terms, each a term
// of a followed by one of b, so each requirement of a appears |b| times and each of b |a| times.
func productSize(a, b affSize) affSize {
	return affSize{mulCount(a.terms, b.terms), addCount(mulCount(a.reqs, b.terms), mulCount(b.reqs, a.terms))}
}

// err is the *TooLargeError of size z (Spec unset).
func (z affSize) err() *TooLargeError {
	return &TooLargeError{Terms: z.terms, Requirements: z.reqs}
}

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
	fields []corev1.NodeSelectorRequirement // matchFields, only from FromNodeSelector
	weight int
}

// empty reports whether t has no requirement at all (it would match every node as an AND, and
// Kubernetes takes such a term to match no node).
func (t affTerm) empty() bool { return len(t.reqs) == 0 && len(t.fields) == 0 }

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
// index's); nil specs are skipped. With no spec, the affinity does not constrain anything. The
// error is a *TooLargeError, naming the spec by its position in specs, when a spec, or its
// product with the specs before it, would pass MaxNodeSelectorTerms or
// MaxNodeSelectorRequirements; it comes before the terms are built.
func NodeAffinity(specs ...*spec.Spec) (*Affinity, error) {
	a := &Affinity{terms: []affTerm{{weight: -1}}}
	for i, s := range specs {
		if s == nil {
			continue
		}
		b, err := specAffinity(s)
		if err != nil {
			err.Spec = i
			return nil, err
		}
		a.Omitted = append(a.Omitted, b.Omitted...)
		terms, err := product(a.terms, b.terms)
		if err != nil {
			err.Spec, err.Combined = i, true
			return nil, err
		}
		a.terms = terms
	}
	return a, nil
}

// Require adds requirements to every required term (kubernetes.io/arch for a platform).
func (a *Affinity) Require(reqs ...corev1.NodeSelectorRequirement) {
	for i := range a.terms {
		a.terms[i].reqs = append(slices.Clone(a.terms[i].reqs), reqs...)
	}
}

// Union returns the affinity of "any of as" (the platforms of an index): their terms together.
// The error is a *TooLargeError (Spec -1) when they would pass MaxNodeSelectorTerms or
// MaxNodeSelectorRequirements.
func Union(as ...*Affinity) (*Affinity, error) {
	var z affSize
	for _, a := range as {
		z = z.add(sizeOf(a.terms))
	}
	if z.tooLarge() {
		err := z.err()
		err.Spec = -1
		return nil, err
	}
	u := &Affinity{terms: make([]affTerm, 0, z.terms)}
	for _, a := range as {
		u.terms = append(u.terms, a.terms...)
		u.Omitted = append(u.Omitted, a.Omitted...)
	}
	return u, nil
}

// PlatformRequirements are the requirements on Kubernetes' well-known labels kubernetes.io/os and
// kubernetes.io/arch for platform os/arch[/variant], and for an amd64 variant v2, v3 or v4 the
// level's labelled cpuid flags (X86LevelRequirements). omitted says what of the variant cannot be
// expressed: the level's unlabelled flags, or an arm version (no label says it); empty when all is.
func PlatformRequirements(platform string) (reqs []corev1.NodeSelectorRequirement, omitted string) {
	parts := strings.Split(platform, "/")
	if len(parts) < 2 {
		return nil, ""
	}
	reqs = []corev1.NodeSelectorRequirement{
		{Key: "kubernetes.io/os", Operator: corev1.NodeSelectorOpIn, Values: []string{parts[0]}},
		{Key: "kubernetes.io/arch", Operator: corev1.NodeSelectorOpIn, Values: []string{parts[1]}},
	}
	if len(parts) < 3 {
		return reqs, ""
	}
	v := parts[2]
	switch {
	case parts[1] == "amd64" && (v == "v2" || v == "v3" || v == "v4"):
		level, unlabelled := X86LevelRequirements(int(v[1] - '0'))
		return append(reqs, level...), "cpuid flags " + strings.Join(unlabelled, ", ") + " of x86-64-" + v + ": NFD does not label them"
	case v == "" || (parts[1] == "amd64" && v == "v1") || (parts[1] == "arm64" && v == "v8"):
		return reqs, ""
	}
	if parts[1] == "arm64" || parts[1] == "arm" {
		return reqs, "variant " + v + ": no node label says the arm version"
	}
	return reqs, "variant " + v + ": no node label says it"
}

// NodeAffinity returns the Kubernetes node affinity: nil Required when the terms cannot constrain
// scheduling (an empty term matches every node), and preferred terms with the sets' weights (1-100;
// Kubernetes adds the weights of every preferred term a node matches).
func (a *Affinity) NodeAffinity() *corev1.NodeAffinity {
	na := &corev1.NodeAffinity{}
	unconstrained := len(a.terms) == 0
	var weights []int
	for _, t := range a.terms {
		if t.empty() {
			unconstrained = true
		}
		if !slices.Contains(weights, t.weight) {
			weights = append(weights, t.weight)
		}
	}
	if !unconstrained {
		sel := &corev1.NodeSelector{}
		for _, t := range a.terms {
			sel.NodeSelectorTerms = append(sel.NodeSelectorTerms, corev1.NodeSelectorTerm{MatchExpressions: t.reqs, MatchFields: t.fields})
		}
		na.RequiredDuringSchedulingIgnoredDuringExecution = sel
	}
	// Preferences only matter when the sets differ in weight (a weight of 0 is a difference too:
	// the other sets are preferred; Kubernetes needs 1-100, so weight-0 sets get no term).
	if len(weights) > 1 {
		for _, t := range a.terms {
			if t.weight > 0 && !t.empty() {
				na.PreferredDuringSchedulingIgnoredDuringExecution = append(na.PreferredDuringSchedulingIgnoredDuringExecution,
					corev1.PreferredSchedulingTerm{Weight: int32(min(t.weight, 100)), Preference: corev1.NodeSelectorTerm{MatchExpressions: t.reqs, MatchFields: t.fields}})
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
		out = append(out, corev1.NodeSelectorTerm{MatchExpressions: t.reqs, MatchFields: t.fields})
	}
	return out
}

// FromNodeSelector returns the affinity of a pod's required node selector (its terms ORed, each
// term's matchExpressions and matchFields ANDed), to be intersected with the affinity of specs
// (an admission webhook ANDs what the pod asks for with what its images need). Terms without any
// requirement are dropped: Kubernetes matches no node with them, so they add no alternative. ok is
// false when sel has no term with a requirement, which matches no node at all: there is nothing
// to intersect with then. A nil sel is the unconstrained affinity (ok true).
func FromNodeSelector(sel *corev1.NodeSelector) (a *Affinity, ok bool) {
	if sel == nil {
		return &Affinity{terms: []affTerm{{weight: -1}}}, true
	}
	a = &Affinity{}
	for _, t := range sel.NodeSelectorTerms {
		at := affTerm{reqs: slices.Clone(t.MatchExpressions), fields: slices.Clone(t.MatchFields), weight: -1}
		if !at.empty() {
			a.terms = append(a.terms, at)
		}
	}
	return a, len(a.terms) > 0
}

// Intersect returns the affinity of "all of as" (the images of a pod, and what the pod itself
// asks for): the product of their terms, each term's requirements without duplicates, and terms
// that another term implies (a superset of its requirements) dropped, so that intersecting an
// affinity with itself gives it back. The error is a *TooLargeError (Spec -1) when the product
// would pass MaxNodeSelectorTerms or MaxNodeSelectorRequirements; it comes before the product is
// built.
func Intersect(as ...*Affinity) (*Affinity, error) {
	out := &Affinity{terms: []affTerm{{weight: -1}}}
	for _, a := range as {
		terms, err := product(out.terms, a.terms)
		if err != nil {
			err.Spec = -1
			return nil, err
		}
		out.terms = simplify(terms)
		out.Omitted = append(out.Omitted, a.Omitted...)
	}
	return out, nil
}

// simplify removes duplicate requirements inside each term, then the terms that a kept term
// implies: t is dropped when another term's requirements are a subset of t's (t ∨ s = s), the
// first of two equal terms kept. Order is kept otherwise.
func simplify(terms []affTerm) []affTerm {
	keys := make([]map[string]bool, len(terms))
	for i := range terms {
		terms[i].reqs = dedupeReqs(terms[i].reqs)
		terms[i].fields = dedupeReqs(terms[i].fields)
		keys[i] = map[string]bool{}
		for _, r := range terms[i].reqs {
			keys[i]["e"+reqKey(r)] = true
		}
		for _, r := range terms[i].fields {
			keys[i]["f"+reqKey(r)] = true
		}
	}
	subset := func(a, b map[string]bool) bool { // a ⊆ b
		if len(a) > len(b) {
			return false
		}
		for k := range a {
			if !b[k] {
				return false
			}
		}
		return true
	}
	var out []affTerm
	for i, t := range terms {
		implied := false
		for j := range terms {
			if j == i || !subset(keys[j], keys[i]) {
				continue
			}
			// A proper subset implies t; of two equal terms the first is kept.
			if len(keys[j]) < len(keys[i]) || j < i {
				implied = true
				break
			}
		}
		if !implied {
			out = append(out, t)
		}
	}
	return out
}

// reqKey is a requirement's identity: key, operator and values (values compared in order,
// as written).
func reqKey(r corev1.NodeSelectorRequirement) string {
	return r.Key + "\x00" + string(r.Operator) + "\x00" + strings.Join(r.Values, "\x00")
}

func dedupeReqs(reqs []corev1.NodeSelectorRequirement) []corev1.NodeSelectorRequirement {
	seen := make(map[string]bool, len(reqs))
	out := reqs[:0:0]
	for _, r := range reqs {
		if k := reqKey(r); !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	return out
}

// product ANDs two DNFs; the weight is the lower known one. The error (Spec unset) comes before
// anything is allocated when the product would be too large.
func product(a, b []affTerm) ([]affTerm, *TooLargeError) {
	z := productSize(sizeOf(a), sizeOf(b))
	if z.tooLarge() {
		return nil, z.err()
	}
	out := make([]affTerm, 0, z.terms)
	for _, x := range a {
		for _, y := range b {
			w := y.weight
			if x.weight >= 0 && (w < 0 || x.weight < w) {
				w = x.weight
			}
			out = append(out, affTerm{reqs: append(slices.Clone(x.reqs), y.reqs...), fields: append(slices.Clone(x.fields), y.fields...), weight: w})
		}
	}
	return out, nil
}

// specAffinity derives the terms of one spec: each set's DNF, the sets ORed. The error (Spec
// unset) comes before the terms that would pass the bounds are built.
func specAffinity(s *spec.Spec) (*Affinity, *TooLargeError) {
	if n := specTerms(s); n > MaxNodeSelectorTerms {
		return nil, &TooLargeError{Terms: n}
	}
	a := &Affinity{}
	var total affSize
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
			tooMany := func(n string) {
				omit("the whole rule", fmt.Sprintf("its alternatives (matchAny, device lists) would make %s node selector terms, more than %d", n, MaxAffinityTerms))
			}
			// Count first: building an expansion that is then left out would cost its size.
			rt := ruleTerms(r)
			if !ruleFits(rt, len(dnf)) {
				tooMany(count(mulCount(rt, max(len(dnf), 1))))
				continue
			}
			var rd [][]corev1.NodeSelectorRequirement // none when rt is 0: the rule cannot hold
			if rt > 0 {
				var ok bool
				if rd, ok = ruleDNF(r, omit); !ok { // a product on the way passes the bound (an alternative is empty)
					tooMany(fmt.Sprintf("more than %d", MaxAffinityTerms))
					continue
				}
			}
			var rz affSize
			rz.terms = len(rd)
			for _, conj := range rd {
				rz.reqs = addCount(rz.reqs, len(conj))
			}
			if z := productSize(sizeOf(dnf), rz); z.tooLarge() {
				return nil, z.err()
			}
			next := make([]affTerm, 0, len(dnf)*len(rd))
			for _, t := range dnf {
				for _, conj := range rd {
					next = append(next, affTerm{reqs: append(slices.Clone(t.reqs), conj...), weight: t.weight})
				}
			}
			dnf = next
		}
		if total = total.add(sizeOf(dnf)); total.tooLarge() {
			return nil, total.err()
		}
		a.terms = append(a.terms, dnf...)
	}
	return a, nil
}

// specTerms counts the terms specAffinity makes of s, without building them: per set, the product
// of the expansions of the rules that fit (ruleFits), the sets added. Saturates at math.MaxInt.
// The count is exact unless a rule fits by its count and still fails to build (a matchAny
// alternative with an empty device list after a large one, which Parse refuses: In needs a value);
// specAffinity also checks the terms as it builds them.
func specTerms(s *spec.Spec) int {
	total := 0
	for _, c := range s.Compatibilities {
		n := 1
		for _, r := range c.Rules {
			if rt := ruleTerms(r); ruleFits(rt, n) {
				n = mulCount(n, rt)
			}
		}
		total = addCount(total, n)
	}
	return total
}

// ruleFits reports whether a rule that expands to rt conjunctions joins a set's DNF of n terms:
// the rule and the product stay within MaxAffinityTerms. A rule that does not is left out.
func ruleFits(rt, n int) bool {
	return rt <= MaxAffinityTerms && mulCount(rt, max(n, 1)) <= MaxAffinityTerms
}

// ruleTerms counts the conjunctions a rule expands to (ruleDNF's length), without building them:
// the product of its matchFeatures terms' expansions, times the sum of its matchAny
// alternatives'. Saturates at math.MaxInt.
func ruleTerms(r spec.Rule) int {
	n := termsCount(r.MatchFeatures)
	if len(r.MatchAny) > 0 {
		alts := 0
		for _, alt := range r.MatchAny {
			alts = addCount(alts, termsCount(alt.MatchFeatures))
		}
		n = mulCount(n, alts)
	}
	return n
}

// termsCount counts the conjunctions termsDNF makes of terms: a pci.device term expands to its
// classes times its vendors (pciLists), any other term to one.
func termsCount(terms []spec.FeatureMatcherTerm) int {
	n := 1
	for _, t := range terms {
		if t.Feature != "pci.device" {
			continue
		}
		if classes, vendors, _, why := pciLists(t); why == "" {
			n = mulCount(n, mulCount(len(classes), len(vendors)))
		}
	}
	return n
}

// ruleDNF converts a rule to a DNF of label requirements: its matchFeatures terms ANDed with
// the OR of its matchAny alternatives. ok is false, and nothing more is built, when a product on
// the way would pass MaxAffinityTerms.
func ruleDNF(r spec.Rule, omit func(what, why string)) ([][]corev1.NodeSelectorRequirement, bool) {
	rd, ok := termsDNF(r.MatchFeatures, omit)
	if !ok || len(r.MatchAny) == 0 {
		return rd, ok
	}
	var alts [][]corev1.NodeSelectorRequirement
	for _, alt := range r.MatchAny {
		ad, ok := termsDNF(alt.MatchFeatures, omit)
		if !ok || len(alts)+len(ad) > MaxAffinityTerms {
			return nil, false
		}
		alts = append(alts, ad...)
	}
	return andDNF(rd, alts)
}

// andDNF ANDs two DNFs; ok is false, and nothing is allocated, when the product would have more
// than MaxAffinityTerms conjunctions.
func andDNF(a, b [][]corev1.NodeSelectorRequirement) ([][]corev1.NodeSelectorRequirement, bool) {
	n := mulCount(len(a), len(b))
	if n > MaxAffinityTerms {
		return nil, false
	}
	out := make([][]corev1.NodeSelectorRequirement, 0, n)
	for _, x := range a {
		for _, y := range b {
			out = append(out, append(slices.Clone(x), y...))
		}
	}
	return out, true
}

// termsDNF converts ANDed feature terms to a DNF of label requirements; ok is false when a
// product on the way would pass MaxAffinityTerms.
func termsDNF(terms []spec.FeatureMatcherTerm, omit func(what, why string)) ([][]corev1.NodeSelectorRequirement, bool) {
	dnf := [][]corev1.NodeSelectorRequirement{nil}
	for _, t := range terms {
		if t.MatchName != nil {
			omit(t.Feature+": matchName "+t.MatchName.String(), "NFD labels cannot be matched by name patterns")
		}
		if t.Feature == "pci.device" {
			pd, ok := pciDNF(t, omit)
			if !ok {
				return nil, false
			}
			if dnf, ok = andDNF(dnf, pd); !ok {
				return nil, false
			}
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
		// One conjunction: the product has len(dnf) terms, which the bound already holds.
		for i := range dnf {
			dnf[i] = append(slices.Clone(dnf[i]), conj...)
		}
	}
	return dnf, true
}

// labelledPCIClasses are the device class prefixes NFD labels by default (deviceClassWhitelist).
var labelledPCIClasses = []string{"03", "0b40", "12"}

// pciLists returns the class and vendor In lists of a pci.device term. When the term cannot name
// NFD's pci-<class>_<vendor>.present labels, what names the part that cannot and why says why:
// both lists are needed, and every class must be one NFD labels.
func pciLists(t spec.FeatureMatcherTerm) (classes, vendors []string, what, why string) {
	if e := t.MatchExpressions["class"]; e != nil && e.Op == spec.OpIn {
		classes = e.Value
	}
	if e := t.MatchExpressions["vendor"]; e != nil && e.Op == spec.OpIn {
		vendors = e.Value
	}
	if classes == nil || vendors == nil {
		return nil, nil, "pci.device", "a device needs both class In and vendor In to name NFD's pci-<class>_<vendor>.present labels"
	}
	for _, c := range classes {
		labelled := false
		for _, p := range labelledPCIClasses {
			labelled = labelled || strings.HasPrefix(c, p)
		}
		if !labelled {
			return nil, nil, "pci.device: class " + c, "NFD labels only device classes 03, 0b40 and 12 by default"
		}
	}
	return classes, vendors, "", ""
}

// pciDNF: a pci.device term with class and vendor In lists becomes "one of the
// pci-<class>_<vendor>.present labels exists"; a term that cannot name them is left out (one
// empty conjunction). ok is false, and nothing is allocated, when classes times vendors would
// pass MaxAffinityTerms.
func pciDNF(t spec.FeatureMatcherTerm, omit func(what, why string)) ([][]corev1.NodeSelectorRequirement, bool) {
	for k, e := range t.MatchExpressions {
		if (k != "class" && k != "vendor") || e.Op != spec.OpIn {
			omit("pci.device: "+k+" "+e.String(), "NFD labels PCI devices only as pci-<class>_<vendor>.present: only class and vendor In can be expressed")
		}
	}
	classes, vendors, what, why := pciLists(t)
	if why != "" {
		omit(what, why)
		return [][]corev1.NodeSelectorRequirement{nil}, true
	}
	n := mulCount(len(classes), len(vendors))
	if n > MaxAffinityTerms {
		return nil, false
	}
	out := make([][]corev1.NodeSelectorRequirement, 0, n)
	for _, c := range classes {
		for _, v := range vendors {
			out = append(out, []corev1.NodeSelectorRequirement{{Key: host.NFDLabelPrefix + "pci-" + c + "_" + v + ".present", Operator: corev1.NodeSelectorOpExists}})
		}
	}
	return out, true
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

// X86LevelRequirements are node label requirements every node of x86-64 microarchitecture level
// l (2-4) or above meets, on NFD v0.18 and v0.19 alike: the level's cpuid flags that NFD labels
// (AVX, AVX2, FMA3, MOVBE, OSXSAVE, LAHF, AVX512*), each In ["true"]. NFD v0.19's own
// cpu-cpuid.X86_64_V<l> label is not required, so that nodes of older releases still match.
// unlabelled lists the level's flags NFD does not label, which the requirements cannot express.
func X86LevelRequirements(l int) (reqs []corev1.NodeSelectorRequirement, unlabelled []string) {
	for k := 2; k <= l; k++ {
		for _, f := range host.X86LevelFlags(k) {
			if slices.Contains(host.NFDUnlabelledCPUID, f) {
				unlabelled = append(unlabelled, f)
				continue
			}
			reqs = append(reqs, corev1.NodeSelectorRequirement{Key: host.NFDLabelPrefix + "cpu-cpuid." + f,
				Operator: corev1.NodeSelectorOpIn, Values: []string{"true"}})
		}
	}
	return reqs, unlabelled
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
