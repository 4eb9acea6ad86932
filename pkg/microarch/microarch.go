// Package microarch is archspec's graph of CPU microarchitectures (targets such as haswell, zen4,
// neoverse_v1, power9le, u74mc) and its detection algorithm, in Go.
//
// The data is archspec-json's cpu/microarchitectures.json (third_party/archspec, embedded here by
// `go generate`): each target has a vendor, the features it guarantees (x86 in Linux /proc/cpuinfo
// flag names, aarch64 in Linux "Features" names), its parents, a generation (POWER) and compiler
// flags. Semantics follow archspec's Python package: a target is compatible with its ancestors, a <=
// b when a is b or one of b's ancestors, and every target belongs to one family (the root of its
// graph: x86_64, aarch64, ppc64le, riscv64, ...). Detect finds a Linux host's target from its
// /proc/cpuinfo as archspec's archspec.cpu.host() does.
package microarch

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
)

//go:generate go run ../../internal/gen/microarch

// JSON is the embedded copy of archspec-json's cpu/microarchitectures.json (third_party/archspec),
// unmodified.
//
//go:embed microarchitectures.json
var JSON []byte

// Generic is the vendor archspec gives targets that belong to no vendor (family roots and the
// x86_64_v2..v4 levels, armv8.x-a).
const Generic = "generic"

// Compiler is one entry of a target's compiler support: the compiler versions (archspec's range
// syntax, "10.3:12.2", "6.0:", ":") for which Flags produce code tuned for the target; Name is the
// target's name for that compiler when it differs ("icelake-client"); Family is set for entries of
// a family root.
type Compiler struct {
	// Versions is the range of compiler versions, "min:max" with either end optional.
	Versions string `json:"versions"`
	// Name is the compiler's name of the target, substituted for {name} in Flags.
	Name string `json:"name,omitempty"`
	// Flags are the compiler flags, possibly with a {name} placeholder.
	Flags string `json:"flags"`
	// Family is the architecture family the entry applies to, when archspec says.
	Family string `json:"family,omitempty"`
	// Warnings is archspec's warning for this entry, if any.
	Warnings string `json:"warnings,omitempty"`
}

// Target is one microarchitecture of the graph (archspec's Microarchitecture). Targets of a
// Graph compare by Name: a graph has one target per name.
type Target struct {
	// Name is archspec's name: "haswell", "zen4", "neoverse_v1", "power9le", "x86_64_v3".
	Name string
	// Vendor is archspec's vendor: the x86 vendor_id ("GenuineIntel", "AuthenticAMD"), the
	// aarch64 implementer's name ("ARM", "Ampere", "Fujitsu", "Cavium", "Apple"), "IBM",
	// "SiFive", "SpacemiT", or Generic.
	Vendor string
	// Features are the features the target guarantees, sorted, in Linux /proc/cpuinfo names of
	// its family (x86 "flags", aarch64 "Features"). As archspec does, a target with ssse3 also
	// lists sse3 (Linux prints pni for it).
	Features []string
	// Parents are the names of the direct parents (archspec's "from"), in archspec's order.
	Parents []string
	// Generation is the POWER generation (8 for power8le), 0 elsewhere.
	Generation int
	// CPUPart is the aarch64 "CPU part" ("0xd40"), "" when archspec gives none.
	CPUPart string
	// Compilers maps a compiler (gcc, clang, apple-clang, aocc, intel, oneapi, nvhpc, arm) to its
	// support entries.
	Compilers map[string][]Compiler

	g *Graph
}

// Graph is a set of targets and archspec's conversion tables.
type Graph struct {
	targets map[string]*Target
	order   []string // archspec's TARGETS order: JSON order, parents before children
	// ARMVendors maps an aarch64 "CPU implementer" ("0x41") to archspec's vendor name ("ARM").
	ARMVendors map[string]string
	// FeatureAliases maps an alias feature name of archspec (sse3, avx512, neon...) to the
	// reason archspec gives for it; Target.HasFeature resolves the ones of kind any_of and
	// families.
	FeatureAliases map[string]FeatureAlias
}

// FeatureAlias is an archspec feature alias: the alias holds for a target that has any feature
// of AnyOf, or that belongs to one of Families.
type FeatureAlias struct {
	// Reason is archspec's explanation.
	Reason string `json:"reason"`
	// AnyOf lists features any one of which implies the alias.
	AnyOf []string `json:"any_of,omitempty"`
	// Families lists families whose every target has the alias.
	Families []string `json:"families,omitempty"`
}

type rawTarget struct {
	From       []string              `json:"from"`
	Vendor     string                `json:"vendor"`
	Features   []string              `json:"features"`
	Generation int                   `json:"generation"`
	CPUPart    string                `json:"cpupart"`
	Compilers  map[string][]Compiler `json:"compilers"`
}

// Load parses an archspec microarchitectures.json document.
func Load(data []byte) (*Graph, error) {
	var top struct {
		Micro          json.RawMessage         `json:"microarchitectures"`
		FeatureAliases map[string]FeatureAlias `json:"feature_aliases"`
		Conversions    struct {
			ARMVendors map[string]string `json:"arm_vendors"`
		} `json:"conversions"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("microarch: %w", err)
	}
	if len(top.Micro) == 0 {
		return nil, fmt.Errorf("microarch: no microarchitectures object")
	}
	raw := map[string]rawTarget{}
	if err := json.Unmarshal(top.Micro, &raw); err != nil {
		return nil, fmt.Errorf("microarch: microarchitectures: %w", err)
	}
	keys, err := objectKeys(top.Micro)
	if err != nil {
		return nil, fmt.Errorf("microarch: microarchitectures: %w", err)
	}
	g := &Graph{targets: map[string]*Target{}, ARMVendors: top.Conversions.ARMVendors, FeatureAliases: top.FeatureAliases}
	// Fill parents first, as archspec's _known_microarchitectures does, so that the order (which
	// breaks ties in Detect) is archspec's.
	visiting := map[string]bool{}
	var fill func(name string) error
	fill = func(name string) error {
		if _, ok := g.targets[name]; ok {
			return nil
		}
		r, ok := raw[name]
		if !ok {
			return fmt.Errorf("microarch: unknown parent target %q", name)
		}
		if visiting[name] {
			return fmt.Errorf("microarch: target %q is its own ancestor", name)
		}
		visiting[name] = true
		for _, p := range r.From {
			if err := fill(p); err != nil {
				return err
			}
		}
		feats := slices.Clone(r.Features)
		if slices.Contains(feats, "ssse3") && !slices.Contains(feats, "sse3") {
			feats = append(feats, "sse3")
		}
		sort.Strings(feats)
		feats = slices.Compact(feats)
		g.targets[name] = &Target{Name: name, Vendor: r.Vendor, Features: feats, Parents: slices.Clone(r.From),
			Generation: r.Generation, CPUPart: r.CPUPart, Compilers: r.Compilers, g: g}
		g.order = append(g.order, name)
		return nil
	}
	for _, k := range keys {
		if err := fill(k); err != nil {
			return nil, err
		}
	}
	for _, t := range g.targets {
		if fams := t.roots(); len(fams) != 1 {
			return nil, fmt.Errorf("microarch: target %q belongs to %d families %v, want 1", t.Name, len(fams), fams)
		}
	}
	return g, nil
}

// objectKeys returns the keys of a JSON object in document order.
func objectKeys(obj []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not an object")
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

var (
	defaultOnce  sync.Once
	defaultGraph *Graph
)

// Default returns the graph of the embedded archspec data (parsed once; a test checks it parses).
func Default() *Graph {
	defaultOnce.Do(func() {
		g, err := Load(JSON)
		if err != nil {
			panic(err)
		}
		defaultGraph = g
	})
	return defaultGraph
}

// Lookup returns the embedded graph's target of that name.
func Lookup(name string) (Target, bool) { return Default().Lookup(name) }

// Lookup returns the target of that name.
func (g *Graph) Lookup(name string) (Target, bool) {
	t, ok := g.targets[name]
	if !ok {
		return Target{}, false
	}
	return *t, true
}

// Targets returns every target, parents before children, in archspec's order.
func (g *Graph) Targets() []Target {
	out := make([]Target, 0, len(g.order))
	for _, n := range g.order {
		out = append(out, *g.targets[n])
	}
	return out
}

// String returns the target's name.
func (t Target) String() string { return t.Name }

// IsZero reports whether t is the zero Target (no target).
func (t Target) IsZero() bool { return t.Name == "" }

// Generic reports whether the target belongs to no vendor (archspec's vendor "generic").
func (t Target) Generic() bool { return t.Vendor == Generic }

func (t Target) parents() []*Target {
	if t.g == nil {
		return nil
	}
	out := make([]*Target, 0, len(t.Parents))
	for _, p := range t.Parents {
		out = append(out, t.g.targets[p])
	}
	return out
}

// ancestors returns archspec's ancestors list: the parents, then each parent's ancestors not yet
// listed.
func (t Target) ancestors() []*Target {
	ps := t.parents()
	out := slices.Clone(ps)
	for _, p := range ps {
		for _, a := range p.ancestors() {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// Ancestors returns every ancestor of the target, in archspec's order (the parents first).
func (t Target) Ancestors() []Target {
	as := t.ancestors()
	out := make([]Target, len(as))
	for i, a := range as {
		out[i] = *a
	}
	return out
}

func (t Target) roots() []string {
	var out []string
	if len(t.Parents) == 0 {
		out = append(out, t.Name)
	}
	for _, a := range t.ancestors() {
		if len(a.Parents) == 0 {
			out = append(out, a.Name)
		}
	}
	return out
}

// Family returns the name of the target's architecture family, the root of its graph: "x86_64",
// "aarch64", "ppc64le", "ppc64", "riscv64", ...
func (t Target) Family() string {
	if r := t.roots(); len(r) > 0 {
		return r[0]
	}
	return t.Name
}

// HasFeature reports whether the target has the feature, directly or through one of archspec's
// feature aliases (sse4.1, avx512, neon, altivec...).
func (t Target) HasFeature(f string) bool {
	if slices.Contains(t.Features, f) {
		return true
	}
	if t.g == nil {
		return false
	}
	a, ok := t.g.FeatureAliases[f]
	if !ok {
		return false
	}
	for _, x := range a.AnyOf {
		if slices.Contains(t.Features, x) {
			return true
		}
	}
	return slices.Contains(a.Families, t.Family())
}

// LessEq reports archspec's t <= u: t is u or one of u's ancestors, so code built for t runs on u.
func (t Target) LessEq(u Target) bool { return t.Name == u.Name || t.Less(u) }

// Less reports archspec's t < u: t is one of u's ancestors.
func (t Target) Less(u Target) bool {
	for _, a := range u.ancestors() {
		if a.Name == t.Name {
			return true
		}
	}
	return false
}

// Supports reports whether a host whose target is host can run code built for want, i.e. want <=
// host in the embedded graph (false when either name is unknown).
func Supports(host, want string) bool {
	h, ok1 := Lookup(host)
	w, ok2 := Lookup(want)
	return ok1 && ok2 && w.LessEq(h)
}
