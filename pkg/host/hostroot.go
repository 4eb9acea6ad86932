package host

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/platforms"
	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
	"sigs.k8s.io/node-feature-discovery/pkg/utils/hostpath"
	"sigs.k8s.io/node-feature-discovery/source"

	"github.com/compatkit/compatkit/internal/fileutil"
)

// UnknownFeature is the attribute feature set that lists what the features of a dump or mounted
// root (HostRoot) could not tell: one element per feature set name ("kernel.config",
// "compatkit.runtime", ...), valued with the reason. A rule over such a feature set that fails
// is "unknown on this host", not "not present" (pkg/match explains it so). Live discovery never
// sets it.
const UnknownFeature = "compatkit.unknown"

// HostRootOptions configures HostRoot.
type HostRootOptions struct {
	// Platform is "os/arch[/variant]" (containerd's syntax, e.g. "linux/arm64"): required when the
	// root has no proc/cpuinfo; otherwise it must agree with it (linux, the same architecture, an
	// amd64 variant no higher than the cpuid flags' x86-64 level, which it may lower). Empty: from
	// proc/cpuinfo.
	Platform string
}

// Layout names of FindHostRoot.
const (
	LayoutRoot       = "root"        // a root file system (a mount, a container image's rootfs)
	LayoutSOSReport  = "sosreport"   // an extracted sosreport (sos_commands/ next to proc/, etc/)
	LayoutMustGather = "must-gather" // one node's directory of an OpenShift must-gather (nodes/NODE)
)

// FindHostRoot finds the root of the machine whose files are under dir: dir itself when it has
// proc/, etc/, sys/ or sos_commands/ (a mounted root, a sosreport's top directory); the only
// subdirectory of dir that has sos_commands/ (an extracted sosreport-HOST-DATE tarball); in an
// OpenShift must-gather, its nodes/NODE directory when there is one node (dir/nodes or
// dir/IMAGE/nodes). It errors when dir is not a directory, or when it holds several nodes or
// sosreports (their names are listed: give one of them).
func FindHostRoot(dir string) (root, layout string, err error) {
	st, err := os.Stat(dir)
	if err != nil {
		return "", "", fmt.Errorf("--host-root %s: %w", dir, err)
	}
	if !st.IsDir() {
		return "", "", fmt.Errorf("--host-root %s: not a directory (extract a sosreport or must-gather archive first)", dir)
	}
	if isDir(filepath.Join(dir, "sos_commands")) {
		return dir, LayoutSOSReport, nil
	}
	for _, d := range []string{"proc", "etc", "sys"} {
		if isDir(filepath.Join(dir, d)) {
			return dir, LayoutRoot, nil
		}
	}
	if sos, _ := filepath.Glob(filepath.Join(dir, "*", "sos_commands")); len(sos) == 1 {
		return filepath.Dir(sos[0]), LayoutSOSReport, nil
	} else if len(sos) > 1 {
		return "", "", fmt.Errorf("--host-root %s holds %d sosreports (%s): give one of them", dir, len(sos), dirNames(sos))
	}
	nodes, _ := filepath.Glob(filepath.Join(dir, "nodes", "*"))
	more, _ := filepath.Glob(filepath.Join(dir, "*", "nodes", "*"))
	var nodeDirs []string
	for _, n := range append(nodes, more...) {
		if isDir(n) {
			nodeDirs = append(nodeDirs, n)
		}
	}
	switch {
	case len(nodeDirs) == 1:
		return nodeDirs[0], LayoutMustGather, nil
	case len(nodeDirs) > 1:
		names := make([]string, len(nodeDirs))
		for i, n := range nodeDirs {
			names[i] = filepath.Base(n)
		}
		return "", "", fmt.Errorf("--host-root %s is a must-gather of %d nodes (%s): give one node's directory, e.g. %s", dir, len(nodeDirs), strings.Join(names, ", "), nodeDirs[0])
	}
	if isFile(filepath.Join(dir, "cpuinfo")) || isFile(filepath.Join(dir, "uname")) {
		return dir, LayoutMustGather, nil
	}
	return "", "", fmt.Errorf("--host-root %s: no proc/, etc/, sys/ or sos_commands/ in it, nor a sosreport or must-gather node directory below it: give the directory that holds proc/cpuinfo", dir)
}

func dirNames(paths []string) string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(filepath.Dir(p))
	}
	return strings.Join(out, ", ")
}

func isDir(p string) bool  { st, err := os.Stat(p); return err == nil && st.IsDir() }
func isFile(p string) bool { st, err := os.Stat(p); return err == nil && st.Mode().IsRegular() }

// HostRoot returns a Discoverer of the features of the machine whose root file system or support
// dump (sosreport, must-gather node directory: FindHostRoot) is at dir, read from its files only:
// no command is run and nothing of the machine running compatkit is asked.
//
// Every file compatkit reads itself is resolved inside the root (os.Root): a symbolic link out of
// it, absolute ones included, is not followed, and a FIFO or device is an error, not a hang.
//
//   - NFD's memory, network, pci, storage and usb sources run with NFD's host paths
//     (hostpath.SysfsDir, ProcDir, EtcDir, UsrDir, VarDir, LibDir, BootDir) pointed under the
//     root, and restored afterwards, each for at most NFDSourceTimeout.
//   - cpu.cpuid and cpu.model come from proc/cpuinfo (a must-gather node's cpuinfo), with the
//     flags it cannot tell listed one by one; compatkit.microarch from the same file; NFD's cpu
//     source, which asks the CPU running compatkit, does not run.
//   - system.osrelease from etc/os-release, else usr/lib/os-release; system.dmiid from
//     sys/devices/virtual/dmi/id; system.name from the root's host name (NFD's system source
//     would name this machine).
//   - kernel.version from proc/sys/kernel/osrelease, else a `uname -a` or `uname -r` output
//     (sos_commands/kernel/uname_-a, uname, uname_-a, uname_-r), else proc/version; split with
//     ParseKernelRelease. kernel.loadedmodule from proc/modules (else sosreport's lsmod),
//     kernel.enabledmodule adds lib/modules/RELEASE/modules.builtin, kernel.config from
//     proc/config.gz, boot/config-RELEASE or lib/modules/RELEASE/config; kernel.selinux and
//     kernel.kvm from sys/ when the root has it.
//   - compatkit.platform from proc/cpuinfo's architecture, or opts.Platform (see
//     HostRootOptions); on amd64 the variant is the x86-64 level of the cpuid flags.
//     compatkit.libc from the root's files (a musl loader; glibc's libc-VERSION.so, a sosreport's
//     installed-rpms or dpkg -l; else "glibc" without version when libc.so.6 exists).
//     compatkit.nvidia's driver from proc/driver/nvidia/version.
//
// What the root cannot tell is listed in UnknownFeature and reported as a Warning.
func HostRoot(dir string, opts HostRootOptions) (*Discoverer, error) {
	root, layout, err := FindHostRoot(dir)
	if err != nil {
		return nil, err
	}
	r := &rootState{root: root, layout: layout}
	if opts.Platform != "" {
		p, err := platforms.Parse(opts.Platform)
		if err != nil {
			return nil, fmt.Errorf("--platform %q: %w (want os/arch[/variant], e.g. linux/amd64)", opts.Platform, err)
		}
		r.os, r.arch, r.variant = p.OS, p.Architecture, p.Variant
	}
	if cpuinfoRel(root) != "" {
		// A dump's CPU is what it is read for: a cpuinfo that cannot be read or parsed (or that
		// contradicts --platform) is an error, not an unknown.
		info, err := readCPUInfo(root, r.arch)
		if err != nil {
			return nil, fmt.Errorf("--host-root %s: %w", dir, err)
		}
		r.cpuinfo = true
		if r.arch == "" {
			r.os, r.arch = "linux", info.Arch
		}
		if r.os != "linux" {
			return nil, fmt.Errorf("--platform %s: the dump's /proc/cpuinfo is a Linux machine's", opts.Platform)
		}
		if r.arch == "amd64" && r.variant != "" {
			// The level is what the cpuid flags show; --platform may lower it, never raise it.
			have := X86Level(info.Features())
			if n, err := strconv.Atoi(strings.TrimPrefix(r.variant, "v")); err != nil || n < 1 || n > 4 {
				return nil, fmt.Errorf("--platform %s: an amd64 variant is an x86-64 level, v1 to v4", opts.Platform)
			} else if n > have {
				return nil, fmt.Errorf("--platform %s: the dump's cpuid flags give x86-64-v%d, not %s (compatkit never claims a level the flags do not show)", opts.Platform, have, r.variant)
			}
		}
	} else if r.arch == "amd64" && r.variant != "" && r.variant != "v1" {
		return nil, fmt.Errorf("--platform %s: without the machine's proc/cpuinfo the dump shows no cpuid flags, so its x86-64 level is v1 (compatkit never claims a level the flags do not show): add proc/cpuinfo, or give linux/amd64", opts.Platform)
	}
	if r.arch == "" {
		return nil, fmt.Errorf("--host-root %s: no proc/cpuinfo (or a must-gather node's cpuinfo) to tell the architecture: give --platform os/arch (e.g. linux/amd64)", root)
	}
	var sources []Source
	if r.cpuinfo {
		sources = append(sources, rootCPU{r: r}, rootMicroarch{r: r, inner: MicroarchSource(root, r.arch)})
	} else {
		r.unknown("cpu", "cpu.cpuid", "no proc/cpuinfo")
		r.unknown("cpu", "cpu.model", "no proc/cpuinfo")
		r.unknown("cpu", MicroarchFeature, "no proc/cpuinfo")
	}
	sources = append(sources, rootKernel{r}, rootSystem{r})
	for _, s := range source.GetAllFeatureSources() {
		switch s.Name() {
		case "memory", "network", "pci", "storage", "usb":
			sources = append(sources, rootNFD{r: r, src: s})
		}
	}
	sort.SliceStable(sources, func(i, j int) bool { return sources[i].Name() < sources[j].Name() })
	sources = append(sources, rootCompatkit{r}, rootUnknown{r})
	return New(sources...), nil
}

// rootState is what the sources of one HostRoot discovery share.
type rootState struct {
	root, layout          string
	os, arch, variant     string
	cpuinfo               bool
	mu                    sync.Mutex
	unknowns              map[string]string
	kernelRelease         string // raw release, once rootKernel ran
	loadedModulesLoaded   bool
	loadedModulesNoNvidia bool
	nfdStuck              atomic.Bool // an NFD source timed out and still holds nfdMu
}

// unknown records that set could not be told; source and why go in the warning.
func (r *rootState) unknown(src, set, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unknowns == nil {
		r.unknowns = map[string]string{}
	}
	r.unknowns[set] = why
}

func (r *rootState) path(elem ...string) string {
	return filepath.Join(append([]string{r.root}, elem...)...)
}

// read reads the regular file rel of the root, resolved inside it (fileutil.ReadInRoot: a link
// out of the root, a FIFO or a device is an error, never a read of this machine or a hang).
func (r *rootState) read(rel string, limit int64) ([]byte, error) {
	fs, err := os.OpenRoot(r.root)
	if err != nil {
		return nil, err
	}
	defer fs.Close()
	return fileutil.ReadInRoot(fs, rel, limit)
}

// glob returns the names (relative to the root) that pattern matches inside the root, directories
// and links resolved inside it (os.Root.FS).
func (r *rootState) glob(pattern string) []string {
	fsys, err := os.OpenRoot(r.root)
	if err != nil {
		return nil
	}
	defer fsys.Close()
	m, _ := fs.Glob(fsys.FS(), pattern)
	return m
}

// readFirst returns the content and path of the first of rels under the root that can be read.
func (r *rootState) readFirst(rels ...string) ([]byte, string) {
	for _, rel := range rels {
		if data, err := r.read(rel, 16<<20); err == nil {
			return data, rel
		}
	}
	return nil, ""
}

// rootUnknown runs last: it reports UnknownFeature and a warning per unknown feature set.
type rootUnknown struct{ r *rootState }

func (rootUnknown) Name() string { return UnknownFeature }

func (u rootUnknown) Discover(context.Context) (*Features, error) {
	f := nfdv1alpha1.NewFeatures()
	u.r.mu.Lock()
	el := maps.Clone(u.r.unknowns)
	u.r.mu.Unlock()
	if len(el) > 0 {
		f.Attributes[UnknownFeature] = nfdv1alpha1.AttributeFeatureSet{Elements: el}
	}
	return f, nil
}

// UnknownWarnings returns the Warnings f's UnknownFeature implies: one per source and reason,
// Source the source (the feature set's first name part: "kernel" for kernel.config), Err
// "SET[, SET...] unknown: REASON", sorted.
func UnknownWarnings(f *Features) []Warning {
	if f == nil {
		return nil
	}
	type key struct{ src, why string }
	sets := map[key][]string{}
	for set, why := range f.Attributes[UnknownFeature].Elements {
		src, _, _ := strings.Cut(set, ".")
		k := key{src, why}
		sets[k] = append(sets[k], set)
	}
	out := make([]Warning, 0, len(sets))
	for k, names := range sets {
		sort.Strings(names)
		list := strings.Join(names, ", ")
		if len(names) > 6 {
			// Many elements of one set (hidden cpuid flags): name the set and count them; the
			// profile's compatkit.unknown lists each.
			list = fmt.Sprintf("%s, %s, ... (%d elements; compatkit.unknown lists them)", names[0], names[1], len(names))
		}
		out = append(out, Warning{Source: k.src, Err: list + " unknown: " + k.why})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Source != out[j].Source {
			return out[i].Source < out[j].Source
		}
		return out[i].Err < out[j].Err
	})
	return out
}

// rootMicroarch is MicroarchSource of the root; a CPU archspec cannot place is an unknown.
type rootMicroarch struct {
	r     *rootState
	inner Source
}

func (m rootMicroarch) Name() string { return m.inner.Name() }

func (m rootMicroarch) Discover(ctx context.Context) (*Features, error) {
	f, err := m.inner.Discover(ctx)
	if err != nil {
		m.r.unknown("cpu", MicroarchFeature, err.Error())
		return nfdv1alpha1.NewFeatures(), nil
	}
	return f, nil
}

// rootCPU is CPUInfoSource of the root; it records what proc/cpuinfo cannot tell.
type rootCPU struct {
	r *rootState
}

func (rootCPU) Name() string { return "cpu" }

func (c rootCPU) Discover(ctx context.Context) (*Features, error) {
	for _, set := range []string{"cpu.cstate", "cpu.pstate", "cpu.rdt", "cpu.security", "cpu.sst", "cpu.topology", "cpu.coprocessor"} {
		c.r.unknown("cpu", set, "not in proc/cpuinfo (NFD's cpu source asks the running CPU and its sysfs)")
	}
	info, err := readCPUInfo(c.r.root, c.r.arch)
	if err != nil {
		// Listed as unknown, which the caller reports as a warning.
		c.r.unknown("cpu", "cpu.cpuid", err.Error())
		c.r.unknown("cpu", "cpu.model", err.Error())
		return nfdv1alpha1.NewFeatures(), nil
	}
	// Flags the dump cannot tell: a rule on one says "unknown on this host", not "not present".
	for flag, why := range info.UnknownFlags() {
		c.r.unknown("cpu", "cpu.cpuid."+flag, why)
	}
	return info.Features(), nil
}

// hostpathVars are NFD's host path prefixes HostRoot redirects.
var hostpathVars = []struct {
	v   *hostpath.HostDir
	dir string
}{
	{&hostpath.BootDir, "boot"}, {&hostpath.EtcDir, "etc"}, {&hostpath.SysfsDir, "sys"},
	{&hostpath.UsrDir, "usr"}, {&hostpath.VarDir, "var"}, {&hostpath.LibDir, "lib"},
	{&hostpath.ProcDir, "proc"},
}

// underRoot runs fn with NFD's host paths under root, holding nfdMu; it restores them and turns
// a panic into an error.
func underRoot(root string, fn func() error) (err error) {
	nfdMu.Lock()
	defer nfdMu.Unlock()
	saved := make([]hostpath.HostDir, len(hostpathVars))
	for i, h := range hostpathVars {
		saved[i] = *h.v
		*h.v = hostpath.HostDir(filepath.Join(root, h.dir))
	}
	defer func() {
		for i, h := range hostpathVars {
			*h.v = saved[i]
		}
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in NFD source: %v", p)
		}
	}()
	return fn()
}

// rootNFD runs one of NFD's sources that read through its host paths, under the root.
type rootNFD struct {
	r   *rootState
	src source.FeatureSource
}

func (n rootNFD) Name() string { return n.src.Name() }

// nfdExpected lists, per NFD source, the feature sets it reports and the directory under the root
// it reads them from: NFD logs a missing one instead of failing.
var nfdExpected = map[string][]struct{ set, rel string }{
	"memory":  {{"memory.numa", "sys/bus/node/devices"}, {"memory.nv", "sys/bus/nd/devices"}, {"memory.swap", "proc/swaps"}, {"memory.hugepages", "sys/kernel/mm/hugepages"}},
	"network": {{"network.device", "sys/class/net"}, {"network.virtual", "sys/class/net"}},
	"pci":     {{"pci.device", "sys/bus/pci/devices"}},
	"storage": {{"storage.block", "sys/block"}},
	"usb":     {{"usb.device", "sys/bus/usb/devices"}},
}

// discover runs the source under the root and sends its features or error.
func (n rootNFD) discover(done chan<- nfdResult) {
	var f *Features
	err := underRoot(n.r.root, func() error {
		if err := n.src.Discover(); err != nil {
			return err
		}
		f = prefixed(n.src.Name(), n.src.GetFeatures())
		return nil
	})
	done <- nfdResult{f, err}
}

type nfdResult struct {
	f   *Features
	err error
}

// NFDSourceTimeout bounds one of NFD's sources reading a root (HostRoot): a FIFO or a hung
// network file system under the root would otherwise block it, and compatkit, for ever. A source
// that times out keeps NFD's lock: the process's later NFD discoveries wait for it.
var NFDSourceTimeout = 20 * time.Second

func (n rootNFD) Discover(ctx context.Context) (*Features, error) {
	done := make(chan nfdResult, 1)
	var res nfdResult
	if n.r.nfdStuck.Load() {
		res.err = fmt.Errorf("not read: an earlier NFD source did not finish reading %s", n.r.root)
		done <- res
	} else {
		go n.discover(done)
	}
	timer := time.NewTimer(NFDSourceTimeout)
	defer timer.Stop()
	select {
	case res = <-done:
	case <-timer.C:
		// The source still holds NFD's lock and host paths: no other NFD source may run.
		n.r.nfdStuck.Store(true)
		res.err = fmt.Errorf("NFD's %s source did not finish reading the root in %s: a FIFO, device or hung file system under it?", n.src.Name(), NFDSourceTimeout)
	case <-ctx.Done():
		n.r.nfdStuck.Store(true)
		return nil, ctx.Err()
	}
	f, err := res.f, res.err
	if err != nil {
		// Listed as unknown, which the caller reports as a warning.
		f = nfdv1alpha1.NewFeatures()
		for _, e := range nfdExpected[n.src.Name()] {
			n.r.unknown(n.src.Name(), e.set, err.Error())
		}
		if len(nfdExpected[n.src.Name()]) == 0 {
			return nil, err
		}
		return f, nil
	}
	for _, e := range nfdExpected[n.src.Name()] {
		if _, err := os.Stat(n.r.path(e.rel)); err != nil {
			delete(f.Attributes, e.set)
			delete(f.Flags, e.set)
			delete(f.Instances, e.set)
			n.r.unknown(n.src.Name(), e.set, "no "+e.rel+" in the root")
		}
	}
	return f, nil
}

// rootSystem reports NFD's system.osrelease, system.dmiid and system.name from the root's files,
// as NFD's system source names them; NFD's own would follow links out of the root (an absolute
// /etc/os-release link reads this machine's) and name the node after this machine.
type rootSystem struct{ r *rootState }

func (rootSystem) Name() string { return "system" }

// dmiIDAttributes are the DMI attributes NFD v0.19's system source reads.
var dmiIDAttributes = []string{"bios_date", "bios_vendor", "bios_version", "board_asset_tag", "board_name",
	"board_vendor", "board_version", "chassis_asset_tag", "chassis_type", "chassis_vendor", "chassis_version",
	"product_family", "product_name", "product_sku", "product_version", "sys_vendor"}

func (s rootSystem) Discover(context.Context) (*Features, error) {
	r := s.r
	f := nfdv1alpha1.NewFeatures()
	if data, _ := r.readFirst("etc/os-release", "usr/lib/os-release"); data != nil {
		f.Attributes["system.osrelease"] = nfdv1alpha1.AttributeFeatureSet{Elements: parseOSRelease(data)}
	} else {
		r.unknown("system", "system.osrelease", "no etc/os-release or usr/lib/os-release file in the root (links out of the root are not followed)")
	}
	dmi := map[string]string{}
	for _, name := range dmiIDAttributes {
		if data, err := r.read("sys/devices/virtual/dmi/id/"+name, 64<<10); err == nil {
			dmi[name] = strings.TrimSpace(string(data))
		}
	}
	if len(dmi) > 0 {
		f.Attributes["system.dmiid"] = nfdv1alpha1.AttributeFeatureSet{Elements: dmi}
	} else {
		r.unknown("system", "system.dmiid", "no sys/devices/virtual/dmi/id in the root")
	}
	if name := r.hostname(); name != "" {
		f.Attributes["system.name"] = nfdv1alpha1.AttributeFeatureSet{Elements: map[string]string{"nodename": name}}
	} else {
		r.unknown("system", "system.name", "no etc/hostname, hostname or proc/sys/kernel/hostname in the root")
	}
	return f, nil
}

// hostname returns the root's host name: etc/hostname, a sosreport's hostname file,
// proc/sys/kernel/hostname, or a must-gather node directory's name.
func (r *rootState) hostname() string {
	if data, _ := r.readFirst("etc/hostname", "hostname", "sos_commands/general/hostname", "sos_commands/host/hostname", "proc/sys/kernel/hostname"); data != nil {
		if f := strings.Fields(string(data)); len(f) > 0 {
			return f[0]
		}
	}
	if r.layout == LayoutMustGather {
		return filepath.Base(r.root)
	}
	return ""
}

var osReleaseLine = regexp.MustCompile(`^(\w+)=(.+)`)

// parseOSRelease parses an os-release file as NFD's system source does (ID, VERSION_ID,
// VERSION_ID.major, VERSION_ID.minor and every other KEY=value, quotes trimmed).
func parseOSRelease(data []byte) map[string]string {
	el := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if m := osReleaseLine.FindStringSubmatch(line); m != nil {
			el[m[1]] = strings.Trim(m[2], `"'`)
		}
	}
	if m := regexp.MustCompile(`^(\d+)(\.(\d+))?(\..*)?$`).FindStringSubmatch(el["VERSION_ID"]); m != nil {
		el["VERSION_ID.major"] = m[1]
		if m[3] != "" {
			el["VERSION_ID.minor"] = m[3]
		}
	}
	return el
}

// rootKernel reports kernel.* from the root's files (NFD's kernel source reads this machine's
// /proc directly).
type rootKernel struct{ r *rootState }

func (rootKernel) Name() string { return "kernel" }

// kernelReleaseFiles are where a root or dump keeps the kernel release, in order.
var kernelReleaseFiles = []string{
	"proc/sys/kernel/osrelease",
	"sos_commands/kernel/uname_-a", "sos_commands/general/uname_-a", "uname", "uname_-a", "uname_-r", "uname-a", "uname.txt",
	"proc/version",
}

func (k rootKernel) Discover(context.Context) (*Features, error) {
	r := k.r
	f := nfdv1alpha1.NewFeatures()
	release := ""
	for _, rel := range kernelReleaseFiles {
		data, err := r.read(rel, 64<<10)
		if err != nil {
			continue
		}
		if rel == "proc/sys/kernel/osrelease" {
			release = strings.TrimSpace(string(data))
		} else {
			release = KernelReleaseFromUname(string(data))
		}
		if release != "" {
			break
		}
	}
	if release == "" {
		for _, set := range []string{"kernel.version", "kernel.config", "kernel.enabledmodule"} {
			r.unknown("kernel", set, "no kernel release in proc/sys/kernel/osrelease, a uname -a output or proc/version")
		}
	} else if kv, err := ParseKernelRelease(release); err == nil {
		f.Attributes["kernel.version"] = nfdv1alpha1.AttributeFeatureSet{Elements: kv.Elements()}
	} else {
		f.Attributes["kernel.version"] = nfdv1alpha1.AttributeFeatureSet{Elements: map[string]string{"full": kernelFull(release)}}
	}
	r.kernelRelease = release

	var loaded []string
	if data, _ := r.readFirst("proc/modules"); data != nil {
		loaded = firstFields(data, false)
	} else if data, _ := r.readFirst("lsmod", "sos_commands/kernel/lsmod"); data != nil {
		loaded = firstFields(data, true)
	}
	if loaded != nil {
		f.Flags["kernel.loadedmodule"] = nfdv1alpha1.NewFlagFeatures(loaded...)
		r.loadedModulesLoaded = true
		r.loadedModulesNoNvidia = true
		for _, m := range loaded {
			if m == "nvidia" {
				r.loadedModulesNoNvidia = false
			}
		}
	} else {
		r.unknown("kernel", "kernel.loadedmodule", "no proc/modules or lsmod output")
	}
	if release != "" {
		data, _ := r.readFirst("lib/modules/"+release+"/modules.builtin", "usr/lib/modules/"+release+"/modules.builtin")
		if data != nil && loaded != nil {
			var builtin []string
			for _, l := range strings.Split(string(data), "\n") {
				if l = strings.TrimSpace(l); strings.HasSuffix(l, ".ko") {
					builtin = append(builtin, strings.TrimSuffix(filepath.Base(l), ".ko"))
				}
			}
			f.Flags["kernel.enabledmodule"] = nfdv1alpha1.NewFlagFeatures(append(loaded, builtin...)...)
		} else {
			r.unknown("kernel", "kernel.enabledmodule", "no lib/modules/"+release+"/modules.builtin (or no loaded modules) in the root")
		}
		if el, ok := r.kconfig(release); ok {
			f.Attributes["kernel.config"] = nfdv1alpha1.AttributeFeatureSet{Elements: el}
		} else {
			r.unknown("kernel", "kernel.config", "no proc/config.gz, boot/config-"+release+" or lib/modules/"+release+"/config in the root")
		}
	}
	if isDir(r.path("sys")) {
		// As NFD's kernel source (selinux.go, kvm.go) decides them, read inside the root.
		if isDir(r.path("sys/fs")) {
			enforce, err := r.read("sys/fs/selinux/enforce", 4096)
			on := err == nil && len(enforce) > 0 && enforce[0] == '1'
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				f.Attributes["kernel.selinux"] = nfdv1alpha1.AttributeFeatureSet{Elements: map[string]string{"enabled": fmt.Sprint(on)}}
			}
		}
		if isDir(r.path("sys/devices")) {
			_, err := os.Stat(r.path("sys/devices/virtual/misc/kvm"))
			f.Attributes["kernel.kvm"] = nfdv1alpha1.AttributeFeatureSet{Elements: map[string]string{"enabled": fmt.Sprint(err == nil)}}
		}
	}
	for _, set := range []string{"kernel.selinux", "kernel.kvm"} {
		if _, ok := f.Attributes[set]; !ok {
			r.unknown("kernel", set, "no sys/fs or sys/devices in the root")
		}
	}
	return f, nil
}

// firstFields returns the first word of each non-empty line (skipping lsmod's header).
func firstFields(data []byte, header bool) []string {
	out := []string{}
	for i, l := range strings.Split(string(data), "\n") {
		fs := strings.Fields(l)
		if len(fs) == 0 || (header && i == 0 && fs[0] == "Module") {
			continue
		}
		out = append(out, fs[0])
	}
	return out
}

// kconfig reads the kernel configuration as NFD's kernel source does (CONFIG_ prefix dropped,
// quotes trimmed).
func (r *rootState) kconfig(release string) (map[string]string, bool) {
	var raw []byte
	if gz, err := r.read("proc/config.gz", 4<<20); err == nil {
		if zr, err := gzip.NewReader(bytes.NewReader(gz)); err == nil {
			raw, _ = io.ReadAll(io.LimitReader(zr, 16<<20))
		}
	}
	if raw == nil {
		raw, _ = r.readFirst("boot/config-"+release, "lib/modules/"+release+"/config", "usr/lib/modules/"+release+"/config", "usr/lib/ostree-boot/config-"+release)
	}
	if raw == nil {
		return nil, false
	}
	el := map[string]string{}
	for _, l := range strings.Split(string(raw), "\n") {
		if name, value, ok := strings.Cut(l, "="); ok && strings.HasPrefix(name, "CONFIG_") {
			el[name[len("CONFIG_"):]] = strings.Trim(value, `"`)
		}
	}
	return el, true
}

// rootCompatkit reports compatkit.platform, compatkit.libc and compatkit.nvidia from the root's
// files; compatkit.runtime and compatkit.mpi, which need commands, are unknown.
type rootCompatkit struct{ r *rootState }

func (rootCompatkit) Name() string { return "compatkit" }

var (
	reGlibcFile = regexp.MustCompile(`libc-([0-9]+\.[0-9]+)\.so$`)
	reGlibcRPM  = regexp.MustCompile(`(?m)^glibc-([0-9]+\.[0-9]+)-`)
	reGlibcDeb  = regexp.MustCompile(`(?m)^ii\s+libc6(?::\S+)?\s+([0-9]+\.[0-9]+)`)
)

func (c rootCompatkit) Discover(context.Context) (*Features, error) {
	r := c.r
	f := nfdv1alpha1.NewFeatures()
	el := map[string]string{"os": r.os, "arch": r.arch}
	if r.variant != "" {
		el["variant"] = r.variant
	}
	f.Attributes[PlatformFeature] = nfdv1alpha1.AttributeFeatureSet{Elements: el}

	if name, version := r.libc(); name != "" {
		lel := map[string]string{"name": name}
		versionElements(lel, "version", version)
		f.Attributes["compatkit.libc"] = nfdv1alpha1.AttributeFeatureSet{Elements: lel}
		if version == "" {
			r.unknown("compatkit", "compatkit.libc", "the "+name+" version is not in the root's files")
		}
	} else {
		r.unknown("compatkit", "compatkit.libc", "no C library (lib*/libc.so.6, a musl loader) or package list in the root")
	}

	if data, _ := r.readFirst("proc/driver/nvidia/version"); data != nil {
		if d := ParseNvidiaProcVersion(string(data)); d != "" {
			f.Attributes["compatkit.nvidia"] = nfdv1alpha1.AttributeFeatureSet{Elements: NvidiaInfo{Driver: d}.Elements()}
			r.unknown("compatkit", "compatkit.nvidia", "the CUDA version and compute capability need nvidia-smi, which is not run on a dump")
		}
	} else if !r.loadedModulesNoNvidia {
		r.unknown("compatkit", "compatkit.nvidia", "no proc/driver/nvidia/version, and no module list without nvidia")
	}
	r.unknown("compatkit", "compatkit.runtime", "container runtimes are found by running them, which is not done on a dump")
	r.unknown("compatkit", "compatkit.mpi", "MPI is found by running mpirun, which is not done on a dump")
	r.unknown("local", "local.feature", "NFD's local feature files are not read from a dump")
	return f, nil
}

// libc finds the C library from files only.
func (r *rootState) libc() (name, version string) {
	for _, pat := range []string{"lib*/ld-musl-*.so.1", "usr/lib*/ld-musl-*.so.1"} {
		if m := r.glob(pat); len(m) > 0 {
			return "musl", ""
		}
	}
	for _, pat := range []string{"lib*/libc-*.so", "lib*/*/libc-*.so", "usr/lib*/libc-*.so", "usr/lib*/*/libc-*.so"} {
		m := r.glob(pat)
		for _, p := range m {
			if v := reGlibcFile.FindStringSubmatch(p); v != nil {
				return "glibc", v[1]
			}
		}
	}
	if data, _ := r.readFirst("installed-rpms", "sos_commands/rpm/package-data"); data != nil {
		if m := reGlibcRPM.FindSubmatch(data); m != nil {
			return "glibc", string(m[1])
		}
	}
	if data, _ := r.readFirst("sos_commands/dpkg/dpkg_-l"); data != nil {
		if m := reGlibcDeb.FindSubmatch(data); m != nil {
			return "glibc", string(m[1])
		}
	}
	for _, pat := range []string{"lib*/libc.so.6", "lib*/*/libc.so.6", "usr/lib*/libc.so.6", "usr/lib*/*/libc.so.6"} {
		if m := r.glob(pat); len(m) > 0 {
			return "glibc", ""
		}
	}
	return "", ""
}
