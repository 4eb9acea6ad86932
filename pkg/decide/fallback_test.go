package decide_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatkit/compatkit/pkg/author"
	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/host"
)

// The trap of issue 16: driver >= 550 when an NVIDIA GPU is present, otherwise the CPU build.
const fallbackTrapDoc = `package app

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

// The recipe: a condition on an attribute, negated in otherwise.
const fallbackGoodDoc = `package app

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

// A GPU host (an NVIDIA 3D controller beside the board's VGA) with driver 535.
const gpu535Features = `{"attributes": {"compatkit.platform": {"elements": {"os": "linux", "arch": "amd64"}},
  "compatkit.nvidia": {"elements": {"driver": "535.183.01", "driver.major": "535", "driver.minor": "183"}}},
 "instances": {"pci.device": {"elements": [
  {"attributes": {"class": "0302", "vendor": "10de", "device": "20b0"}},
  {"attributes": {"class": "0300", "vendor": "1a03", "device": "2000"}}]}}}`

const gpu570Features = `{"attributes": {"compatkit.platform": {"elements": {"os": "linux", "arch": "amd64"}},
  "compatkit.nvidia": {"elements": {"driver": "570.86.10", "driver.major": "570", "driver.minor": "86"}}},
 "instances": {"pci.device": {"elements": [{"attributes": {"class": "0302", "vendor": "10de", "device": "2330"}}]}}}`

const cpuFeatures = `{"attributes": {"compatkit.platform": {"elements": {"os": "linux", "arch": "amd64"}}}}`

func decideDoc(t *testing.T, doc, features string) *decide.Candidate {
	t.Helper()
	dir := t.TempDir()
	f := filepath.Join(dir, "compat.cue")
	if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := author.Compile(context.Background(), []string{f}, author.Options{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := decide.DocumentImage(f, res)
	if err != nil {
		t.Fatal(err)
	}
	feats, err := host.ParseFeatures([]byte(features), "features.json")
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Decide(context.Background(), decide.NewHost("features.json", feats, nil), decide.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Best() == nil {
		t.Fatal("no candidate")
	}
	return d.Best()
}

func TestFallbackWhenCaseFails(t *testing.T) {
	c := decideDoc(t, fallbackTrapDoc, gpu535Features)
	if c.Verdict != decide.Compatible || c.Score != 50 {
		t.Fatalf("verdict %s score %d, want compatible 50 (NFD's verdict)", c.Verdict, c.Score)
	}
	notes := c.Fallbacks()
	if len(notes) != 1 {
		t.Fatalf("notes: %+v", notes)
	}
	n := notes[0]
	if n.Case != "NVIDIA GPU present" || n.SetTag != "gpu" || n.FallbackTag != "cpu" || n.Weight != 50 || len(n.Failed) != 1 {
		t.Errorf("note: %+v", n)
	}
	s := n.String()
	for _, want := range []string{`set "gpu" (when: NVIDIA GPU present) applies to this host but failed`, "driver.major", "535", `compatible only through the fallback set "cpu" (weight 50)`} {
		if !strings.Contains(s, want) {
			t.Errorf("note %q lacks %q", s, want)
		}
	}
}

func TestFallbackNoNote(t *testing.T) {
	for _, tc := range []struct {
		name, doc, features string
		score               int
	}{
		{"GPU host that meets the case", fallbackTrapDoc, gpu570Features, 100},
		{"CPU host: the condition does not apply", fallbackTrapDoc, cpuFeatures, 50},
		{"recipe: CPU host", fallbackGoodDoc, cpuFeatures, 50},
		{"recipe: GPU host that meets the case", fallbackGoodDoc, gpu570Features, 100},
	} {
		c := decideDoc(t, tc.doc, tc.features)
		if c.Verdict != decide.Compatible || c.Score != tc.score {
			t.Errorf("%s: verdict %s score %d, want compatible %d", tc.name, c.Verdict, c.Score, tc.score)
		}
		if n := c.Fallbacks(); len(n) != 0 {
			t.Errorf("%s: notes %v", tc.name, n)
		}
	}
	// The recipe refuses the driver-535 GPU host instead of passing it as the CPU build.
	c := decideDoc(t, fallbackGoodDoc, gpu535Features)
	if c.Verdict != decide.Incompatible || len(c.Fallbacks()) != 0 {
		t.Errorf("recipe, driver 535: verdict %s notes %v, want incompatible without a note", c.Verdict, c.Fallbacks())
	}
}
