package host

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
)

// Recorded outputs of real hosts.
const (
	procProprietary = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
	procOpen        = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.14  Release Build  (dvs-builder@U16-I3-B03-4-3)  Thu Feb 22 01:25:25 UTC 2024\n"
	smiQuery        = "550.54.14, 9.0\n550.54.14, 8.0\n"
	smiBanner       = `+---------------------------------------------------------------------------------------+
| NVIDIA-SMI 550.54.14              Driver Version: 550.54.14      CUDA Version: 12.4     |
|-----------------------------------------+------------------------+----------------------+`
	ompi  = "mpirun (Open MPI) 4.1.5\n\nReport bugs to http://www.open-mpi.org/community/help/\n"
	mpich = "HYDRA build details:\n    Version:                                 4.1.2\n    Release Date:                            Wed Jun  7 15:22:45 CDT 2023\n"
	impi  = "Intel(R) MPI Library for Linux* OS, Version 2021.10 Build 20230619 (id: c2e19c2f3e)\nCopyright 2003-2023, Intel Corporation.\n"
)

func TestNvidiaParsers(t *testing.T) {
	if got := ParseNvidiaProcVersion(procProprietary); got != "535.104.05" {
		t.Errorf("proprietary: %q", got)
	}
	if got := ParseNvidiaProcVersion(procOpen); got != "550.54.14" {
		t.Errorf("open: %q", got)
	}
	if got := ParseNvidiaProcVersion("no driver"); got != "" {
		t.Errorf("none: %q", got)
	}
	d, caps := ParseNvidiaSMIQuery(smiQuery)
	if d != "550.54.14" || strings.Join(caps, " ") != "9.0 8.0" {
		t.Errorf("query: %q %q", d, caps)
	}
	if got := ParseNvidiaSMIBanner(smiBanner); got != "12.4" {
		t.Errorf("banner: %q", got)
	}
	el := NvidiaInfo{Driver: d, CUDA: "12.4", ComputeCaps: caps}.Elements()
	want := map[string]string{"driver": "550.54.14", "driver.major": "550", "driver.minor": "54",
		"cuda": "12.4", "cuda.major": "12", "cuda.minor": "4",
		"compute_cap": "8.0", "compute_cap.major": "8", "compute_cap.minor": "0", "count": "2"}
	for k, v := range want {
		if el[k] != v {
			t.Errorf("%s = %q, want %q", k, el[k], v)
		}
	}
}

func TestMPIAndRuntimeParsers(t *testing.T) {
	for _, c := range []struct{ out, impl, v string }{
		{ompi, "openmpi", "4.1.5"}, {mpich, "mpich", "4.1.2"}, {impi, "intel", "2021.10"}, {"bash: mpirun: not found", "", ""},
	} {
		if impl, v := ParseMPIVersion(c.out); impl != c.impl || v != c.v {
			t.Errorf("%q: got %s %s", c.out, impl, v)
		}
	}
	for out, want := range map[string]string{
		"runc version 1.1.12\ncommit: v1.1.12-0-g51d5e94\nspec: 1.0.2-dev\n":      "1.1.12",
		"crun version 1.14.4\ncommit: a220ca661ce078f2c37b38c92e66cf66c012d9c1\n": "1.14.4",
		"containerd-shim-wasmtime-v1:\n  Version: v0.5.0\n":                       "0.5.0",
		"": "unknown",
	} {
		if got := ParseVersionOutput(out); got != want {
			t.Errorf("%q: got %q want %q", out, got, want)
		}
	}
}

// TestAbsentTools: a host without GPU, MPI or runtimes gives no such features and no error.
func TestAbsentTools(t *testing.T) {
	absent := System{
		Run:      func(context.Context, string, ...string) ([]byte, error) { return nil, errors.New("not found") },
		ReadFile: func(string) ([]byte, error) { return nil, os.ErrNotExist },
		LookPath: func(string) (string, error) { return "", errors.New("not found") },
	}
	f, err := extraSource{sys: absent}.Discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"compatkit.nvidia", "compatkit.mpi", "compatkit.runtime"} {
		if _, ok := f.Attributes[n]; ok {
			t.Errorf("%s present", n)
		}
	}
	// With recorded outputs.
	recorded := System{
		Run: func(_ context.Context, name string, args ...string) ([]byte, error) {
			switch {
			case name == "nvidia-smi" && len(args) > 0:
				return []byte(smiQuery), nil
			case name == "nvidia-smi":
				return []byte(smiBanner), nil
			case name == "mpirun":
				return []byte(ompi), nil
			case name == "runc":
				return []byte("runc version 1.1.12\ncommit: v1.1.12-0-g51d5e946\n"), nil
			}
			return nil, errors.New("not found")
		},
		ReadFile: func(string) ([]byte, error) { return []byte(procOpen), nil },
		LookPath: func(name string) (string, error) {
			if name == "runc" {
				return "/usr/bin/runc", nil
			}
			return "", errors.New("not found")
		},
	}
	f, _ = extraSource{sys: recorded}.Discover(context.Background())
	if f.Attributes["compatkit.nvidia"].Elements["cuda.major"] != "12" || f.Attributes["compatkit.mpi"].Elements["version.minor"] != "1" ||
		f.Attributes["compatkit.runtime"].Elements["runc"] != "1.1.12" {
		t.Errorf("got %v", f.Attributes)
	}
}

func TestNFDLocalFile(t *testing.T) {
	f := nfdv1alpha1.NewFeatures()
	f.Attributes["compatkit.nvidia"] = nfdv1alpha1.AttributeFeatureSet{Elements: map[string]string{"driver.major": "550", "driver": "550.54.14"}}
	f.Attributes["kernel.version"] = nfdv1alpha1.AttributeFeatureSet{Elements: map[string]string{"major": "6"}}
	var b bytes.Buffer
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := WriteNFDLocalFile(&b, f, exp); err != nil {
		t.Fatal(err)
	}
	want := "# compatkit features for NFD's local source (compat-attach features --nfd-local-file)\n" +
		"# +expiry-time=2030-01-02T03:04:05Z\n" +
		"# +no-label\ncompatkit.nvidia.driver=550.54.14\n# +no-label\ncompatkit.nvidia.driver.major=550\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	p := filepath.Join(t.TempDir(), "compatkit")
	if err := WriteNFDLocalFileAt(p, f, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(p); strings.Contains(string(data), "expiry") || !strings.Contains(string(data), "compatkit.nvidia.driver.major=550") {
		t.Errorf("got %s", data)
	}
}

// TestRunCommandBounded: a command that leaves a process holding its output open, or that never
// ends, does not hold discovery: the timeout and the wait delay bound it.
func TestRunCommandBounded(t *testing.T) {
	start := time.Now()
	out, _, err := RunCommand(context.Background(), 5*time.Second, "sh", "-c", "sleep 30 & echo started")
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("a child holding stdout open kept RunCommand %v", d)
	}
	if !strings.Contains(string(out), "started") {
		t.Fatalf("output %q, err %v", out, err)
	}
	start = time.Now()
	_, _, err = RunCommand(context.Background(), 500*time.Millisecond, "sleep", "30")
	if d := time.Since(start); d > 3*time.Second || err == nil || !strings.Contains(err.Error(), "no answer within") {
		t.Fatalf("a command that never ends: %v after %v", err, d)
	}
	out, _, _ = RunCommand(context.Background(), 5*time.Second, "sh", "-c", "head -c 3000000 /dev/zero")
	if len(out) != maxCommandOutput {
		t.Fatalf("output of %d bytes kept, want the first %d", len(out), maxCommandOutput)
	}
}

// FuzzToolOutputs: what nvidia-smi, /proc/driver/nvidia/version, mpirun and runtimes print is
// whatever the installed program prints; the parsers never panic and return versions made of
// digits and dots.
func FuzzToolOutputs(f *testing.F) {
	for _, s := range []string{
		"NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n",
		"550.54.15, 9.0\n550.54.15, 9.0\n",
		"| NVIDIA-SMI 550.54.15              Driver Version: 550.54.15      CUDA Version: 12.4     |",
		"mpirun (Open MPI) 4.1.4\n\nReport bugs to http://www.open-mpi.org/community/help/\n",
		"Intel(R) MPI Library for Linux* OS, Version 2021.10 Build 20230619 (id: c2e19c2f3e)\n",
		"HYDRA build details:\n    Version:                                 4.0.2\n",
		"runc version 1.1.12\ncommit: v1.1.12-0-g51d5e94\nspec: 1.0.2-dev\n",
		"crun version 1.14.1\ncommit: de537a7965bfbe9992e2cfae0baeb56a08128171\n",
	} {
		f.Add(s)
	}
	digits := func(t *testing.T, what, v string) {
		t.Helper()
		if v == "unknown" && what == "ParseVersionOutput" {
			return // its documented answer when there is no version
		}
		for _, r := range v {
			if (r < '0' || r > '9') && r != '.' {
				t.Fatalf("%s = %q: not a version", what, v)
			}
		}
	}
	f.Fuzz(func(t *testing.T, out string) {
		digits(t, "ParseNvidiaProcVersion", ParseNvidiaProcVersion(out))
		d, _ := ParseNvidiaSMIQuery(out)
		digits(t, "ParseNvidiaSMIQuery", d)
		digits(t, "ParseNvidiaSMIBanner", ParseNvidiaSMIBanner(out))
		digits(t, "ParseVersionOutput", ParseVersionOutput(out))
		_, v := ParseMPIVersion(out)
		digits(t, "ParseMPIVersion", v)
	})
}
