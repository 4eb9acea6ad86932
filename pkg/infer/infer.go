// Package infer derives a compatibility spec from what an image holds: its config (platform,
// environment) and its layers' ELF binaries (architecture, the minimum kernel of the GNU ABI tag,
// the x86-64 ISA level of the GNU property note, Go build settings). It is the only part of
// compatkit that reads layers; it streams them through gzip/zstd and tar without writing to disk,
// within Limits. The result renders as a compat.cue document (Result.CUE) that pkg/author compiles,
// one `//` comment per requirement citing its evidence.
package infer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/compatkit/compatkit/pkg/oci"
)

// MaxConfigBytes is the largest image config Infer reads.
const MaxConfigBytes = 4 << 20

// Base-image annotations (image-spec v1.1 annotations.md), which BuildKit writes.
const (
	AnnotationBaseName   = "org.opencontainers.image.base.name"
	AnnotationBaseDigest = "org.opencontainers.image.base.digest"
)

// Options tune Infer.
type Options struct {
	// Platforms filters the manifests of an index: a platform without a variant matches every
	// variant of its os/arch. nil means every manifest (attestation manifests are always skipped).
	Platforms []ocispec.Platform
	// Limits bound the layers read.
	Limits Limits
	// Progress, when not nil, receives one line per manifest before its layers are read:
	// "infer: reading N layers (X MB) of IMAGE".
	Progress io.Writer
}

// Evidence is why a requirement was inferred: a path in the image (or a config setting) and what
// was read there.
type Evidence struct {
	// Path is the file in the image ("/usr/bin/env"), or "config" / "manifest" for settings.
	Path string
	// What says what was read: "NT_GNU_ABI_TAG Linux 3.2.0", "GOAMD64=v3 (Go build info)", ...
	What string
}

// String renders e as "path: what".
func (e Evidence) String() string { return e.Path + ": " + e.What }

// Manifest is what Infer derived for one image manifest.
type Manifest struct {
	// Descriptor is the manifest as the index lists it (or the resolved root of a single image).
	Descriptor ocispec.Descriptor
	// Platform is the index entry's platform, else the config's.
	Platform ocispec.Platform
	// Layers is the number of layers read; Scan what reading them found.
	Layers int
	Scan   *LayerScan
	// Kernel is the lowest kernel [major, minor, patch], nil when nothing requires one.
	Kernel []int
	// KernelEvidence cites the binary that requires Kernel.
	KernelEvidence Evidence
	// X86Level is the x86-64 microarchitecture level (1-4) of an amd64 image, 0 otherwise.
	X86Level int
	// X86Evidence cites the binary (or the platform) that requires X86Level.
	X86Evidence Evidence
	// Arm64 lists the arm64 HWCAPs the image needs (FP, ASIMD; ATOMICS for GOARM64 v8.1+).
	Arm64 []string
	// Arm64Evidence cites why.
	Arm64Evidence Evidence
	// CUDA is what NVIDIA_REQUIRE_CUDA / CUDA_VERSION say, nil when unset.
	CUDA *CUDARequirement
	// BaseName and BaseDigest are the manifest's base-image annotations, "" when absent.
	BaseName, BaseDigest string
	// Notes are facts that give no rule (CGO_ENABLED, Go versions) and Warnings are mismatches
	// (an ELF of another architecture than the platform's), each with its evidence.
	Notes, Warnings []Evidence
}

// Result is what Infer derived for an image.
type Result struct {
	// Image is the reference as given.
	Image string
	// Index reports whether the image is an index (then Result.CUE writes platforms sections).
	Index bool
	// Manifests are the manifests read, in index order.
	Manifests []*Manifest
}

// Infer reads the image t resolves to: for an index every platform manifest (filtered by
// opts.Platforms; attestation manifests skipped), for a single manifest that one. For each it
// reads the config and streams the layers in order (see LayerScan.Scan: whiteouts and later layers
// delete or replace what earlier ones hold), verifying each layer blob against its descriptor's
// size and digest while it streams. Errors name the image, the manifest and the layer; a layer
// whose bytes do not match its digest is an error ("content does not match its digest"), never a
// result; exceeding a limit (Options.Limits, shared by all the manifests read) wraps ErrLimit.
func Infer(ctx context.Context, t *oci.Target, opts Options) (*Result, error) {
	root, err := t.Resolve(ctx)
	if err != nil {
		return nil, err
	}
	tr, err := t.Tree(ctx, root)
	if err != nil {
		return nil, err
	}
	res := &Result{Image: t.Reference(), Index: tr.IsIndex()}
	var entries []ocispec.Descriptor
	if tr.IsIndex() {
		for _, e := range tr.Manifests {
			if e.Attestation() {
				continue
			}
			if len(opts.Platforms) > 0 && !platformWanted(e.Descriptor.Platform, opts.Platforms) {
				continue
			}
			entries = append(entries, e.Descriptor)
		}
		if len(entries) == 0 {
			var have []string
			for _, e := range tr.Manifests {
				if !e.Attestation() {
					have = append(have, oci.FormatPlatform(e.Descriptor.Platform))
				}
			}
			return nil, fmt.Errorf("%s: no manifest of the index matches the platforms asked for; it has %s", t.Reference(), strings.Join(have, ", "))
		}
	} else {
		entries = []ocispec.Descriptor{root}
	}
	limits := opts.Limits.withDefaults()
	budget, files, unpacked := limits.MaxBytes, limits.MaxFiles, limits.MaxUncompressedBytes
	for _, d := range entries {
		m, err := inferManifest(ctx, t, d, limits, &budget, &unpacked, &files, opts.Progress)
		if err != nil {
			return nil, err
		}
		res.Manifests = append(res.Manifests, m)
	}
	return res, nil
}

func platformWanted(p *ocispec.Platform, want []ocispec.Platform) bool {
	if p == nil {
		return false
	}
	for _, w := range want {
		if w.OS == p.OS && w.Architecture == p.Architecture && (w.Variant == "" || w.Variant == p.Variant) {
			return true
		}
	}
	return false
}

// inferManifest reads one manifest; budget, unpacked and files are what is left of Limits.MaxBytes,
// Limits.MaxUncompressedBytes and Limits.MaxFiles for it, decremented by what it reads.
func inferManifest(ctx context.Context, t *oci.Target, d ocispec.Descriptor, limits Limits, budget, unpacked *int64, files *int, progress io.Writer) (*Manifest, error) {
	where := t.Reference() + "@" + d.Digest.String()
	man, err := t.FetchManifest(ctx, d)
	if err != nil {
		return nil, err
	}
	cfgBytes, err := t.FetchBlob(ctx, man.Config, MaxConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", where, err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(cfgBytes, &cfg); err != nil {
		return nil, fmt.Errorf("%s: config %s does not decode: %v", where, man.Config.Digest, err)
	}
	m := &Manifest{Descriptor: d, Platform: cfg.Platform, Layers: len(man.Layers)}
	if d.Platform != nil {
		m.Platform = *d.Platform
	}
	m.BaseName, m.BaseDigest = man.Annotations[AnnotationBaseName], man.Annotations[AnnotationBaseDigest]
	var total int64
	for _, l := range man.Layers {
		if l.Size < 0 {
			return nil, fmt.Errorf("%s: layer %s has a negative size", where, l.Digest)
		}
		total += l.Size
	}
	if total > *budget {
		return nil, fmt.Errorf("%w: %s: %d layers of %d bytes, over what --max-bytes leaves (%d bytes)", ErrLimit, where, len(man.Layers), total, *budget)
	}
	if progress != nil {
		fmt.Fprintf(progress, "infer: reading %d layers (%.1f MB) of %s (%s)\n", len(man.Layers), float64(total)/1e6, t.Reference(), oci.FormatPlatform(&m.Platform))
	}
	if *files <= 0 {
		return nil, fmt.Errorf("%w: %s: more than %d files examined (--max-files)", ErrLimit, where, limits.MaxFiles)
	}
	if *unpacked <= 0 && len(man.Layers) > 0 {
		return nil, fmt.Errorf("%w: %s: more than %d uncompressed bytes read (--max-uncompressed-bytes)", ErrLimit, where, limits.MaxUncompressedBytes)
	}
	scan := NewLayerScan(Limits{MaxBytes: *budget, MaxUncompressedBytes: *unpacked, MaxFiles: *files, MaxFileSize: limits.MaxFileSize})
	for _, l := range man.Layers {
		if err := scanBlob(ctx, t, l, scan); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	*budget -= scan.Bytes
	*unpacked -= scan.uncompressed
	*files -= scan.Files
	m.Scan = scan
	env := map[string]string{}
	for _, e := range cfg.Config.Env {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	if env["NVIDIA_DISABLE_REQUIRE"] == "" || env["NVIDIA_DISABLE_REQUIRE"] == "false" {
		m.CUDA = ParseCUDA(env["NVIDIA_REQUIRE_CUDA"], env["CUDA_VERSION"])
	}
	derive(m)
	return m, nil
}

// scanBlob streams one layer blob into scan, verifying its size and digest as it goes (see
// LayerScan.scanDescriptor): a blob that does not match its descriptor is an error, and what it
// held is not used. The blob is never cached nor written to disk.
func scanBlob(ctx context.Context, t *oci.Target, l ocispec.Descriptor, scan *LayerScan) error {
	rc, err := t.Store().Fetch(ctx, l)
	if err != nil {
		return fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	defer rc.Close()
	return scan.scanDescriptor(rc, l)
}

// goKernel returns the lowest Linux kernel of a Go toolchain: 3.2 since Go 1.24 (Go 1.24 release
// notes, "Linux"), 2.6.32 before.
func goKernel(version string) []int {
	v := strings.TrimPrefix(version, "go")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return nil
	}
	digits := strings.FieldsFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' })
	if len(digits) == 0 {
		return nil
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(digits[0])
	if err1 != nil || err2 != nil {
		return nil
	}
	if major > 1 || minor >= 24 {
		return []int{3, 2, 0}
	}
	return []int{2, 6, 32}
}

func kernelLess(a, b []int) bool {
	for i := range 3 {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// derive turns the scan and config of m into requirements.
func derive(m *Manifest) {
	arch := m.Platform.Architecture
	setKernel := func(k []int, ev Evidence) {
		if k == nil {
			return
		}
		if m.Kernel == nil || kernelLess(m.Kernel, k) {
			m.Kernel, m.KernelEvidence = k, ev
		}
	}
	setLevel := func(l int, ev Evidence) {
		if l > m.X86Level {
			m.X86Level, m.X86Evidence = l, ev
		}
	}
	arm := map[string]bool{}
	for _, f := range m.Scan.ELFs {
		info := f.Info
		if info.Type != 2 && info.Type != 3 { // ET_EXEC, ET_DYN
			continue
		}
		if info.Arch != "" && arch != "" && info.Arch != arch && !(arch == "amd64" && info.Arch == "386") {
			m.Warnings = append(m.Warnings, Evidence{f.Path, fmt.Sprintf("ELF for %s (e_machine %s), the platform is %s: not counted", info.Arch, info.Machine, arch)})
			continue
		}
		if t := info.ABITag; t != nil && t[0] == 0 {
			setKernel([]int{int(t[1]), int(t[2]), int(t[3])}, Evidence{f.Path, fmt.Sprintf(".note.ABI-tag (NT_GNU_ABI_TAG): Linux %d.%d.%d or later", t[1], t[2], t[3])})
		}
		if l := info.X86Level(); l > 0 && arch == "amd64" {
			setLevel(l, Evidence{f.Path, fmt.Sprintf(".note.gnu.property GNU_PROPERTY_X86_ISA_1_NEEDED 0x%x: x86-64-v%d", info.X86ISANeeded, l)})
		}
		if g := info.Go; g != nil {
			setKernel(goKernel(g.Version), Evidence{f.Path, fmt.Sprintf("Go binary built with %s, whose runtime needs Linux %s or later (debug/buildinfo)", g.Version, kernelString(goKernel(g.Version)))})
			if v := g.Settings["GOAMD64"]; arch == "amd64" && len(v) == 2 && v[0] == 'v' && v[1] >= '1' && v[1] <= '4' {
				setLevel(int(v[1]-'0'), Evidence{f.Path, "Go build setting GOAMD64=" + v + " (debug/buildinfo)"})
			}
			if arch == "arm64" {
				v := g.Settings["GOARM64"]
				if v == "" {
					v = "v8.0"
				}
				arm["FP"], arm["ASIMD"] = true, true
				what := "Go build setting GOARM64=" + v + " (debug/buildinfo): FP and ASIMD"
				if base, _, _ := strings.Cut(v, ","); base != "v8.0" || strings.Contains(v, ",lse") {
					arm["ATOMICS"] = true
					what += ", ATOMICS (LSE)"
				}
				if strings.Contains(v, ",crypto") {
					arm["AES"], arm["PMULL"], arm["SHA1"], arm["SHA2"] = true, true, true, true
					what += ", AES, PMULL, SHA1, SHA2"
				}
				if m.Arm64Evidence.Path == "" || !strings.HasPrefix(m.Arm64Evidence.What, "Go") {
					m.Arm64Evidence = Evidence{f.Path, what}
				}
			}
			if c, ok := g.Settings["CGO_ENABLED"]; ok {
				m.Notes = append(m.Notes, Evidence{f.Path, "Go binary (" + g.Version + "), CGO_ENABLED=" + c})
			}
		}
		if arch == "arm64" && !arm["FP"] {
			arm["FP"], arm["ASIMD"] = true, true
			m.Arm64Evidence = Evidence{f.Path, "AArch64 ELF (e_machine EM_AARCH64): the Linux arm64 ABI assumes FP and ASIMD"}
		}
	}
	for h := range arm {
		m.Arm64 = append(m.Arm64, h)
	}
	sort.Strings(m.Arm64)
	if arch == "amd64" && m.X86Level == 0 {
		m.X86Level, m.X86Evidence = 1, Evidence{"manifest", "platform " + oci.FormatPlatform(&m.Platform) + " and no binary needing more: the x86-64 baseline"}
	}
	if v := m.Platform.Variant; arch == "amd64" && len(v) == 2 && v[0] == 'v' && int(v[1]-'0') > m.X86Level {
		m.Warnings = append(m.Warnings, Evidence{"manifest", fmt.Sprintf("platform variant %s, but the binaries read need only x86-64-v%d", v, m.X86Level)})
	}
}

func kernelString(k []int) string {
	if k == nil {
		return "?"
	}
	return fmt.Sprintf("%d.%d.%d", k[0], k[1], k[2])
}
