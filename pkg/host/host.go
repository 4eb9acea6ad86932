// Package host discovers the features of a host in Node Feature Discovery's Features shape
// (sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1.Features), the input of rule evaluation
// in pkg/match, and reads saved feature files such as the output of `nfd export features`.
//
// Feature names are NFD's <source>.<feature> (cpu.cpuid, kernel.version, pci.device, ...).
// Discovery tolerates missing files (containers and VMs often lack /proc/modules or DMI): a source
// that fails is reported as a Warning and the others still count.
package host

import (
	"context"
	"fmt"
	"maps"
	"sort"

	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"

	"github.com/compatkit/compatkit/pkg/spec"
)

// Features is NFD's feature collection: flags, attributes and instances keyed by
// <source>.<feature>.
type Features = nfdv1alpha1.Features

// Source discovers one group of host features.
type Source interface {
	// Name is the source name, the prefix of its feature names (cpu, kernel, compatkit, ...).
	Name() string
	// Discover returns the source's features with names already prefixed by Name()+".".
	Discover(ctx context.Context) (*Features, error)
}

// Warning records a source that could not discover its features.
type Warning struct {
	// Source is the name of the failing source.
	Source string `json:"source"`
	// Err says what failed.
	Err string `json:"error"`
}

// String prints "source: error".
func (w Warning) String() string { return w.Source + ": " + w.Err }

// Discoverer runs a fixed list of sources. Use New.
type Discoverer struct {
	sources []Source
}

// New returns a Discoverer over sources; with none, it uses DefaultSources().
func New(sources ...Source) *Discoverer {
	if len(sources) == 0 {
		sources = DefaultSources()
	}
	return &Discoverer{sources: sources}
}

// Discover runs every source in order and merges their features. A failing source becomes a
// Warning; the error is non-nil only when ctx is done or no source succeeded.
func (d *Discoverer) Discover(ctx context.Context) (*Features, []Warning, error) {
	all := nfdv1alpha1.NewFeatures()
	var warnings []Warning
	ok := 0
	for _, s := range d.sources {
		if err := ctx.Err(); err != nil {
			return nil, warnings, err
		}
		f, err := s.Discover(ctx)
		if err != nil {
			warnings = append(warnings, Warning{Source: s.Name(), Err: err.Error()})
			continue
		}
		ok++
		Merge(all, f)
	}
	if ok == 0 && len(d.sources) > 0 {
		return nil, warnings, fmt.Errorf("no feature source succeeded: %v", warnings)
	}
	if p, err := Platform(all); err == nil && p.Architecture == "amd64" {
		// Record the x86-64 level the cpu source's flags give, so that saved profiles say it.
		SetPlatform(all, p)
	}
	NormalizeKernelVersion(all)
	MirrorCompatkit(all)
	return all, warnings, nil
}

// Merge adds every feature set of src to dst; a set present in both is replaced by src's, except
// local.feature, whose elements are merged.
func Merge(dst, src *Features) {
	if src == nil {
		return
	}
	if dst.Flags == nil {
		dst.Flags = map[string]nfdv1alpha1.FlagFeatureSet{}
	}
	if dst.Attributes == nil {
		dst.Attributes = map[string]nfdv1alpha1.AttributeFeatureSet{}
	}
	if dst.Instances == nil {
		dst.Instances = map[string]nfdv1alpha1.InstanceFeatureSet{}
	}
	for k, v := range src.Flags {
		dst.Flags[k] = v
	}
	for k, v := range src.Attributes {
		if have, ok := dst.Attributes[k]; ok && k == spec.LocalFeatureSet {
			// local.feature gathers every local feature file and compatkit's mirror: merge, into
			// a new map (the sets may belong to a source).
			merged := make(map[string]string, len(have.Elements)+len(v.Elements))
			maps.Copy(merged, have.Elements)
			maps.Copy(merged, v.Elements)
			dst.Attributes[k] = nfdv1alpha1.AttributeFeatureSet{Elements: merged}
			continue
		}
		dst.Attributes[k] = v
	}
	for k, v := range src.Instances {
		dst.Instances[k] = v
	}
}

// Names lists the feature set names present in f, sorted.
func Names(f *Features) []string {
	seen := map[string]bool{}
	for k := range f.Flags {
		seen[k] = true
	}
	for k := range f.Attributes {
		seen[k] = true
	}
	for k := range f.Instances {
		seen[k] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
