package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatkit/compatkit/pkg/host"
)

const featuresSOSReport = "../../pkg/host/testdata/hostroot/sosreport-node1-2026-12-01-abcdef"

func TestFeaturesHostRootCLI(t *testing.T) {
	out, errOut, code := runCLI(t, "features", "--host-root", featuresSOSReport, "-o", "yaml")
	if code != 0 {
		t.Fatalf("code %d\n%s", code, errOut)
	}
	f, err := host.ParseFeatures([]byte(out), "stdout")
	if err != nil {
		t.Fatal(err)
	}
	if kv := f.Attributes["kernel.version"].Elements; kv["release"] != "3.10.0" || kv["full"] != "3.10.0-1160.el7.x86_64" {
		t.Errorf("kernel.version: %v", kv)
	}
	if p, err := host.Platform(f); err != nil || p.Architecture != "amd64" {
		t.Errorf("platform %+v %v", p, err)
	}
	if f.Attributes[host.UnknownFeature].Elements["kernel.config"] == "" {
		t.Errorf("compatkit.unknown: %v", f.Attributes[host.UnknownFeature])
	}
	// One warning line per source and reason, on stderr.
	if !strings.Contains(errOut, "warning: feature source kernel: kernel.config unknown: no proc/config.gz") ||
		!strings.Contains(errOut, "warning: feature source pci: pci.device unknown") {
		t.Errorf("stderr:\n%s", errOut)
	}
	for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
		if !strings.HasPrefix(l, "warning: feature source ") {
			t.Errorf("stray stderr line %q", l)
		}
	}
	// -q: no warnings.
	if _, errOut, code := runCLI(t, "features", "--host-root", featuresSOSReport, "-q"); code != 0 || errOut != "" {
		t.Errorf("-q: code %d stderr %q", code, errOut)
	}
	// --platform agrees with the dump's cpuinfo, or the command fails naming both.
	out, _, code = runCLI(t, "features", "--host-root", featuresSOSReport, "--platform", "linux/amd64", "-q")
	if f, err := host.ParseFeatures([]byte(out), "stdout"); code != 0 || err != nil || f.Attributes[host.PlatformFeature].Elements["arch"] != "amd64" {
		t.Errorf("--platform linux/amd64: code %d %v", code, err)
	}
	if _, errOut, code := runCLI(t, "features", "--host-root", featuresSOSReport, "--platform", "linux/arm64", "-q"); code == 0 || !strings.Contains(errOut, "arm64") || !strings.Contains(errOut, "cpuinfo") {
		t.Errorf("--platform linux/arm64 on an amd64 dump: code %d %s", code, errOut)
	}
}

func TestFeaturesHostRootErrorsCLI(t *testing.T) {
	empty := t.TempDir()
	if err := os.MkdirAll(filepath.Join(empty, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runCLI(t, "features", "--host-root", empty); code == 0 || !strings.Contains(errOut, "--platform") {
		t.Errorf("no cpuinfo: code %d %s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "features", "--host-root", filepath.Join(empty, "nope")); code == 0 || !strings.Contains(errOut, "nope") {
		t.Errorf("missing dir: code %d %s", code, errOut)
	}
	if _, _, code := runCLI(t, "features", "--platform", "linux/amd64"); code == 0 {
		t.Error("--platform without --host-root accepted")
	}
	if _, _, code := runCLI(t, "features", "--host-root", featuresSOSReport, "--nfd-local-file", filepath.Join(empty, "x")); code == 0 {
		t.Error("--nfd-local-file with --host-root accepted")
	}
}
