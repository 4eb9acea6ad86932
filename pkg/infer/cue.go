package infer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compatkit/compatkit/internal/safetext"
	"github.com/compatkit/compatkit/pkg/author"
	"github.com/compatkit/compatkit/pkg/oci"
)

// Weights of the inferred sets, as examples/hello/compat.cue sets them: the x86-64 baseline and
// other architectures 50, v3 90; v2 and v4 in between and above.
var levelWeight = map[int]int{1: 50, 2: 70, 3: 90, 4: 95}

// OtherWeight is the weight of the set of a manifest that is not amd64.
const OtherWeight = 50

// quote renders s as a CUE string literal (a JSON string is one; "\(" never appears in it).
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// comment renders text as one CUE line comment: whatever the image holds (paths, settings), it
// stays on one line.
func comment(indent, text string) string {
	return indent + "// " + safetext.Line(text) + "\n"
}

// PlatformKey returns the platforms key of m: "os/arch[/variant]".
func (m *Manifest) PlatformKey() string {
	return oci.FormatPlatform(&m.Platform)
}

// CUE renders r as a compat.cue document: for an index one `platforms: "os/arch[/variant]"` entry
// per manifest, for a single manifest a top-level spec. Each requirement is one rule preceded by a
// `//` comment citing its evidence; x86-64 levels use templates/x86-64-levels, CUDA
// domains/gpu/nvidia. The document passes `compat-attach vet`.
func (r *Result) CUE() []byte {
	var body bytes.Buffer
	imports := map[string]bool{}
	if r.Index {
		body.WriteString("// platforms maps each platform of the index to what its image needs.\nplatforms: {\n")
		for i, m := range r.Manifests {
			if i > 0 {
				body.WriteString("\n")
			}
			fmt.Fprintf(&body, "%s\t%s: {\n", comment("\t", fmt.Sprintf("%s: manifest %s, %d layers, %d files examined, %d ELF files", m.PlatformKey(), m.Descriptor.Digest, m.Layers, m.Scan.Files, len(m.Scan.ELFs))), quote(m.PlatformKey()))
			m.writeSpec(&body, "\t\t", imports)
			body.WriteString("\t}\n")
		}
		body.WriteString("}\n")
	} else if len(r.Manifests) == 1 {
		m := r.Manifests[0]
		body.WriteString(comment("", fmt.Sprintf("%s: manifest %s (%s), %d layers, %d files examined, %d ELF files", r.Image, m.Descriptor.Digest, m.PlatformKey(), m.Layers, m.Scan.Files, len(m.Scan.ELFs))))
		m.writeSpec(&body, "", imports)
	}
	var out bytes.Buffer
	out.WriteString(comment("", "Inferred by `compat-attach infer` from "+r.Image+": review before attaching."))
	out.WriteString("// Every rule cites what it was inferred from (a path in the image, a note, a setting).\n")
	if len(imports) > 0 {
		var names []string
		for k := range imports {
			names = append(names, k)
		}
		sort.Strings(names)
		out.WriteString("\nimport (\n")
		for _, n := range names {
			fmt.Fprintf(&out, "\t%s\n", n)
		}
		out.WriteString(")\n")
	}
	out.WriteString("\n")
	out.Write(body.Bytes())
	return out.Bytes()
}

const (
	importLevels = `"compatkit.dev/templates/x86-64-levels:levels"`
	importNvidia = `"compatkit.dev/domains/gpu/nvidia"`
)

// writeSpec writes the fields of m's spec (version, compatibilities) at indent.
func (m *Manifest) writeSpec(w *bytes.Buffer, in string, imports map[string]bool) {
	for _, e := range m.Warnings {
		w.WriteString(comment(in, "warning: "+e.String()))
	}
	for _, e := range m.Notes {
		w.WriteString(comment(in, "note: "+e.String()))
	}
	for _, s := range m.Scan.Skipped {
		w.WriteString(comment(in, "skipped: "+s))
	}
	if m.BaseName != "" || m.BaseDigest != "" {
		w.WriteString(comment(in, fmt.Sprintf("base image: %s@%s (manifest annotations %s, %s): `compat-attach attach --base` inherits its spec", m.BaseName, m.BaseDigest, AnnotationBaseName, AnnotationBaseDigest)))
	}
	tag, weight, desc := m.Platform.Architecture, OtherWeight, "inferred from "+m.Descriptor.Digest.String()
	if m.X86Level > 0 {
		tag, weight = fmt.Sprintf("x86-64-v%d", m.X86Level), levelWeight[m.X86Level]
	}
	if m.Platform.Architecture == "arm64" {
		tag = "arm64"
		if m.Platform.Variant != "" {
			tag = "arm" + m.Platform.Variant
		}
	}
	fmt.Fprintf(w, "%sversion: \"v1alpha1\"\n", in)
	fmt.Fprintf(w, "%scompatibilities: [{\n", in)
	i2 := in + "\t"
	fmt.Fprintf(w, "%stag:         %s\n", i2, quote(safetext.Line(tag)))
	fmt.Fprintf(w, "%sdescription: %s\n", i2, quote(desc))
	fmt.Fprintf(w, "%s// weight as examples/hello/compat.cue: baseline and other architectures 50, x86-64-v3 90.\n", i2)
	fmt.Fprintf(w, "%sweight: %d\n", i2, weight)
	fmt.Fprintf(w, "%srules: [\n", i2)
	i3 := i2 + "\t"
	if m.X86Level > 0 {
		imports[importLevels] = true
		w.WriteString(comment(i3, fmt.Sprintf("x86-64-v%d: %s", m.X86Level, m.X86Evidence)))
		fmt.Fprintf(w, "%s{name: \"x86-64-v%d instruction set\", matchFeatures: [levels.v%d]},\n", i3, m.X86Level, m.X86Level)
	}
	if len(m.Arm64) > 0 {
		w.WriteString(comment(i3, "arm64 "+strings.Join(m.Arm64, ", ")+": "+m.Arm64Evidence.String()))
		var ex []string
		for _, h := range m.Arm64 {
			ex = append(ex, h+`: {op: "Exists"}`)
		}
		fmt.Fprintf(w, "%s{name: \"arm64 %s\", matchFeatures: [{feature: \"cpu.cpuid\", matchExpressions: {%s}}]},\n", i3, strings.Join(m.Arm64, ", "), strings.Join(ex, ", "))
	}
	if k := m.Kernel; k != nil {
		w.WriteString(comment(i3, fmt.Sprintf("kernel %d.%d or later: %s", k[0], k[1], m.KernelEvidence)))
		fmt.Fprintf(w, "%s{\n", i3)
		fmt.Fprintf(w, "%s\tname: \"kernel %d.%d or later\"\n", i3, k[0], k[1])
		fmt.Fprintf(w, "%s\tmatchAny: [{\n", i3)
		fmt.Fprintf(w, "%s\t\tmatchFeatures: [{feature: \"kernel.version\", matchExpressions: major: {op: \"Gt\", value: [\"%d\"]}}]\n", i3, k[0])
		fmt.Fprintf(w, "%s\t}, {\n", i3)
		fmt.Fprintf(w, "%s\t\tmatchFeatures: [{feature: \"kernel.version\", matchExpressions: {major: {op: \"In\", value: [\"%d\"]}, minor: {op: \"Ge\", value: [\"%d\"]}}}]\n", i3, k[0], k[1])
		fmt.Fprintf(w, "%s\t}]\n", i3)
		fmt.Fprintf(w, "%s},\n", i3)
	}
	if c := m.CUDA; c != nil {
		m.writeCUDA(w, i3, c, imports)
	}
	fmt.Fprintf(w, "%s]\n", i2)
	fmt.Fprintf(w, "%s}]\n", in)
}

// writeCUDA writes the NVIDIA rules of c: the GPU (domains/gpu/nvidia), and either the domain's
// cuda setting or, with driver alternatives, a plain rule whose matchAny holds "CUDA >= X.Y" and
// each driver range.
func (m *Manifest) writeCUDA(w *bytes.Buffer, in string, c *CUDARequirement, imports map[string]bool) {
	src := "config Env"
	if c.Require != "" {
		src += " NVIDIA_REQUIRE_CUDA=" + c.Require
	}
	if c.Version != "" {
		src += " CUDA_VERSION=" + c.Version
	}
	if len(c.Ignored) > 0 {
		w.WriteString(comment(in, "not expressed (compatkit's features do not report them): "+strings.Join(c.Ignored, " ")))
	}
	for _, d := range c.Drivers {
		if d.Brand != "" {
			w.WriteString(comment(in, "brand="+d.Brand+" is not expressed: compatkit.nvidia does not report the GPU brand"))
			break
		}
	}
	imports[importNvidia] = true
	if len(c.Drivers) == 0 {
		if c.CUDA == "" {
			w.WriteString(comment(in, "NVIDIA GPU: "+src))
			fmt.Fprintf(w, "%sfor r in (nvidia.#Config & {}).rules {r},\n", in)
			return
		}
		w.WriteString(comment(in, fmt.Sprintf("NVIDIA GPU whose driver supports CUDA %s (gpu/nvidia cuda setting): %s", c.CUDA, src)))
		fmt.Fprintf(w, "%sfor r in (nvidia.#Config & {cuda: %s}).rules {r},\n", in, quote(c.CUDA))
		return
	}
	w.WriteString(comment(in, "NVIDIA GPU: "+src))
	fmt.Fprintf(w, "%sfor r in (nvidia.#Config & {}).rules {r},\n", in)
	w.WriteString(comment(in, "NVIDIA_REQUIRE_CUDA alternatives (space-separated) on compatkit.nvidia cuda.major/minor and driver.major: "+src))
	var alts []string
	if c.CUDA != "" {
		var major, minor int
		fmt.Sscanf(c.CUDA, "%d.%d", &major, &minor)
		alts = append(alts,
			fmt.Sprintf(`{matchFeatures: [{feature: "compatkit.nvidia", matchExpressions: {"cuda.major": {op: "Gt", value: ["%d"]}}}]}`, major),
			fmt.Sprintf(`{matchFeatures: [{feature: "compatkit.nvidia", matchExpressions: {"cuda.major": {op: "In", value: ["%d"]}, "cuda.minor": {op: "Ge", value: ["%d"]}}}]}`, major, minor))
	}
	for _, d := range c.Drivers {
		switch {
		case d.Max > 0 && d.Min > d.Max:
			w.WriteString(comment(in, fmt.Sprintf("driver range %d..%d is empty: left out", d.Min, d.Max)))
		case d.Max > 0 && d.Min == d.Max:
			alts = append(alts, fmt.Sprintf(`{matchFeatures: [{feature: "compatkit.nvidia", matchExpressions: {"driver.major": {op: "In", value: ["%d"]}}}]}`, d.Min))
		case d.Max > 0 && d.Min > 0 && d.Min < d.Max:
			alts = append(alts, fmt.Sprintf(`{matchFeatures: [{feature: "compatkit.nvidia", matchExpressions: {"driver.major": {op: "GeLe", value: ["%d", "%d"]}}}]}`, d.Min, d.Max))
		case d.Min > 0:
			alts = append(alts, fmt.Sprintf(`{matchFeatures: [{feature: "compatkit.nvidia", matchExpressions: {"driver.major": {op: "Ge", value: ["%d"]}}}]}`, d.Min))
		case d.Max > 0:
			alts = append(alts, fmt.Sprintf(`{matchFeatures: [{feature: "compatkit.nvidia", matchExpressions: {"driver.major": {op: "Le", value: ["%d"]}}}]}`, d.Max))
		}
	}
	if len(alts) == 0 {
		return
	}
	name := "NVIDIA driver for CUDA"
	if c.CUDA != "" {
		name += " " + c.CUDA
	}
	fmt.Fprintf(w, "%s{\n%s\tname: %s\n%s\tmatchAny: [\n", in, in, quote(name), in)
	for _, a := range alts {
		fmt.Fprintf(w, "%s\t\t%s,\n", in, a)
	}
	fmt.Fprintf(w, "%s\t]\n%s},\n", in, in)
}

// Compile compiles r.CUE() with pkg/author (through a temporary file, removed after), as
// `compat-attach vet` and `export` would, and returns the specs. An *author.Error means the
// inferred document is invalid: a bug of this package.
func (r *Result) Compile(ctx context.Context, opts author.Options) (*author.Result, error) {
	dir, err := os.MkdirTemp("", "compat-infer-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	f := filepath.Join(dir, "compat.cue")
	if err := os.WriteFile(f, r.CUE(), 0o600); err != nil {
		return nil, err
	}
	return author.Compile(ctx, []string{f}, opts)
}
