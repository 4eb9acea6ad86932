package decide_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/host"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/spec"
)

var (
	v1Flags = []string{"CMOV", "CMPXCHG8", "FXSR", "MMX", "SSE", "SSE2", "X87", "SYSCALL"}
	v2Flags = append(append([]string(nil), v1Flags...), "CX16", "LAHF", "POPCNT", "SSE3", "SSE4", "SSE42", "SSSE3")
	v3Flags = append(append([]string(nil), v2Flags...), "AVX", "AVX2", "BMI1", "BMI2", "F16C", "FMA3", "LZCNT", "MOVBE", "OSXSAVE")
	v4Flags = append(append([]string(nil), v3Flags...), "AVX512F", "AVX512BW", "AVX512CD", "AVX512DQ", "AVX512VL")
)

// machine returns the features of a linux host of arch with cpuid flags and kernel major version.
func machine(arch string, kernel string, flags ...string) *host.Features {
	f := nfdv1alpha1.NewFeatures()
	f.Flags["cpu.cpuid"] = nfdv1alpha1.NewFlagFeatures(flags...)
	f.Attributes["kernel.version"] = nfdv1alpha1.AttributeFeatureSet{Elements: map[string]string{"major": kernel}}
	if arch != "" {
		f.Attributes[host.PlatformFeature] = nfdv1alpha1.AttributeFeatureSet{Elements: map[string]string{"os": "linux", "arch": arch}}
	}
	return f
}

// flagSpec requires the cpuid flags, with weight.
func flagSpec(weight int, tag string, flags ...string) *spec.Spec {
	exprs := map[string]*spec.MatchExpression{}
	for _, f := range flags {
		exprs[f] = &spec.MatchExpression{Op: spec.OpExists}
	}
	return &spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{{Weight: weight, Tag: tag, Rules: []spec.Rule{{
		Name: "cpu " + tag, MatchFeatures: []spec.FeatureMatcherTerm{{Feature: "cpu.cpuid", MatchExpressions: exprs}}}}}}}
}

// kernelSpec requires a kernel major version above n.
func kernelSpec(weight int, n string) *spec.Spec {
	return &spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{{Weight: weight, Rules: []spec.Rule{{
		Name: "kernel", MatchFeatures: []spec.FeatureMatcherTerm{{Feature: "kernel.version",
			MatchExpressions: map[string]*spec.MatchExpression{"major": {Op: spec.OpGt, Value: []string{n}}}}}}}}}}
}

type layout struct {
	t   *testing.T
	dir string
	img testregistry.Image
	tg  *oci.Target
}

func newLayout(t *testing.T, sh testregistry.Shape) *layout {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	img := testregistry.WriteShapeLayout(t, dir, "1.0", sh)
	tg, err := oci.Open(context.Background(), dir+":1.0", oci.Options{OCILayout: true})
	if err != nil {
		t.Fatal(err)
	}
	return &layout{t: t, dir: dir, img: img, tg: tg}
}

func (l *layout) attach(subject ocispec.Descriptor, s *spec.Spec, created time.Time) ocispec.Descriptor {
	l.t.Helper()
	d, err := l.tg.PushSpec(context.Background(), subject, s, nil, created)
	if err != nil {
		l.t.Fatal(err)
	}
	return d
}

func (l *layout) decide(h decide.Host, opts decide.Options) *decide.Decision {
	l.t.Helper()
	// A fresh Target and Image each time, as a new process would read it.
	tg, err := oci.Open(context.Background(), l.dir+":1.0", oci.Options{OCILayout: true})
	if err != nil {
		l.t.Fatal(err)
	}
	img, err := decide.Open(context.Background(), tg, nil)
	if err != nil {
		l.t.Fatal(err)
	}
	d, err := img.Decide(context.Background(), h, opts)
	if err != nil {
		l.t.Fatal(err)
	}
	return d
}

func selected(d *decide.Decision) string {
	if d.Selected == nil {
		return "none"
	}
	if d.Selected.Platform == "" {
		return "manifest"
	}
	return d.Selected.Platform
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var amd64v1, amd64v3, arm64 = ocispec.Platform{OS: "linux", Architecture: "amd64"}, ocispec.Platform{OS: "linux", Architecture: "amd64", Variant: "v3"}, ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}

// TestPlatformIsARequirement: without any spec, the host's x86-64 level picks the entry.
func TestPlatformIsARequirement(t *testing.T) {
	l := newLayout(t, testregistry.Shape{})
	for _, tc := range []struct {
		name  string
		f     *host.Features
		opts  decide.Options
		want  string
		score int
	}{
		{"v4 host gets v3", machine("amd64", "6", v4Flags...), decide.Options{}, "linux/amd64/v3", 0},
		{"v3 host gets v3", machine("amd64", "6", v3Flags...), decide.Options{}, "linux/amd64/v3", 0},
		{"no AVX2 gets v1", machine("amd64", "6", v2Flags...), decide.Options{}, "linux/amd64", 0},
		{"arm64 gets arm64", machine("arm64", "6", "FP", "ASIMD"), decide.Options{}, "linux/arm64/v8", 0},
		{"--platform linux/amd64/v2 on a v4 host: the best a v2 host runs", machine("amd64", "6", v4Flags...), decide.Options{Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64", Variant: "v2"}}, "linux/amd64", 0},
		{"--platform linux/amd64/v3 on a v2 host: v3 does not run, v1 does", machine("amd64", "6", v2Flags...), decide.Options{Platform: &amd64v3}, "linux/amd64", 0},
		{"pinned linux/amd64/v3 on a v2 host: not compatible", machine("amd64", "6", v2Flags...), decide.Options{Platform: &amd64v3, PinPlatform: true}, "none", 0},
		{"pinned linux/amd64 on a v3 host: as this host, the v3 build", machine("amd64", "6", v3Flags...), decide.Options{Platform: &amd64v1, PinPlatform: true}, "linux/amd64/v3", 0},
		{"pinned linux/amd64/v1 on a v3 host: the v1 build", machine("amd64", "6", v3Flags...), decide.Options{Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64", Variant: "v1"}, PinPlatform: true}, "linux/amd64", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := l.decide(decide.NewHost("test", tc.f, nil), tc.opts)
			if got := selected(d); got != tc.want {
				t.Fatalf("selected %s, want %s (%s)", got, tc.want, d.Why())
			}
			if d.Selected != nil && d.Selected.Verdict != decide.NoSpec {
				t.Fatalf("verdict %s, want nospec", d.Selected.Verdict)
			}
			if tc.want == "none" && !strings.Contains(d.Why(), "needs an x86-64-v3 CPU") || tc.want == "none" && !strings.Contains(d.Why(), "without AVX") {
				t.Fatalf("reason %q does not say the host lacks x86-64-v3", d.Why())
			}
		})
	}

	// A v3-only index on a host without AVX2: nothing fits, and it says why.
	only := newLayout(t, testregistry.Shape{Platforms: []ocispec.Platform{amd64v3}})
	d := only.decide(decide.NewHost("old", machine("amd64", "6", v2Flags...), nil), decide.Options{})
	if d.Selected != nil || len(d.Candidates) != 1 || d.Candidates[0].Verdict != decide.Incompatible || !strings.Contains(d.Candidates[0].Reason, "AVX2") {
		t.Fatalf("v3-only index on a v2 host: %+v", d.Candidates)
	}
	// Nothing for the architecture at all.
	d = only.decide(decide.NewHost("arm", machine("arm64", "6"), nil), decide.Options{})
	if d.Selected != nil || len(d.Candidates) != 0 || !strings.Contains(d.Why(), "no manifest for linux/arm64/v8 (the index has linux/amd64/v3)") {
		t.Fatalf("arm64 host on an amd64 index: %s", d.Why())
	}
}

// TestScoreRule: the score is the manifest's own spec's; the index spec must hold too.
func TestScoreRule(t *testing.T) {
	for _, tc := range []struct {
		name          string
		v1, v3, index *spec.Spec
		f             *host.Features
		want          string
		verdict       decide.Verdict
		score         int
		reasonHas     string
	}{
		{"manifest 90 and index 40: 90", nil, flagSpec(90, "v3", "AVX2"), flagSpec(40, "idx", "SSE2"), machine("amd64", "6", v3Flags...), "linux/amd64/v3", decide.Compatible, 90, ""},
		{"no own spec: the index's score", nil, nil, flagSpec(40, "idx", "SSE2"), machine("amd64", "6", v3Flags...), "linux/amd64/v3", decide.Compatible, 40, ""},
		{"a failing index spec fails every manifest", flagSpec(50, "v1", "SSE2"), flagSpec(90, "v3", "AVX2"), kernelSpec(0, "9"), machine("amd64", "6", v3Flags...), "none", decide.Incompatible, 0, "index spec"},
		{"a spec'd manifest outranks one without a spec", flagSpec(10, "v1", "SSE2"), nil, nil, machine("amd64", "6", v3Flags...), "linux/amd64", decide.Compatible, 10, ""},
		{"equal scores: the closer platform", flagSpec(50, "v1", "SSE2"), flagSpec(50, "v3", "AVX2"), nil, machine("amd64", "6", v3Flags...), "linux/amd64/v3", decide.Compatible, 50, ""},
		{"higher weight wins over the closer platform", flagSpec(70, "v1", "SSE2"), flagSpec(50, "v3", "AVX2"), nil, machine("amd64", "6", v3Flags...), "linux/amd64", decide.Compatible, 70, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLayout(t, testregistry.Shape{})
			if tc.v1 != nil {
				l.attach(l.img.Manifests[0], tc.v1, t0)
			}
			if tc.v3 != nil {
				l.attach(l.img.Manifests[1], tc.v3, t0)
			}
			if tc.index != nil {
				l.attach(l.img.Index, tc.index, t0)
			}
			d := l.decide(decide.NewHost("h", tc.f, nil), decide.Options{})
			if got := selected(d); got != tc.want {
				t.Fatalf("selected %s, want %s (%s)", got, tc.want, d.Why())
			}
			b := d.Best()
			if b.Verdict != tc.verdict || b.Score != tc.score || !strings.Contains(b.Reason, tc.reasonHas) {
				t.Fatalf("best: verdict %s score %d reason %q; want %s %d %q", b.Verdict, b.Score, b.Reason, tc.verdict, tc.score, tc.reasonHas)
			}
		})
	}
}

// TestUnreadableIsolated: a spec that cannot be read makes its manifest unreadable; the others
// are still chosen, and nothing is ever "no spec" after an error.
func TestUnreadableIsolated(t *testing.T) {
	l := newLayout(t, testregistry.Shape{})
	l.attach(l.img.Manifests[0], flagSpec(50, "v1", "SSE2"), t0)
	ref := l.attach(l.img.Manifests[1], flagSpec(90, "v3", "AVX2"), t0.Add(time.Hour))
	// Remove the newer spec's blob from the layout: the referrer is listed, its spec is gone.
	m, err := l.tg.FetchManifest(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	blob := filepath.Join(l.dir, "blobs", "sha256", m.Layers[0].Digest.Encoded())
	if err := os.Remove(blob); err != nil {
		t.Fatal(err)
	}
	d := l.decide(decide.NewHost("h", machine("amd64", "6", v3Flags...), nil), decide.Options{})
	if got := selected(d); got != "linux/amd64" {
		t.Fatalf("selected %s, want the readable v1 build", got)
	}
	var v3 *decide.Candidate
	for i := range d.Candidates {
		if d.Candidates[i].Platform == "linux/amd64/v3" {
			v3 = &d.Candidates[i]
		}
	}
	if v3 == nil || v3.Verdict != decide.Unreadable || !strings.Contains(v3.Reason, m.Layers[0].Digest.String()) {
		t.Fatalf("v3 candidate: %+v", v3)
	}

	// Pinned to the unreadable one: unknown, not "compatible".
	d = l.decide(decide.NewHost("h", machine("amd64", "6", v3Flags...), nil), decide.Options{Platform: &amd64v3, PinPlatform: true})
	if d.Selected != nil || !d.Unreadable() {
		t.Fatalf("pinned to an unreadable manifest: selected %v", d.Selected)
	}
}

// TestNestedDockerAttestations: Docker manifest lists, nested indexes and BuildKit attestation
// entries.
func TestNestedDockerAttestations(t *testing.T) {
	for _, sh := range []testregistry.Shape{{Docker: true}, {Nested: true}, {Attestation: true}, {Nested: true, Docker: true, Attestation: true}} {
		l := newLayout(t, sh)
		l.attach(l.img.Manifests[1], flagSpec(90, "v3", "AVX2"), t0)
		if sh.Nested {
			l.attach(l.img.Nested, kernelSpec(0, "4"), t0)
		}
		d := l.decide(decide.NewHost("h", machine("amd64", "6", v3Flags...), nil), decide.Options{})
		if got := selected(d); got != "linux/amd64/v3" || d.Selected.Score != 90 {
			t.Fatalf("%+v: selected %s", sh, got)
		}
		if sh.Nested && (len(d.Selected.Specs) != 3 || d.Selected.Specs[1].Subject.Digest != l.img.Nested.Digest) {
			t.Fatalf("%+v: the nested index's spec does not apply: %+v", sh, d.Selected.Specs)
		}
		old := l.decide(decide.NewHost("h", machine("amd64", "3", v3Flags...), nil), decide.Options{})
		if sh.Nested && old.Selected != nil {
			t.Fatalf("%+v: the nested index's kernel spec was not required: %s", sh, selected(old))
		}
		for _, c := range d.Candidates {
			if strings.Contains(c.Platform, "unknown") {
				t.Fatalf("%+v: attestation entry is a candidate", sh)
			}
		}
		_, err := l.decideErr(decide.NewHost("h", machine("amd64", "6"), nil), decide.Options{Platform: &ocispec.Platform{OS: "unknown", Architecture: "unknown"}})
		if err == nil {
			t.Fatalf("--platform unknown/unknown accepted")
		}
	}
}

func (l *layout) decideErr(h decide.Host, opts decide.Options) (*decide.Decision, error) {
	tg, err := oci.Open(context.Background(), l.dir+":1.0", oci.Options{OCILayout: true})
	if err != nil {
		return nil, err
	}
	img, err := decide.Open(context.Background(), tg, nil)
	if err != nil {
		return nil, err
	}
	return img.Decide(context.Background(), h, opts)
}

// TestHostPlatformNeverGuessed: features without a platform are an error for an index, unless a
// platform is given.
func TestHostPlatformNeverGuessed(t *testing.T) {
	l := newLayout(t, testregistry.Shape{})
	_, err := l.decideErr(decide.NewHost("nfd.json", machine("", "6", v3Flags...), nil), decide.Options{})
	if !errors.Is(err, decide.ErrNoHostPlatform) {
		t.Fatalf("no platform: %v, want ErrNoHostPlatform", err)
	}
	h := decide.NewHost("nfd.json", machine("", "6", v3Flags...), &amd64v1)
	if h.Platform.Variant != "v3" {
		t.Fatalf("fallback linux/amd64 on v3 flags: %+v", h.Platform)
	}
	d := l.decide(h, decide.Options{})
	if selected(d) != "linux/amd64/v3" {
		t.Fatalf("selected %s", selected(d))
	}
	// A single manifest has no platform to check: no error.
	single := newLayout(t, testregistry.Shape{Platforms: []ocispec.Platform{amd64v1}})
	tg, _ := oci.Open(context.Background(), single.dir+"@"+single.img.Manifests[0].Digest.String(), oci.Options{OCILayout: true})
	img, err := decide.Open(context.Background(), tg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := img.Decide(context.Background(), decide.NewHost("nfd.json", machine("", "6"), nil), decide.Options{}); err != nil || selected(d) != "manifest" {
		t.Fatalf("single manifest: %v %v", d, err)
	}
}

// TestNamed: naming one entry of an index for attach, sign, fetch, discover --platform.
func TestNamed(t *testing.T) {
	amd := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: "sha256:aaaa", Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}}
	v3 := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: "sha256:bbbb", Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64", Variant: "v3"}}
	arm := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: "sha256:cccc", Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}
	att := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: "sha256:dddd", Platform: &ocispec.Platform{OS: "unknown", Architecture: "unknown"}}
	image := func(ds ...ocispec.Descriptor) *decide.Image {
		tr := &oci.Tree{Root: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: "sha256:ffff"}}
		tr.Indexes = []ocispec.Descriptor{tr.Root}
		for i, d := range ds {
			tr.Manifests = append(tr.Manifests, oci.IndexEntry{Descriptor: d, Indexes: tr.Indexes, Position: i})
		}
		return decide.NewImage("reg/app", tr, nil, nil)
	}
	for _, order := range [][]ocispec.Descriptor{{amd, v3, arm, att}, {v3, amd, arm}, {att, arm, v3, amd}} {
		img := image(order...)
		for p, want := range map[string]string{"linux/amd64": "sha256:aaaa", "linux/amd64/v1": "sha256:aaaa", "linux/amd64/v3": "sha256:bbbb", "linux/arm64": "sha256:cccc", "linux/arm64/v8": "sha256:cccc"} {
			got, err := img.Named(p)
			if err != nil || got.Descriptor.Digest.String() != want {
				t.Errorf("order %v: Named(%s) = %s, %v; want %s", order[0].Digest, p, got.Descriptor.Digest, err, want)
			}
		}
		_, err := img.Named("linux/s390x")
		if !errors.Is(err, oci.ErrNoPlatform) || !strings.Contains(err.Error(), "linux/amd64/v3") || !strings.Contains(err.Error(), "linux/arm64/v8") || strings.Contains(err.Error(), "unknown") {
			t.Errorf("Named(linux/s390x) error = %v", err)
		}
		if _, err := img.Named("unknown/unknown"); err == nil {
			t.Errorf("an attestation entry was named")
		}
	}
	// Without an exact match, a platform without variant names the first of its os/arch.
	if got, err := image(v3).Named("linux/amd64"); err != nil || got.Descriptor.Digest != v3.Digest {
		t.Errorf("wildcard fallback = %v, %v", got.Descriptor.Digest, err)
	}
	// A variant asked for is never dropped.
	if _, err := image(amd).Named("linux/amd64/v3"); !errors.Is(err, oci.ErrNoPlatform) {
		t.Errorf("linux/amd64/v3 against amd64 only: %v", err)
	}
}

// TestFallbackPlatformFromLabels: a Node without kubernetes.io/arch, given --platform linux/amd64,
// is read as a Node with the label: the flags NFD does not label are inferred, the level comes
// from the labelled ones, and specs see compatkit.platform.
func TestFallbackPlatformFromLabels(t *testing.T) {
	labels := map[string]string{}
	for _, f := range []string{"AVX", "AVX2", "FMA3", "MOVBE", "OSXSAVE", "LAHF", "X87"} {
		labels[host.NFDLabelPrefix+"cpu-cpuid."+f] = "true"
	}
	f := host.FeaturesFromLabels(labels)
	h := decide.NewHost("node noarch", f, &amd64v1)
	if got := oci.FormatPlatform(&h.Platform); got != "linux/amd64/v3" {
		t.Fatalf("platform %s, want linux/amd64/v3", got)
	}
	if _, ok := f.Attributes[host.PlatformFeature]; ok {
		t.Fatalf("NewHost modified the features it was given")
	}
	l := newLayout(t, testregistry.Shape{})
	archSpec := &spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{{Weight: 70, Rules: []spec.Rule{{Name: "arch",
		MatchFeatures: []spec.FeatureMatcherTerm{{Feature: spec.LocalFeatureSet, MatchExpressions: map[string]*spec.MatchExpression{
			"compatkit.platform.arch": {Op: spec.OpIn, Value: []string{"amd64"}}}}}}}}}}
	l.attach(l.img.Manifests[1], archSpec, t0)
	d := l.decide(h, decide.Options{Platform: &amd64v1})
	if selected(d) != "linux/amd64/v3" || d.Selected.Score != 70 {
		t.Fatalf("selected %s (%s)", selected(d), d.Why())
	}
}
