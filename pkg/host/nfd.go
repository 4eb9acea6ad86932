package host

import (
	"context"
	"fmt"
	"sort"
	"sync"

	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
	"sigs.k8s.io/node-feature-discovery/source"

	// NFD's feature sources register themselves in NFD's source registry when imported; compatkit
	// reads them through nfdSource and keeps no registry of its own. NFD's cpu source is imported
	// where it builds (nfd_cpu.go); elsewhere compatkit's cpuinfo source stands in (nfd_nocpu.go).
	_ "sigs.k8s.io/node-feature-discovery/source/kernel"
	_ "sigs.k8s.io/node-feature-discovery/source/local"
	_ "sigs.k8s.io/node-feature-discovery/source/memory"
	_ "sigs.k8s.io/node-feature-discovery/source/network"
	_ "sigs.k8s.io/node-feature-discovery/source/pci"
	_ "sigs.k8s.io/node-feature-discovery/source/storage"
	_ "sigs.k8s.io/node-feature-discovery/source/system"
	_ "sigs.k8s.io/node-feature-discovery/source/usb"
)

// nfdMu serialises NFD sources: they are process-wide singletons that keep their last result.
var nfdMu sync.Mutex

// nfdSource adapts one of NFD v0.18's feature sources (sigs.k8s.io/node-feature-discovery/source).
type nfdSource struct {
	src source.FeatureSource
}

// NFDSources returns NFD's feature sources that `nfd export features` and `nfd compat
// validate-node` enable by default (cpu, kernel, local, memory, network, pci, storage, system,
// usb), sorted by name, so compatkit sees the same features NFD does.
func NFDSources() []Source {
	var out []Source
	for _, s := range source.GetAllFeatureSources() {
		if ss, ok := s.(source.SupplementalSource); ok && ss.DisableByDefault() {
			continue
		}
		out = append(out, nfdSource{src: s})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

// DefaultSources is NFDSources followed by compatkit's own sources. On builds where NFD's cpu
// source does not exist (NFDCPUSource is false), compatkit's CPUInfoSource of /proc/cpuinfo takes
// its place, first.
func DefaultSources() []Source {
	var out []Source
	if !NFDCPUSource {
		out = append(out, CPUInfoSource("/", ""))
	}
	out = append(out, NFDSources()...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return append(out, CompatkitSources()...)
}

func (n nfdSource) Name() string { return n.src.Name() }

func (n nfdSource) Discover(ctx context.Context) (f *Features, err error) {
	nfdMu.Lock()
	defer nfdMu.Unlock()
	defer func() {
		// An NFD source reading an unexpected file layout must not take the caller down.
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("panic in NFD source %s: %v", n.src.Name(), r)
		}
	}()
	if err := n.src.Discover(); err != nil {
		return nil, err
	}
	return prefixed(n.src.Name(), n.src.GetFeatures()), nil
}

// prefixed copies f with every feature name prefixed by name+".", as NFD's
// source.GetAllFeatures does.
func prefixed(name string, f *Features) *Features {
	out := nfdv1alpha1.NewFeatures()
	if f == nil {
		return out
	}
	for k, v := range f.Flags {
		out.Flags[name+"."+k] = v
	}
	for k, v := range f.Attributes {
		out.Attributes[name+"."+k] = v
	}
	for k, v := range f.Instances {
		out.Instances[name+"."+k] = v
	}
	return out
}
