package host

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
)

const sosDir = "testdata/hostroot/sosreport-node1-2026-12-01-abcdef"

func TestHostRootSOSReport(t *testing.T) {
	// The sosreport's top directory and the directory holding it both work.
	for _, dir := range []string{sosDir, "testdata/hostroot"} {
		root, layout, err := FindHostRoot(dir)
		if err != nil || layout != LayoutSOSReport || filepath.Clean(root) != filepath.Clean(sosDir) {
			t.Fatalf("FindHostRoot(%s) = %s, %s, %v", dir, root, layout, err)
		}
		d, err := HostRoot(dir, HostRootOptions{})
		if err != nil {
			t.Fatal(err)
		}
		f, _, err := d.Discover(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		kv := f.Attributes["kernel.version"].Elements
		if kv["full"] != "3.10.0-1160.el7.x86_64" || kv["release"] != "3.10.0" || kv["major"] != "3" || kv["minor"] != "10" || kv["revision"] != "0" {
			t.Errorf("kernel.version from uname -a: %v", kv)
		}
		if os := f.Attributes["system.osrelease"].Elements; os["ID"] != "rhel" || os["VERSION_ID.major"] != "7" || os["VERSION_ID.minor"] != "9" {
			t.Errorf("system.osrelease: %v", os)
		}
		if n := f.Attributes["system.name"].Elements["nodename"]; n != "node1.example.com" {
			t.Errorf("system.name: %q, want the dump's host name", n)
		}
		if p, err := Platform(f); err != nil || p.OS != "linux" || p.Architecture != "amd64" || p.Variant == "" {
			t.Errorf("platform: %+v, %v", p, err)
		}
		if l := f.Attributes["compatkit.libc"].Elements; l["name"] != "glibc" || l["version"] != "2.17" {
			t.Errorf("compatkit.libc from installed-rpms: %v", l)
		}
		if _, ok := f.Flags["kernel.loadedmodule"].Elements["overlay"]; !ok {
			t.Errorf("kernel.loadedmodule: %v", f.Flags["kernel.loadedmodule"])
		}
		unknown := f.Attributes[UnknownFeature].Elements
		for _, set := range []string{"kernel.config", "compatkit.runtime", "compatkit.mpi", "pci.device", "system.dmiid", "cpu.topology"} {
			if unknown[set] == "" {
				t.Errorf("%s not listed unknown: %v", set, unknown)
			}
		}
		for _, set := range []string{"kernel.version", "system.osrelease", "compatkit.libc", "kernel.loadedmodule"} {
			if _, ok := unknown[set]; ok {
				t.Errorf("%s listed unknown although the dump tells it", set)
			}
		}
		if _, ok := f.Attributes["local.feature"].Elements["compatkit.unknown.pci.device"]; ok {
			t.Error("compatkit.unknown mirrored into local.feature")
		}
		if ws := UnknownWarnings(f); len(ws) == 0 || !strings.Contains(ws[0].String(), "unknown") {
			t.Errorf("warnings: %v", ws)
		}
		// Nothing of this machine: no cpu source of NFD, no DMI of the test machine.
		if _, ok := f.Attributes["system.dmiid"]; ok {
			t.Error("system.dmiid read although the dump has no sys/")
		}
	}
}

func TestHostRootPlatform(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "etc/os-release"), "ID=debian\n")
	if _, err := HostRoot(dir, HostRootOptions{}); err == nil || !strings.Contains(err.Error(), "--platform") {
		t.Fatalf("no cpuinfo, no --platform: %v", err)
	}
	d, err := HostRoot(dir, HostRootOptions{Platform: "linux/arm64/v8.2"})
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := d.Discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := Platform(f); p.Architecture != "arm64" || p.Variant != "v8.2" {
		t.Errorf("platform: %+v", p)
	}
	if _, err := HostRoot(dir, HostRootOptions{Platform: "not a platform!"}); err == nil {
		t.Error("bad --platform accepted")
	}
	// --platform and a cpuinfo of another architecture contradict each other: an error naming both.
	writeFile(t, filepath.Join(dir, "proc/cpuinfo"), "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse sse2\n")
	if _, err := HostRoot(dir, HostRootOptions{Platform: "linux/s390x"}); err == nil || !strings.Contains(err.Error(), "s390x") || !strings.Contains(err.Error(), "proc/cpuinfo") {
		t.Errorf("amd64 cpuinfo with --platform linux/s390x: %v", err)
	}
	// A cpuinfo that cannot be parsed is an error naming the file, not an unknown CPU.
	writeFile(t, filepath.Join(dir, "proc/cpuinfo"), "\x00\x01 not a cpuinfo")
	if _, err := HostRoot(dir, HostRootOptions{}); err == nil || !strings.Contains(err.Error(), "proc/cpuinfo") {
		t.Errorf("binary cpuinfo: %v", err)
	}
}

func TestHostRootCPUInfoOnly(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "proc/cpuinfo"), "processor\t: 0\nCPU implementer\t: 0x41\nFeatures\t: fp asimd\n")
	d, err := HostRoot(dir, HostRootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := d.Discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := Platform(f); p.Architecture != "arm64" {
		t.Errorf("platform: %+v", p)
	}
	if f.Attributes[UnknownFeature].Elements["kernel.version"] == "" {
		t.Errorf("kernel.version not unknown: %v", f.Attributes[UnknownFeature])
	}
}

func TestHostRootLayouts(t *testing.T) {
	mg := t.TempDir()
	writeFile(t, filepath.Join(mg, "quay-io-image/nodes/worker-0/proc/cpuinfo"), "vendor_id : GenuineIntel\nflags : fpu\n")
	root, layout, err := FindHostRoot(mg)
	if err != nil || layout != LayoutMustGather || filepath.Base(root) != "worker-0" {
		t.Fatalf("must-gather: %s %s %v", root, layout, err)
	}
	writeFile(t, filepath.Join(mg, "quay-io-image/nodes/worker-1/uname"), "6.1.0\n")
	if _, _, err := FindHostRoot(mg); err == nil || !strings.Contains(err.Error(), "worker-1") {
		t.Fatalf("two nodes: %v", err)
	}
	if _, _, err := FindHostRoot(filepath.Join(mg, "missing")); err == nil {
		t.Fatal("missing dir accepted")
	}
	if _, _, err := FindHostRoot(t.TempDir()); err == nil || !strings.Contains(err.Error(), "proc/cpuinfo") {
		t.Fatalf("empty dir: %v", err)
	}
}

// archspec's foreign suite through HostRoot: every Linux cpuinfo dump of archspec-json's
// tests/targets (the expected target ends the file name), as the only file of a root, gives the
// platform, archspec's target and the x86-64 level its flags make.
func TestHostRootArchspecDumps(t *testing.T) {
	dumps, _ := filepath.Glob("../../third_party/archspec/tests/targets/linux-*")
	if len(dumps) < 40 {
		t.Fatalf("%d archspec dumps, want the 41 of third_party/archspec", len(dumps))
	}
	arches := map[string]string{"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64le", "riscv64": "riscv64"}
	for _, dump := range dumps {
		name := filepath.Base(dump)
		want := name[strings.LastIndex(name, "-")+1:]
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(dump)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "proc/cpuinfo"), string(data))
			d, err := HostRoot(dir, HostRootOptions{})
			if err != nil {
				t.Fatal(err)
			}
			f, _, err := d.Discover(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			m := f.Attributes[MicroarchFeature].Elements
			if want == "power9" || want == "power10" {
				// Big-endian POWER (ppc64): a cpuinfo does not say the byte order and compatkit
				// knows POWER as ppc64le, so archspec's little-endian target of the generation.
				want += "le"
			}
			if m["target"] != want {
				t.Errorf("archspec target %q, want %q", m["target"], want)
			}
			p, err := Platform(f)
			if err != nil || p.Architecture != arches[m["family"]] {
				t.Errorf("platform %+v (%v), family %q", p, err, m["family"])
			}
			flags := f.Flags["cpu.cpuid"].Elements
			has := func(fl string) bool { _, ok := flags[fl]; return ok }
			switch want {
			case "haswell", "broadwell", "zen", "zen2", "zen3", "x86_64_v3":
				if !has("AVX2") || has("AVX512F") || X86Level(f) != 3 || p.Variant != "v3" {
					t.Errorf("%s: AVX2 %v AVX512F %v level %d variant %q", want, has("AVX2"), has("AVX512F"), X86Level(f), p.Variant)
				}
			case "skylake_avx512", "cascadelake", "sapphirerapids", "zen4", "zen5":
				if !has("AVX512F") || X86Level(f) != 4 || !has("X86_64_V4") {
					t.Errorf("%s: AVX512F %v level %d", want, has("AVX512F"), X86Level(f))
				}
			case "piledriver", "bulldozer", "ivybridge":
				if has("AVX2") || X86Level(f) != 2 {
					t.Errorf("%s: AVX2 %v level %d", want, has("AVX2"), X86Level(f))
				}
			case "neoverse_v1", "a64fx":
				if !has("SVE") {
					t.Errorf("%s without SVE", want)
				}
			}
		})
	}
}

func TestHostRootMissingFeatureWarnings(t *testing.T) {
	f := featuresForTest(map[string]map[string]string{"kernel.version": {"full": "6.1"}, "system.osrelease": {"ID": "x"}})
	ws := MissingFeatureWarnings(f)
	var got []string
	for _, w := range ws {
		got = append(got, w.String())
	}
	s := strings.Join(got, "\n")
	for _, want := range []string{"kernel.loadedmodule not discovered: cannot read /proc/modules", "system.dmiid not discovered"} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in\n%s", want, s)
		}
	}
	if strings.Contains(s, "kernel.version") {
		t.Errorf("kernel.version present but warned:\n%s", s)
	}
}

// featuresForTest builds features with the given attribute sets.
func featuresForTest(attrs map[string]map[string]string) *Features {
	f := &Features{Attributes: map[string]nfdv1alpha1.AttributeFeatureSet{}}
	for k, v := range attrs {
		f.Attributes[k] = nfdv1alpha1.AttributeFeatureSet{Elements: v}
	}
	return f
}

// A dump is read inside its root: a FIFO is an error (never a hang), and a link out of the root
// (absolute or ../) is not followed, so nothing of this machine or outside the dump is read.
func TestHostRootConfined(t *testing.T) {
	haswell, err := os.ReadFile("../../third_party/archspec/tests/targets/linux-rhel7-haswell")
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret")
	writeFile(t, outside, "ID=leaked\nPASSWORD_HASH=x\n")

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "proc/cpuinfo"), string(haswell))
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"etc/os-release": outside, "etc/hostname": "/etc/hostname", "proc/sys/kernel/osrelease": "../../../../../../proc/sys/kernel/osrelease"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	d, err := HostRoot(dir, HostRootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := d.Discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if el := f.Attributes["system.osrelease"].Elements; el != nil {
		t.Errorf("os-release read through a link out of the root: %v", el)
	}
	if _, ok := f.Attributes["system.name"]; ok {
		t.Errorf("host name read through a link out of the root: %v", f.Attributes["system.name"])
	}
	if _, ok := f.Attributes["kernel.version"]; ok {
		t.Errorf("kernel release read through a link out of the root: %v", f.Attributes["kernel.version"])
	}
	if u := f.Attributes[UnknownFeature].Elements; u["system.osrelease"] == "" || u["kernel.version"] == "" {
		t.Errorf("unknown: %v", u)
	}

	// The CPU itself: a link to this machine's /proc/cpuinfo is refused, a FIFO is an error.
	cpu := t.TempDir()
	if err := os.MkdirAll(filepath.Join(cpu, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/proc/cpuinfo", filepath.Join(cpu, "proc/cpuinfo")); err != nil {
		t.Fatal(err)
	}
	if _, err := HostRoot(cpu, HostRootOptions{}); err == nil {
		t.Error("a link to this machine's /proc/cpuinfo was read")
	}
	os.Remove(filepath.Join(cpu, "proc/cpuinfo"))
	if err := syscall.Mkfifo(filepath.Join(cpu, "proc/cpuinfo"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := HostRoot(cpu, HostRootOptions{}); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("FIFO cpuinfo: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a FIFO at proc/cpuinfo hangs")
	}
	// A FIFO at etc/os-release next to a real cpuinfo: unknown, no hang.
	fifo := t.TempDir()
	writeFile(t, filepath.Join(fifo, "proc/cpuinfo"), string(haswell))
	if err := os.MkdirAll(filepath.Join(fifo, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(fifo, "etc/os-release"), 0o644); err != nil {
		t.Fatal(err)
	}
	go func() {
		d, err := HostRoot(fifo, HostRootOptions{})
		if err == nil {
			_, _, err = d.Discover(context.Background())
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("FIFO os-release: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a FIFO at etc/os-release hangs")
	}
}

// A must-gather node directory keeps cpuinfo at its top.
func TestHostRootMustGatherCPUInfo(t *testing.T) {
	neo, err := os.ReadFile("../../third_party/archspec/tests/targets/linux-amazon-neoverse_n1")
	if err != nil {
		t.Fatal(err)
	}
	node := filepath.Join(t.TempDir(), "must-gather", "nodes", "worker-0")
	writeFile(t, filepath.Join(node, "cpuinfo"), string(neo))
	writeFile(t, filepath.Join(node, "uname"), "Linux worker-0 5.14.0-427.13.1.el9_4.aarch64 #1 SMP aarch64 GNU/Linux\n")
	d, err := HostRoot(node, HostRootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := d.Discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := Platform(f); p.Architecture != "arm64" || f.Attributes[MicroarchFeature].Elements["target"] != "neoverse_n1" {
		t.Errorf("platform %+v, microarch %v", p, f.Attributes[MicroarchFeature])
	}
}

// --platform may lower a dump's x86-64 level, never raise it; without cpuinfo there is no level
// above v1 to claim; a Linux cpuinfo is not another OS's.
func TestHostRootPlatformVariant(t *testing.T) {
	haswell, err := os.ReadFile("../../third_party/archspec/tests/targets/linux-rhel7-haswell")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "proc/cpuinfo"), string(haswell))
	for platform, want := range map[string]string{"linux/amd64/v2": "v2", "linux/amd64/v3": "v3", "linux/amd64": "v3", "linux/amd64/v4": "error", "linux/amd64/v9": "error", "windows/amd64": "error"} {
		d, err := HostRoot(dir, HostRootOptions{Platform: platform})
		if want == "error" {
			if err == nil {
				t.Errorf("%s accepted on a Haswell dump", platform)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", platform, err)
		}
		f, _, _ := d.Discover(context.Background())
		if p, _ := Platform(f); p.Variant != want {
			t.Errorf("%s: variant %s, want %s", platform, p.Variant, want)
		}
	}
	empty := t.TempDir()
	writeFile(t, filepath.Join(empty, "etc/os-release"), "ID=debian\n")
	if _, err := HostRoot(empty, HostRootOptions{Platform: "linux/amd64/v3"}); err == nil || !strings.Contains(err.Error(), "proc/cpuinfo") {
		t.Errorf("linux/amd64/v3 without cpuinfo: %v", err)
	}
}
