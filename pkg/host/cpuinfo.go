package host

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/compatkit/compatkit/pkg/cpuinfo"
	"github.com/compatkit/compatkit/internal/fileutil"
)

// maxCPUInfoBytes bounds a /proc/cpuinfo read (a 512-CPU machine prints about 1 MiB).
const maxCPUInfoBytes = 4 << 20

// CPUInfoSource returns a source named "cpu" that reports cpu.cpuid flags and cpu.model attributes
// in NFD's names from root/proc/cpuinfo (pkg/cpuinfo), the way NFD's cpu source reports them from
// the CPU itself. It stands in for NFD's cpu source on builds without it (NFDCPUSource) and reads
// dumps (features --host-root). The architecture is the one the file shows; for root "/" it must
// be this machine's.
func CPUInfoSource(root string) Source { return cpuinfoSource{root: root} }

type cpuinfoSource struct{ root string }

func (cpuinfoSource) Name() string { return "cpu" }

func (s cpuinfoSource) Discover(ctx context.Context) (*Features, error) {
	path := filepath.Join(s.root, "proc", "cpuinfo")
	data, err := fileutil.ReadLimited(path, maxCPUInfoBytes)
	if err != nil {
		return nil, err
	}
	arch := ""
	if s.root == "/" {
		arch = runtime.GOARCH
	}
	info, err := cpuinfo.Parse(data, arch)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return info.Features(), nil
}
