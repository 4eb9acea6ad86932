package main

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compatkit/compatkit/pkg/microarch"
)

const root = "../../.."

// TestUpToDate: the checked-in generated files are what the generator writes now (run
// `go generate ./pkg/microarch` after changing the generator or third_party/archspec).
func TestUpToDate(t *testing.T) {
	files, err := generate(root)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range files {
		got, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go generate ./pkg/microarch", p)
		}
	}
	cue := files[domainCUE]
	if !bytes.HasPrefix(cue, []byte("// Code generated ")) || !bytes.Contains(cue[:bytes.IndexByte(cue, '\n')], []byte("DO NOT EDIT.")) {
		t.Error("the generated CUE does not start with a Code generated ... DO NOT EDIT. line")
	}
}

// TestRulesHoldOnDetectedHost: for every archspec Linux dump of a family the domain covers, the
// flags and vendor the domain requires for the detected target are among what NFD would report on
// that host (its cpuinfo names mapped with microarch.NFDFlag): target: <detected> accepts the host.
// Also, the domain leaves no target out silently and requires something of every target it lists.
func TestRulesHoldOnDetectedHost(t *testing.T) {
	g := microarch.Default()
	entries, _ := targetEntries(g)
	byName := map[string]entry{}
	for _, e := range entries {
		byName[e.t.Name] = e
		if e.vendor == "" && len(e.flags) == 0 {
			t.Errorf("%s: no term", e.t.Name)
		}
	}
	files, _ := filepath.Glob(filepath.Join(root, "third_party/archspec/tests/targets/linux-*"))
	checked := 0
	for _, f := range files {
		base := filepath.Base(f)
		want := base[strings.LastIndex(base, "-")+1:]
		e, ok := byName[want]
		if !ok {
			continue // riscv64, or a target NFD sees nothing of
		}
		fam := e.t.Family()
		if fam == "ppc64le" {
			continue // NFD's ppc64le flags (AT_HWCAP2) are not in /proc/cpuinfo
		}
		fields := firstBlock(t, f)
		key, vkey := "flags", "vendor_id"
		if fam == "aarch64" {
			key, vkey = "Features", "CPU implementer"
		}
		var host []string
		for _, fl := range strings.Fields(fields[key]) {
			if n, ok := microarch.NFDFlag(fam, fl); ok {
				host = append(host, n)
			}
		}
		for _, fl := range e.flags {
			if !slices.Contains(host, fl) {
				t.Errorf("%s: target %s requires %s, which the host lacks", base, want, fl)
			}
		}
		if e.vendor != "" {
			v := fields[vkey]
			if fam == "aarch64" {
				v = g.ARMVendors[v]
			}
			if nv, _ := microarch.NFDVendor(v); nv != e.vendor {
				t.Errorf("%s: target %s requires vendor %s, host is %s", base, want, e.vendor, nv)
			}
		}
		checked++
	}
	if checked < 30 {
		t.Errorf("checked only %d dumps", checked)
	}
}

func firstBlock(t *testing.T, p string) map[string]string {
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok && len(m) > 0 {
			break
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return m
}
