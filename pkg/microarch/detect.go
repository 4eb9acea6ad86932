package microarch

import (
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/compatkit/compatkit/pkg/cpuinfo"
)

// Family returns archspec's family name for a GOARCH (amd64 → x86_64, arm64 → aarch64, ppc64le,
// ppc64, riscv64, s390x, 386 → x86); a family name is returned unchanged.
func Family(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "x86"
	case "arm":
		return "arm"
	}
	return goarch
}

// hostInfo is archspec's partial microarchitecture: what /proc/cpuinfo says.
type hostInfo struct {
	name       string
	vendor     string
	features   []string
	generation int
	cpuPart    string
}

var powerGen = regexp.MustCompile(`POWER(\d+)`)

// field returns the first processor block's field, or "".
func field(info *cpuinfo.Info, key string) (string, bool) {
	v, ok := info.Fields[key]
	return strings.TrimSpace(v), ok
}

// partial is archspec's proc_cpuinfo(): the partial microarchitecture of the host.
func (g *Graph) partial(info *cpuinfo.Info, family string) hostInfo {
	switch family {
	case "x86_64":
		v, ok := field(info, "vendor_id")
		if !ok {
			v = info.Vendor
		}
		if v == "" {
			v = Generic
		}
		return hostInfo{vendor: v, features: features(info, "flags")}
	case "aarch64":
		h := hostInfo{vendor: Generic, features: features(info, "Features")}
		impl, ok := field(info, "CPU implementer")
		if !ok && info.Vendor != "" {
			impl, ok = info.Vendor, true
		}
		if ok {
			h.vendor = impl
			if v, ok := g.ARMVendors[impl]; ok {
				h.vendor = v
			}
		}
		h.cpuPart, _ = field(info, "CPU part")
		return h
	case "ppc64le", "ppc64":
		cpu, ok := field(info, "cpu")
		if !ok {
			cpu = info.ModelName
		}
		m := powerGen.FindStringSubmatch(cpu)
		if m == nil {
			return hostInfo{}
		}
		n, _ := strconv.Atoi(m[1])
		return hostInfo{generation: n}
	case "riscv64":
		uarch, _ := field(info, "uarch")
		model, _ := field(info, "model name")
		switch {
		case uarch == "sifive,u74-mc":
			uarch = "u74mc"
		case uarch == "spacemit,x60" || model == "Spacemit(R) X60":
			uarch = "x60"
		case uarch == "":
			uarch = "riscv64"
		}
		return hostInfo{name: uarch}
	}
	return hostInfo{vendor: Generic}
}

// features returns the set of the field's names (or info.Flags), with sse3 added when ssse3 is
// there, as archspec's Microarchitecture constructor does.
func features(info *cpuinfo.Info, key string) []string {
	var fs []string
	if v, ok := field(info, key); ok {
		fs = strings.Fields(v)
	} else {
		fs = slices.Clone(info.Flags)
	}
	if slices.Contains(fs, "ssse3") {
		fs = append(fs, "sse3")
	}
	slices.Sort(fs)
	return slices.Compact(fs)
}

func subset(a, b []string) bool {
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			return false
		}
	}
	return true
}

// compatible is archspec's per-family compatibility check: can the host run code built for t.
func (g *Graph) compatible(family string, h hostInfo, t *Target) bool {
	root, ok := g.targets[family]
	if !ok {
		return false
	}
	inFamily := t == root || slices.Contains(t.ancestors(), root)
	switch family {
	case "x86_64":
		return inFamily && (t.Vendor == h.vendor || t.Vendor == Generic) && subset(t.Features, h.features)
	case "aarch64":
		if t.Vendor == Generic && t.Name != "aarch64" {
			return false
		}
		return t.Family() == "aarch64" && (t.Vendor == h.vendor || t.Vendor == Generic) && subset(t.Features, h.features)
	case "ppc64le", "ppc64":
		return inFamily && t.Generation <= h.generation
	case "riscv64":
		return inFamily && (t.Name == h.name || t.Vendor == Generic)
	}
	return false
}

// ErrNoInfo is returned by Detect for a nil Info or one without an architecture.
var ErrNoInfo = errors.New("microarch: no cpuinfo or no architecture in it")

// Detect returns the host's target from its Linux /proc/cpuinfo, with the embedded graph.
func Detect(info *cpuinfo.Info) (Target, error) { return Default().Detect(info) }

// Detect returns the host's target from its Linux /proc/cpuinfo as archspec's host() does on
// Linux: the targets compatible with the host (its family's check: x86_64, the vendor matches or
// the target is generic and the target's features are a subset of the host's flags; aarch64, the
// same with the implementer's name and Features, generic targets other than aarch64 itself never
// match; ppc64le and ppc64, the target's generation is at most the host's POWER generation;
// riscv64, the target is the one the "uarch" field names or generic), then the best generic one
// (most ancestors, then most features); on aarch64 only the targets of the host's "CPU part" if
// any has it; then, among the candidates strictly above the best generic, the one with most
// ancestors, then most features (the first in archspec's order on a tie), or the best generic
// target when there is none. A family archspec has no target for (s390x) gives a generic target of
// that name that is not in the graph.
func (g *Graph) Detect(info *cpuinfo.Info) (Target, error) {
	if info == nil || info.Arch == "" {
		return Target{}, ErrNoInfo
	}
	family := Family(info.Arch)
	h := g.partial(info, family)
	var cands []*Target
	for _, n := range g.order {
		if t := g.targets[n]; g.compatible(family, h, t) {
			cands = append(cands, t)
		}
	}
	if len(cands) == 0 {
		if t, ok := g.targets[family]; ok {
			return *t, nil
		}
		return Target{Name: family, Vendor: Generic}, nil
	}
	better := func(a, b *Target) bool { // a sorts after b under (len(ancestors), len(features))
		la, lb := len(a.ancestors()), len(b.ancestors())
		if la != lb {
			return la > lb
		}
		return len(a.Features) > len(b.Features)
	}
	best := func(ts []*Target) *Target {
		var m *Target
		for _, t := range ts {
			if m == nil || better(t, m) {
				m = t
			}
		}
		return m
	}
	var generics []*Target
	for _, c := range cands {
		if c.Vendor == Generic {
			generics = append(generics, c)
		}
	}
	bestGeneric := best(generics)
	if bestGeneric == nil {
		// archspec would fail here (max of an empty list); every family root is generic.
		return Target{}, errors.New("microarch: no generic target fits the host")
	}
	if h.cpuPart != "" && slices.ContainsFunc(cands, func(c *Target) bool { return c.CPUPart == h.cpuPart }) {
		cands = slices.DeleteFunc(cands, func(c *Target) bool { return c.CPUPart != h.cpuPart })
	}
	cands = slices.DeleteFunc(cands, func(c *Target) bool { return !bestGeneric.Less(*c) })
	if len(cands) == 0 {
		return *bestGeneric, nil
	}
	return *best(cands), nil
}
