package host

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/compatkit/compatkit/internal/fileutil"
	"github.com/compatkit/compatkit/pkg/cpuinfo"
	"github.com/compatkit/compatkit/pkg/microarch"
	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
)

// maxCPUInfoBytes bounds a /proc/cpuinfo read (a 512-CPU machine prints about 1 MiB).
const maxCPUInfoBytes = 4 << 20

// CPUInfoSource returns a source named "cpu" that reports cpu.cpuid flags and cpu.model attributes
// in NFD's names from root/proc/cpuinfo (pkg/cpuinfo), the way NFD's cpu source reports them from
// the CPU itself. It stands in for NFD's cpu source on builds without it (NFDCPUSource) and reads
// dumps (features --host-root). arch is the GOARCH the file must show ("" for root "/" means this
// machine's, for another root the file's own).
func CPUInfoSource(root, arch string) Source { return cpuinfoSource{root: root, arch: arch} }

type cpuinfoSource struct{ root, arch string }

func (cpuinfoSource) Name() string { return "cpu" }

func (s cpuinfoSource) Discover(ctx context.Context) (*Features, error) {
	info, err := readCPUInfo(s.root, s.arch)
	if err != nil {
		return nil, err
	}
	return info.Features(), nil
}

// readCPUInfo parses root/proc/cpuinfo (or a must-gather node directory's cpuinfo); arch "" means
// this machine's for root "/", else the file's. Another root's file is read inside it
// (fileutil.ReadInRoot: no link out of it, no FIFO).
func readCPUInfo(root, arch string) (*cpuinfo.Info, error) {
	var data []byte
	var err error
	path := filepath.Join(root, "proc", "cpuinfo")
	if root == "/" {
		data, err = fileutil.ReadLimited(path, maxCPUInfoBytes)
		if arch == "" {
			arch = runtime.GOARCH
		}
	} else {
		rel := cpuinfoRel(root)
		if rel == "" {
			rel = "proc/cpuinfo"
		}
		path = filepath.Join(root, rel)
		var fs *os.Root
		if fs, err = os.OpenRoot(root); err == nil {
			data, err = fileutil.ReadInRoot(fs, rel, maxCPUInfoBytes)
			fs.Close()
		}
	}
	if err != nil {
		return nil, err
	}
	info, err := cpuinfo.Parse(data, arch)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

// cpuinfoRel is where root keeps its /proc/cpuinfo: "proc/cpuinfo", or "cpuinfo" in a must-gather
// node directory; "" when neither exists.
func cpuinfoRel(root string) string {
	for _, rel := range []string{"proc/cpuinfo", "cpuinfo"} {
		if _, err := os.Lstat(filepath.Join(root, rel)); err == nil {
			return rel
		}
	}
	return ""
}

// MicroarchFeature is the attribute feature set that names the host's CPU microarchitecture as
// archspec does (pkg/microarch, archspec-json's microarchitectures.json): elements target (e.g.
// "haswell", "zen4", "neoverse_v1", "x86_64_v3" for a CPU archspec knows only generically) and
// family ("x86_64", "aarch64", "ppc64le", "riscv64", ...).
const MicroarchFeature = "compatkit.microarch"

// MicroarchSource returns a source named "compatkit.microarch" that reports MicroarchFeature for
// the machine whose /proc/cpuinfo is root/proc/cpuinfo, computed with archspec's detection and
// graph (the ones domains/cpu/microarch is generated from); arch as for CPUInfoSource.
func MicroarchSource(root, arch string) Source { return microarchSource{root: root, arch: arch} }

type microarchSource struct{ root, arch string }

func (microarchSource) Name() string { return MicroarchFeature }

func (s microarchSource) Discover(ctx context.Context) (*Features, error) {
	info, err := readCPUInfo(s.root, s.arch)
	if err != nil {
		return nil, err
	}
	t, err := microarch.Detect(info)
	if err != nil {
		return nil, fmt.Errorf("archspec target: %w", err)
	}
	f := nfdv1alpha1.NewFeatures()
	f.Attributes[MicroarchFeature] = nfdv1alpha1.AttributeFeatureSet{Elements: map[string]string{
		"target": t.Name, "family": t.Family()}}
	return f, nil
}
