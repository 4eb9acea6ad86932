package author

import (
	"fmt"
	"sort"
	"strings"
)

// Scaffold is a starting compat.cue for one kind of image (compat-attach init --template NAME).
type Scaffold struct {
	// Name is what --template takes.
	Name string
	// Summary says which images it suits.
	Summary string
	// Content is the compat.cue; it vets as it is.
	Content string
}

var scaffolds = []Scaffold{{
	Name:    "basic",
	Summary: "one image: must-haves (kernel, CPU level) and a nice-to-have",
	Content: `// Compatibility of this image: what it needs of a host (compat-attach explain <setting>).
package app

import (
	x86 "compatkit.dev/domains/cpu/x86"
	"compatkit.dev/domains/kernel"
	"list"
)

// required: rules every host must match.
required: list.Concat([
	(kernel.#Config & {min: "4.18"}).rules,
	(x86.#Config & {level: 2}).rules,
])
// preferred: nice-to-haves, each with the weight a host that has it scores.
preferred: [{weight: 90, tag: "x86-64-v3", rules: (x86.#Config & {level: 3}).rules}]
// baseWeight: the score of a host with only the required rules.
baseWeight: 50
`,
}, {
	Name:    "x86-64-levels",
	Summary: "an index of amd64 builds for x86-64 levels v1 and v3",
	Content: `// Compatibility of an index of amd64 builds for x86-64 levels v1 and v3.
package app

import "compatkit.dev/templates/x86-64-levels:levels"

platforms: {
	"linux/amd64": {required: [{name: "x86-64 baseline", matchFeatures: [levels.v1]}], baseWeight: 50}
	"linux/amd64/v3": {required: [{name: "x86-64-v3", matchFeatures: [levels.v3]}], baseWeight: 90}
}
`,
}, {
	Name:    "multi-arch",
	Summary: "an index for several platforms: common requirements once, per-platform additions",
	Content: `// Compatibility of a multi-platform index, written once (templates/multi-arch).
package app

import (
	"compatkit.dev/templates/multi-arch:multiarch"
	"compatkit.dev/domains/kernel"
	x86 "compatkit.dev/domains/cpu/x86"
	"compatkit.dev/domains/cpu/arm64"
)

_index: multiarch.#Index & {
	// common: what every image of the index needs.
	common: {
		required: (kernel.#Config & {min: "4.18"}).rules
		baseWeight: 50
	}
	// platforms: what each platform's image adds.
	platforms: {
		"linux/amd64": required: (x86.#Config & {level: 1}).rules
		"linux/amd64/v3": {required: (x86.#Config & {level: 3}).rules, baseWeight: 90}
		"linux/arm64": required: (arm64.#Config & {hwcaps: ["FP", "ASIMD"]}).rules
	}
}
platforms: _index.out
`,
}, {
	Name:    "cuda",
	Summary: "a CUDA application: driver and compute capability of its CUDA release",
	Content: `// Compatibility of a CUDA application (templates/cuda).
package app

import "compatkit.dev/templates/cuda"

// The CUDA release the image was built with, and the lowest GPU architecture its kernels target.
required: (cuda.#Release & {version: "12.4", computeCapability: "8.0"}).rules
`,
}, {
	Name:    "app-flavour",
	Summary: "one flavour of an application linked against an MPI",
	Content: `// Compatibility of the Open MPI flavour of an application (templates/app-flavour).
package app

import "compatkit.dev/templates/app-flavour:flavour"

required: (flavour.#Flavour & {mpi: {implementation: "openmpi", version: "4.1"}}).rules
`,
}, {
	Name:    "amd-intel",
	Summary: "different needs on AMD and Intel CPUs (when cases)",
	Content: `// Compatibility of an image with code paths for AMD and Intel CPUs.
package app

import x86 "compatkit.dev/domains/cpu/x86"

required: (x86.#Config & {level: 3}).rules
// when: each case applies to the hosts matching its condition; NFD checks the condition.
when: [{
	name:      "Intel"
	condition: [x86.intel]
	preferred: [{weight: 90, tag: "amx", rules: (x86.#Config & {amx: ["TILE", "BF16"]}).rules}]
	weight:    60
}, {
	name:      "AMD"
	condition: [x86.amd]
	preferred: [{weight: 85, tag: "avx512", rules: (x86.#Config & {avx512: ["F", "VNNI"]}).rules}]
	weight:    60
}]
// otherwise: any other x86-64-v3 CPU.
otherwise: weight: 30
`,
}}

// Scaffolds returns the starting files compat-attach init offers, by name.
func Scaffolds() []Scaffold {
	out := append([]Scaffold(nil), scaffolds...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ScaffoldByName returns the scaffold called name, or an error listing the names.
func ScaffoldByName(name string) (Scaffold, error) {
	var names []string
	for _, s := range Scaffolds() {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return Scaffold{}, fmt.Errorf("no template %q; templates: %s", name, strings.Join(names, ", "))
}
