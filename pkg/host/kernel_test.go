package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
)

// kernelReleases are the releases of issue 13 with their expected split: major, minor, revision
// (NFD's element names; "" where the release has no such number) and release.
var kernelReleases = []struct {
	raw, full, major, minor, revision, release string
}{
	{"6.12.95+deb13-amd64", "6.12.95_deb13-amd64", "6", "12", "95", "6.12.95"},
	{"5.15.90.1-microsoft-standard-WSL2", "5.15.90.1-microsoft-standard-WSL2", "5", "15", "90", "5.15.90"},
	{"4.0-19041-Microsoft", "4.0-19041-Microsoft", "4", "0", "", "4.0.0"},
	{"4.18.0-553.el8_10.x86_64", "4.18.0-553.el8_10.x86_64", "4", "18", "0", "4.18.0"},
	{"5.14.0-427.13.1.el9_4.x86_64", "5.14.0-427.13.1.el9_4.x86_64", "5", "14", "0", "5.14.0"},
	{"3.10.0-1160.el7.x86_64", "3.10.0-1160.el7.x86_64", "3", "10", "0", "3.10.0"},
	{"6.8.9-300.fc40.x86_64", "6.8.9-300.fc40.x86_64", "6", "8", "9", "6.8.9"},
	{"5.10.217-205.860.amzn2.x86_64", "5.10.217-205.860.amzn2.x86_64", "5", "10", "217", "5.10.217"},
	{"6.1.90-99.173.amzn2023.x86_64", "6.1.90-99.173.amzn2023.x86_64", "6", "1", "90", "6.1.90"},
	{"5.10.120-tegra", "5.10.120-tegra", "5", "10", "120", "5.10.120"},
	{"6.8.0-45-generic", "6.8.0-45-generic", "6", "8", "0", "6.8.0"},
	{"5.15.0-1064-azure", "5.15.0-1064-azure", "5", "15", "0", "5.15.0"},
	{"6.6", "6.6", "6", "6", "", "6.6.0"},
	{" 6.1.0-18-amd64\n", "6.1.0-18-amd64", "6", "1", "0", "6.1.0"},
}

func TestKernelParseRelease(t *testing.T) {
	for _, tc := range kernelReleases {
		kv, err := ParseKernelRelease(tc.raw)
		if err != nil {
			t.Errorf("%q: %v", tc.raw, err)
			continue
		}
		want := KernelVersion{Full: tc.full, Major: tc.major, Minor: tc.minor, Revision: tc.revision, Release: tc.release}
		if kv != want {
			t.Errorf("%q: got %+v, want %+v", tc.raw, kv, want)
		}
		// Where NFD's own pattern splits the release, the numbers are NFD's.
		if m := nfdKernelVersion.FindStringSubmatch(kv.Full); m != nil && (m[1] != kv.Major || m[3] != kv.Minor || m[5] != kv.Revision) {
			t.Errorf("%q: NFD splits it %q %q %q, compatkit %+v", tc.raw, m[1], m[3], m[5], kv)
		}
	}
	for _, junk := range []string{"", "junk", "Linux", "v6.1", "99999999999.1"} {
		if kv, err := ParseKernelRelease(junk); !errors.Is(err, ErrKernelRelease) {
			t.Errorf("%q: got %+v, %v; want ErrKernelRelease", junk, kv, err)
		}
	}
}

// nfdParseVersion is NFD v0.19's source/kernel parseVersion, which live discovery post-processes.
func nfdParseVersion(raw string) map[string]string {
	version := map[string]string{"full": kernelFull(raw)}
	names := nfdKernelVersion.SubexpNames()
	if m := nfdKernelVersion.FindStringSubmatch(version["full"]); m != nil {
		for i, name := range names {
			if i != 0 && name != "" {
				version[name] = m[i]
			}
		}
	}
	return version
}

func TestKernelNormalizeDiscovered(t *testing.T) {
	for _, tc := range kernelReleases {
		f := nfdv1alpha1.NewFeatures()
		nfd := nfdParseVersion(tc.raw)
		f.Attributes[KernelVersionFeature] = nfdv1alpha1.AttributeFeatureSet{Elements: nfd}
		NormalizeKernelVersion(f)
		got := f.Attributes[KernelVersionFeature].Elements
		want := map[string]string{"full": tc.full, "major": tc.major, "minor": tc.minor, "revision": tc.revision, "release": tc.release}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%q: element %s = %q, want %q (all: %v)", tc.raw, k, got[k], v, got)
			}
		}
		if _, added := nfd["release"]; added {
			t.Errorf("%q: NFD's map was modified", tc.raw)
		}
	}
	f := nfdv1alpha1.NewFeatures()
	f.Attributes[KernelVersionFeature] = nfdv1alpha1.NewAttributeFeatures(map[string]string{"full": "junk"})
	NormalizeKernelVersion(f)
	if _, ok := f.Attributes[KernelVersionFeature].Elements["release"]; ok {
		t.Errorf("junk got a release: %v", f.Attributes[KernelVersionFeature].Elements)
	}
	NormalizeKernelVersion(nil)
	NormalizeKernelVersion(nfdv1alpha1.NewFeatures())
}

func TestKernelFromUname(t *testing.T) {
	for in, want := range map[string]string{
		"Linux node1 3.10.0-1160.el7.x86_64 #1 SMP Tue Aug 18 14:50:17 EDT 2020 x86_64 x86_64 x86_64 GNU/Linux\n": "3.10.0-1160.el7.x86_64",
		"Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0) #1 SMP": "6.1.0-18-amd64",
		"6.8.0-45-generic\n": "6.8.0-45-generic",
		"\n\nLinux":          "",
		"garbage here":       "",
	} {
		if got := KernelReleaseFromUname(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

// Every release, written as a dump's proc/sys/kernel/osrelease, a uname -a output or a
// proc/version line, gives the same kernel.version as live discovery's post-processing.
func TestKernelHostRootDumps(t *testing.T) {
	for _, tc := range kernelReleases {
		for _, file := range []struct{ rel, content string }{
			{"proc/sys/kernel/osrelease", tc.raw + "\n"},
			{"sos_commands/kernel/uname_-a", "Linux host " + tc.raw + " #1 SMP PREEMPT_DYNAMIC x86_64 GNU/Linux\n"},
			{"proc/version", "Linux version " + tc.raw + " (builder@host) (gcc) #1 SMP\n"},
		} {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, file.rel), file.content)
			d, err := HostRoot(dir, HostRootOptions{Platform: "linux/amd64"})
			if err != nil {
				t.Fatal(err)
			}
			f, _, err := d.Discover(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got := f.Attributes[KernelVersionFeature].Elements
			want := map[string]string{"full": tc.full, "major": tc.major, "minor": tc.minor, "revision": tc.revision, "release": tc.release}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s %q: element %s = %q, want %q", file.rel, tc.raw, k, got[k], v)
				}
			}
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
