package host

import (
	"context"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
)

// CompatkitSources returns compatkit's own feature sources, for what NFD does not discover.
// Their features live under the "compatkit." prefix:
//
//   - compatkit.platform (attributes os, arch, variant): the Go runtime's GOOS and GOARCH of this
//     host; the variant is containerd's on arm and arm64 and the x86-64 level on amd64 (Platform).
//   - compatkit.libc (attributes name, version, version.major, version.minor): the C library,
//     "glibc" with its version, or "musl"; absent when none is found.
//   - compatkit.nvidia (driver, driver.major, driver.minor, cuda, cuda.major, cuda.minor,
//     compute_cap, compute_cap.major, compute_cap.minor of the least capable GPU, count): from
//     /proc/driver/nvidia/version and nvidia-smi; absent without the NVIDIA driver.
//   - compatkit.runtime: one element per container runtime found in PATH (runc, crun, runsc, kata,
//     youki, nvidia, wasmtime, wasmedge, spin: see RuntimeBinaries), valued with its version.
//   - compatkit.mpi (implementation openmpi, mpich or intel; version, version.major,
//     version.minor): from `mpirun --version`; absent without MPI.
//   - compatkit.microarch (target, family): the CPU's archspec microarchitecture from
//     /proc/cpuinfo (MicroarchSource).
func CompatkitSources() []Source {
	return []Source{platformSource{}, extraSource{}, MicroarchSource("/", "")}
}

// platformSource reports the host platform and C library.
type platformSource struct{ sys System }

func (platformSource) Name() string { return "compatkit" }

func (ps platformSource) Discover(ctx context.Context) (*Features, error) {
	f := nfdv1alpha1.NewFeatures()
	// containerd's detection gives the arm variant (from /proc/cpuinfo); amd64's level is computed
	// from the cpu source's flags once every source has run (Discoverer.Discover).
	p := ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if p.Architecture == "arm" || p.Architecture == "arm64" {
		p.Variant = platforms.DefaultSpec().Variant
	}
	SetPlatform(f, p)
	if name, version := detectLibc(ctx, ps.sys); name != "" {
		el := map[string]string{"name": name}
		versionElements(el, "version", version)
		f.Attributes["compatkit.libc"] = nfdv1alpha1.AttributeFeatureSet{Elements: el}
	}
	return f, nil
}

var glibcVersion = regexp.MustCompile(`(?m)(?:GLIBC|GNU libc)[^0-9\n]*([0-9]+\.[0-9]+)`)

// detectLibc finds the C library: glibc through `getconf GNU_LIBC_VERSION` (or `ldd --version`),
// musl through its loader in /lib.
func detectLibc(ctx context.Context, sys System) (name, version string) {
	if out, err := sys.run(ctx, "getconf", "GNU_LIBC_VERSION"); err == nil {
		// "glibc 2.36"
		if f := strings.Fields(string(out)); len(f) == 2 && f[0] == "glibc" {
			return "glibc", f[1]
		}
	}
	if out, err := sys.run(ctx, "ldd", "--version"); err == nil || len(out) > 0 {
		if m := glibcVersion.FindSubmatch(out); m != nil {
			return "glibc", string(m[1])
		}
		if strings.Contains(string(out), "musl") {
			return "musl", ""
		}
	}
	if matches, _ := filepath.Glob("/lib/ld-musl-*.so.1"); len(matches) > 0 {
		return "musl", ""
	}
	return "", ""
}
