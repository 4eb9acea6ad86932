package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// Issue 16, the when/otherwise trap: "require driver >= 550 when an NVIDIA GPU is present,
// otherwise the CPU build".
const whenTrapDoc = `package app

import "compatkit.dev/domains/gpu/nvidia"

when: [{
	name:      "NVIDIA GPU present"
	condition: [nvidia.gpuPresent]
	tag:       "gpu"
	weight:    100
	required:  (nvidia.#Config & {driver: ">=550"}).rules
}]
otherwise: {tag: "cpu", weight: 50}
`

// The recipe (cue/README.md, domains/gpu/nvidia/README.md): condition on the driver, negated in
// otherwise.
const whenRecipeDoc = `package app

import "compatkit.dev/domains/gpu/nvidia"

when: [{
	name:      "NVIDIA driver installed"
	condition: [nvidia.driverPresent]
	tag:       "gpu"
	weight:    100
	required:  (nvidia.#Config & {driver: ">=550"}).rules
}]
otherwise: {tag: "cpu", weight: 50, required: [{name: "no NVIDIA driver", matchFeatures: [nvidia.noDriver]}]}
`

// A GPU host with driver 535: an NVIDIA 3D controller (what gpuPresent tests) beside the board's VGA.
const gpuDriver535 = `{"attributes": {"compatkit.platform": {"elements": {"os": "linux", "arch": "amd64"}},
  "compatkit.nvidia": {"elements": {"driver": "535.183.01", "driver.major": "535", "driver.minor": "183"}}},
 "instances": {"pci.device": {"elements": [
  {"attributes": {"class": "0302", "vendor": "10de", "device": "20b0"}},
  {"attributes": {"class": "0300", "vendor": "1a03", "device": "2000"}}]}}}`

func TestCheckSpecWhenFallbackNote(t *testing.T) {
	dir := t.TempDir()
	trap := writeFile(t, t.TempDir(), "compat.cue", whenTrapDoc)
	feats := writeFile(t, dir, "gpu535.json", gpuDriver535)
	out, stderr, code := runCLI(t, "check", "--spec", trap, "--features", feats)
	if code != 0 || !strings.Contains(out, "Verdict: COMPATIBLE (score 50)") {
		t.Fatalf("exit %d (NFD's verdict is compatible, score 50):\n%s%s", code, out, stderr)
	}
	want := `  note: set "gpu" (when: NVIDIA GPU present) applies to this host but failed ("NVIDIA driver 550 or later": local.feature: compatkit.nvidia.driver.major Ge [550] (host has 535)); the host is compatible only through the fallback set "cpu" (weight 50)`
	if !strings.Contains(out, want+"\n") {
		t.Errorf("no fallback note:\n%s", out)
	}
	out, _, _ = runCLI(t, "check", "--spec", trap, "--features", feats, "-o", "json")
	var rep struct {
		Specs []struct {
			Fallbacks []struct {
				Case        string   `json:"case"`
				SetTag      string   `json:"setTag"`
				FallbackTag string   `json:"fallbackTag"`
				Weight      int      `json:"weight"`
				Failed      []string `json:"failed"`
			} `json:"fallbacks"`
		} `json:"specs"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Specs) != 1 || len(rep.Specs[0].Fallbacks) != 1 {
		t.Fatalf("json: %s", out)
	}
	if f := rep.Specs[0].Fallbacks[0]; f.Case != "NVIDIA GPU present" || f.SetTag != "gpu" || f.FallbackTag != "cpu" || f.Weight != 50 || len(f.Failed) != 1 {
		t.Errorf("json fallback: %+v", f)
	}

	// The recipe refuses that host, without a note; the A100 profile (driver 535) likewise.
	recipe := writeFile(t, t.TempDir(), "compat.cue", whenRecipeDoc)
	for _, f := range []string{feats, "../../examples/profiles/amd-epyc-7763-nvidia-a100.json"} {
		out, _, code = runCLI(t, "check", "--spec", recipe, "--features", f)
		if code != exitIncompatible || strings.Contains(out, "note:") {
			t.Errorf("recipe on %s: exit %d:\n%s", f, code, out)
		}
	}
	// A host without a GPU takes the CPU build of either document, without a note.
	cpu := "../../examples/profiles/aws-c5-xeon-platinum-8275cl.json"
	for _, doc := range []string{trap, recipe} {
		out, _, code = runCLI(t, "check", "--spec", doc, "--features", cpu)
		if code != 0 || !strings.Contains(out, "COMPATIBLE (score 50)") || strings.Contains(out, "note:") {
			t.Errorf("%s on a CPU host: exit %d:\n%s", doc, code, out)
		}
	}
}

func TestVetWhenTrap(t *testing.T) {
	trap := writeFile(t, t.TempDir(), "compat.cue", whenTrapDoc)
	out, stderr, code := runCLI(t, "vet", trap)
	if code != 0 || !strings.Contains(out, "1 file(s) valid") {
		t.Fatalf("vet: exit %d %s %s", code, out, stderr)
	}
	if !strings.Contains(stderr, "warning: "+trap+`:5:8: when case "NVIDIA GPU present": a host that meets its condition but fails the case`) || !strings.Contains(stderr, "nvidia.noDriver") {
		t.Errorf("no when/otherwise warning:\n%s", stderr)
	}
	recipe := writeFile(t, t.TempDir(), "compat.cue", whenRecipeDoc)
	if _, stderr, code := runCLI(t, "vet", recipe); code != 0 || strings.Contains(stderr, "warning") {
		t.Errorf("recipe: exit %d, warnings:\n%s", code, stderr)
	}
}
