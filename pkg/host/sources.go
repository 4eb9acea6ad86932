package host

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/compatkit/compatkit/internal/fileutil"
	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
)

// commandTimeout bounds every command a compatkit source runs (nvidia-smi, mpirun, runc, ...).
const commandTimeout = 5 * time.Second

// System is how compatkit's own sources look at the host: run a command, read a file. The zero
// value uses the real host (commands from PATH, bounded by commandTimeout; files up to 1 MiB);
// tests set the functions to replay recorded outputs.
type System struct {
	// Run runs name with args and returns its combined output; an error when it is not in PATH,
	// fails or times out.
	Run func(ctx context.Context, name string, args ...string) ([]byte, error)
	// ReadFile reads a (small) file.
	ReadFile func(path string) ([]byte, error)
	// LookPath finds a binary in PATH.
	LookPath func(name string) (string, error)
}

// commandWaitDelay is how long a command's output is waited for once the command exited (or was
// killed): a child that leaves a process holding its stdout open cannot stall discovery.
const commandWaitDelay = time.Second

// maxCommandOutput is the most output kept from a command, in bytes.
const maxCommandOutput = 1 << 20

func (s System) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	if s.Run != nil {
		return s.Run(ctx, name, args...)
	}
	stdout, stderr, err := RunCommand(ctx, commandTimeout, name, args...)
	return append(stdout, stderr...), err
}

// RunCommand runs name (found in PATH) with args and returns its standard output and error, at
// most maxCommandOutput bytes of each: killed after timeout, and waited for at most a second more
// for its output, even when a process it started keeps stdout open (exec.Cmd.WaitDelay).
func RunCommand(ctx context.Context, timeout time.Duration, name string, args ...string) (stdout, stderr []byte, err error) {
	if _, err := exec.LookPath(name); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	out, errOut := &cappedBuffer{max: maxCommandOutput}, &cappedBuffer{max: maxCommandOutput}
	cmd.Stdout, cmd.Stderr = out, errOut
	cmd.WaitDelay = commandWaitDelay
	err = cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("%s: no answer within %v", name, timeout)
	}
	return out.Bytes(), errOut.Bytes(), err
}

// cappedBuffer keeps the first max bytes written to it and drops the rest.
type cappedBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// Bytes returns what was kept.
func (b *cappedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf...)
}

func (s System) readFile(path string) ([]byte, error) {
	if s.ReadFile != nil {
		return s.ReadFile(path)
	}
	return fileutil.ReadLimited(path, 1<<20)
}

func (s System) lookPath(name string) (string, error) {
	if s.LookPath != nil {
		return s.LookPath(name)
	}
	return exec.LookPath(name)
}

// versionElements adds prefix (the whole version), prefix.major and prefix.minor to el, from
// version "M.m[...]".
func versionElements(el map[string]string, prefix, version string) {
	if version == "" {
		return
	}
	dot := prefix + "."
	el[prefix] = version
	parts := strings.SplitN(version, ".", 3)
	if n, err := strconv.Atoi(parts[0]); err == nil {
		el[dot+"major"] = strconv.Itoa(n)
		if len(parts) > 1 {
			if m, err := strconv.Atoi(parts[1]); err == nil {
				el[dot+"minor"] = strconv.Itoa(m)
			}
		}
	}
}

// ---- compatkit.nvidia

// NvidiaInfo is what compatkit.nvidia reports.
type NvidiaInfo struct {
	// Driver is the driver version ("535.104.05").
	Driver string
	// CUDA is the highest CUDA version the driver supports ("12.2"), from nvidia-smi's banner.
	CUDA string
	// ComputeCaps lists each GPU's compute capability ("8.0").
	ComputeCaps []string
}

var (
	reNvidiaProc   = regexp.MustCompile(`Kernel Module(?: for \S+)?\s+([0-9]+\.[0-9]+(?:\.[0-9]+)?)`)
	reNvidiaCUDA   = regexp.MustCompile(`CUDA Version:\s*([0-9]+\.[0-9]+)`)
	reVersionToken = regexp.MustCompile(`[0-9]+\.[0-9]+(?:\.[0-9]+)?`)
	reVersionOnly  = regexp.MustCompile(`^[0-9]+\.[0-9]+(?:\.[0-9]+)?$`)
)

// ParseNvidiaProcVersion returns the driver version in /proc/driver/nvidia/version's content
// ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  ..."), or "".
func ParseNvidiaProcVersion(data string) string {
	if m := reNvidiaProc.FindStringSubmatch(data); m != nil {
		return m[1]
	}
	return ""
}

// ParseNvidiaSMIQuery parses the output of `nvidia-smi
// --query-gpu=driver_version,compute_cap --format=csv,noheader`: one "driver, cap" line per GPU.
func ParseNvidiaSMIQuery(out string) (driver string, caps []string) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, ",")
		if len(f) != 2 {
			continue
		}
		d, c := strings.TrimSpace(f[0]), strings.TrimSpace(f[1])
		// Each field is a version and nothing else ("[N/A]", "ERR!" and garbage are not).
		if !reVersionOnly.MatchString(d) || !reVersionOnly.MatchString(c) {
			continue
		}
		driver = d
		caps = append(caps, c)
	}
	return driver, caps
}

// ParseNvidiaSMIBanner returns the "CUDA Version: 12.2" of nvidia-smi's default output, or "".
func ParseNvidiaSMIBanner(out string) string {
	if m := reNvidiaCUDA.FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}

// Elements returns compatkit.nvidia's elements: driver, driver.major, driver.minor, cuda,
// cuda.major, cuda.minor, compute_cap (of the least capable GPU), compute_cap.major,
// compute_cap.minor, count.
func (n NvidiaInfo) Elements() map[string]string {
	el := map[string]string{}
	versionElements(el, "driver", n.Driver)
	versionElements(el, "cuda", n.CUDA)
	lowest := ""
	for _, c := range n.ComputeCaps {
		if lowest == "" || lessVersion(c, lowest) {
			lowest = c
		}
	}
	versionElements(el, "compute_cap", lowest)
	if len(n.ComputeCaps) > 0 {
		el["count"] = strconv.Itoa(len(n.ComputeCaps))
	}
	return el
}

// lessVersion compares "M.m[.p]" numerically.
func lessVersion(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, _ := strconv.Atoi(as[i])
		y, _ := strconv.Atoi(bs[i])
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}

// DetectNvidia reads /proc/driver/nvidia/version and runs nvidia-smi when present; ok is false on a
// host without the NVIDIA driver.
func DetectNvidia(ctx context.Context, sys System) (info NvidiaInfo, ok bool) {
	if b, err := sys.readFile("/proc/driver/nvidia/version"); err == nil {
		info.Driver = ParseNvidiaProcVersion(string(b))
	}
	if out, err := sys.run(ctx, "nvidia-smi", "--query-gpu=driver_version,compute_cap", "--format=csv,noheader"); err == nil {
		d, caps := ParseNvidiaSMIQuery(string(out))
		if info.Driver == "" {
			info.Driver = d
		}
		info.ComputeCaps = caps
		if out, err := sys.run(ctx, "nvidia-smi"); err == nil {
			info.CUDA = ParseNvidiaSMIBanner(string(out))
		}
	}
	return info, info.Driver != ""
}

// ---- compatkit.runtime

// RuntimeBinaries maps the element names of compatkit.runtime to the binaries looked up in PATH.
var RuntimeBinaries = []struct{ Name, Binary string }{
	{"runc", "runc"},
	{"crun", "crun"},
	{"runsc", "runsc"},
	{"kata", "kata-runtime"},
	{"youki", "youki"},
	{"nvidia", "nvidia-container-runtime"},
	{"wasmtime", "containerd-shim-wasmtime-v1"},
	{"wasmedge", "containerd-shim-wasmedge-v1"},
	{"spin", "containerd-shim-spin-v2"},
}

// ParseVersionOutput returns the first "M.m[.p]" in a --version output ("runc version 1.1.12",
// "crun version 1.14.4", "containerd-shim-wasmtime-v1:\n  Version: v0.5.0"), or "unknown".
func ParseVersionOutput(out string) string {
	if m := reVersionToken.FindString(out); m != "" {
		return m
	}
	return "unknown"
}

// DetectRuntimes returns compatkit.runtime's elements: one per runtime binary found in PATH, with
// its version.
func DetectRuntimes(ctx context.Context, sys System) map[string]string {
	el := map[string]string{}
	for _, r := range RuntimeBinaries {
		if _, err := sys.lookPath(r.Binary); err != nil {
			continue
		}
		flag := "--version"
		if strings.HasPrefix(r.Binary, "containerd-shim-") {
			flag = "-v"
		}
		out, _ := sys.run(ctx, r.Binary, flag)
		el[r.Name] = ParseVersionOutput(string(out))
	}
	return el
}

// ---- compatkit.mpi

var (
	reOpenMPI = regexp.MustCompile(`\(Open MPI\)\s+([0-9]+\.[0-9]+(?:\.[0-9]+)?)`)
	reIntel   = regexp.MustCompile(`Intel\(R\) MPI Library[^\n]*Version\s+([0-9]+(?:\.[0-9]+)*)`)
	reMPICH   = regexp.MustCompile(`(?s)HYDRA build details:.*?Version:\s+([0-9]+\.[0-9]+(?:\.[0-9]+)?)`)
)

// ParseMPIVersion reads `mpirun --version`: Open MPI ("mpirun (Open MPI) 4.1.5"), Intel MPI
// ("Intel(R) MPI Library for Linux* OS, Version 2021.10 Build ..."), MPICH (Hydra's "Version:").
// implementation is "openmpi", "intel" or "mpich"; "" when not recognised.
func ParseMPIVersion(out string) (implementation, version string) {
	if m := reOpenMPI.FindStringSubmatch(out); m != nil {
		return "openmpi", m[1]
	}
	if m := reIntel.FindStringSubmatch(out); m != nil {
		return "intel", m[1]
	}
	if m := reMPICH.FindStringSubmatch(out); m != nil {
		return "mpich", m[1]
	}
	return "", ""
}

// ---- the source

// extraSource reports compatkit.nvidia, compatkit.runtime and compatkit.mpi; each is absent when
// nothing is found.
type extraSource struct{ sys System }

func (extraSource) Name() string { return "compatkit.extra" }

func (e extraSource) Discover(ctx context.Context) (*Features, error) {
	f := nfdv1alpha1.NewFeatures()
	if info, ok := DetectNvidia(ctx, e.sys); ok {
		f.Attributes["compatkit.nvidia"] = nfdv1alpha1.AttributeFeatureSet{Elements: info.Elements()}
	}
	if el := DetectRuntimes(ctx, e.sys); len(el) > 0 {
		f.Attributes["compatkit.runtime"] = nfdv1alpha1.AttributeFeatureSet{Elements: el}
	}
	if out, err := e.sys.run(ctx, "mpirun", "--version"); err == nil || len(out) > 0 {
		if impl, v := ParseMPIVersion(string(out)); impl != "" {
			el := map[string]string{"implementation": impl}
			versionElements(el, "version", v)
			f.Attributes["compatkit.mpi"] = nfdv1alpha1.AttributeFeatureSet{Elements: el}
		}
	}
	return f, nil
}
