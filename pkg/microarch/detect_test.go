package microarch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatkit/compatkit/pkg/cpuinfo"
)

// goarch returns the GOARCH of an archspec family, as cpuinfo.Info.Arch gives it.
func goarch(family string) string {
	switch family {
	case "x86_64":
		return "amd64"
	case "aarch64":
		return "arm64"
	}
	return family
}

// foreignSkips lists the archspec dumps Detect cannot pass, with the reason. Empty: all pass.
var foreignSkips = map[string]string{}

// TestArchspecTargets is archspec's own detection suite (tests/test_cpu.py, the Linux dumps of
// archspec-json's tests/targets): each linux-<os>-<target> dump must be detected as <target>.
func TestArchspecTargets(t *testing.T) {
	files, err := filepath.Glob("../../third_party/archspec/tests/targets/linux-*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no archspec dumps: %v", err)
	}
	pass := 0
	for _, f := range files {
		base := filepath.Base(f)
		want := base[strings.LastIndex(base, "-")+1:]
		t.Run(base, func(t *testing.T) {
			if why, ok := foreignSkips[base]; ok {
				t.Skip(why)
			}
			wt, ok := Lookup(want)
			if !ok {
				t.Fatalf("expected target %q is not in the graph", want)
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			info, err := cpuinfo.Parse(data, "")
			if err != nil {
				t.Fatal(err)
			}
			// A ppc64 (big-endian) kernel prints the same cpuinfo as a ppc64le one and compatkit's
			// parser knows ppc64le only; archspec's suite tells detection the machine (it
			// monkeypatches platform.machine to the expected target's family), so do the same.
			if wt.Family() == "ppc64" && info.Arch == "ppc64le" {
				info.Arch = "ppc64"
			}
			if info.Arch != goarch(wt.Family()) {
				t.Fatalf("cpuinfo.Parse found arch %s, want %s", info.Arch, goarch(wt.Family()))
			}
			got, err := Detect(info)
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != want {
				t.Errorf("Detect = %s, want %s", got.Name, want)
				return
			}
			pass++
		})
	}
	t.Logf("archspec suite: %d/%d Linux dumps detected as archspec does", pass, len(files))
}

func TestDetectErrors(t *testing.T) {
	if _, err := Detect(nil); err == nil {
		t.Error("Detect(nil): no error")
	}
	if _, err := Detect(&cpuinfo.Info{}); err == nil {
		t.Error("Detect without Arch: no error")
	}
	got, err := Detect(&cpuinfo.Info{Arch: "s390x", Fields: map[string]string{"vendor_id": "IBM/S390"}})
	if err != nil || got.Name != "s390x" || !got.Generic() {
		t.Errorf("s390x: got %+v, %v", got, err)
	}
	// An x86 host with no flags is the generic x86_64.
	got, err = Detect(&cpuinfo.Info{Arch: "amd64", Vendor: "GenuineIntel", Fields: map[string]string{"vendor_id": "GenuineIntel"}})
	if err != nil || got.Name != "x86_64" {
		t.Errorf("bare amd64: got %v, %v", got, err)
	}
}
