package decide

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"

	"github.com/compatkit/compatkit/pkg/host"
	"github.com/compatkit/compatkit/pkg/match"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/spec"
)

// Host is a host a decision is made for: its features and its platform.
type Host struct {
	// Name says which host in messages: "this host", a feature file, "node worker-3".
	Name string
	// Features are the host's features (NFD's Features, pkg/host).
	Features *host.Features
	// Platform is the host's platform with its variant (host.Platform). The zero value means
	// unknown, which is an error for an image index (ErrNoHostPlatform).
	Platform ocispec.Platform
}

// NewHost returns the Host whose features are f, named name, with the platform the features
// give (host.Platform). When they give none, fallback's os and architecture stand in (on amd64,
// its variant caps the x86-64 level the cpuid flags show): the host's features are then a copy of
// f with the compatkit.platform attribute set (and its local.feature form, so that specs see it),
// and on amd64 the cpuid flags NFD does not label inferred from those it does
// (host.InferUnlabelledCPUID), as for a Node read with its kubernetes.io/arch label. Without a
// fallback the platform stays unknown. The host's platform is never guessed from the machine
// compatkit runs on.
func NewHost(name string, f *host.Features, fallback *ocispec.Platform) Host {
	h := Host{Name: name, Features: f}
	if p, err := host.Platform(f); err == nil {
		h.Platform = p
		return h
	}
	if fallback == nil || fallback.Architecture == "" {
		return h
	}
	var c *host.Features
	if f != nil {
		c = f.DeepCopy()
	} else {
		c = nfdv1alpha1.NewFeatures()
	}
	fb := *fallback
	fb.Variant = "" // set below: the flags say the level
	host.SetPlatform(c, fb)
	if platforms.Normalize(fb).Architecture == "amd64" {
		host.InferUnlabelledCPUID(c)
	}
	p, err := host.Platform(c)
	if err != nil {
		return h
	}
	if fallback.Variant != "" {
		// The given variant caps what the flags show (host.Platform's rule).
		host.SetPlatform(c, *fallback)
		if capped, err := host.Platform(c); err == nil {
			p = capped
		}
	}
	host.SetPlatform(c, p)
	host.MirrorCompatkit(c)
	h.Features, h.Platform = c, p
	return h
}

// AnnotationMode says whether specs copied into an index's annotations (compat-attach annotate)
// are used. Annotations are never used under a trust policy: they carry no signature.
type AnnotationMode int

const (
	// AnnotationsVerify (the default) reads the referrers and notes every annotation that
	// disagrees with them (Decision.Notes): the referrers decide, so a spec attached after
	// `annotate` counts.
	AnnotationsVerify AnnotationMode = iota
	// AnnotationsIgnore always reads the referrers and ignores the annotations.
	AnnotationsIgnore
	// AnnotationsUse takes the specs from the index's annotations when the index and every
	// candidate manifest are annotated: a decision then costs the index request alone, but a spec
	// attached after the annotations were written is not seen (opt in where that is known not to
	// happen).
	AnnotationsUse
)

// Evaluator evaluates spec s on features f. Decisions call it once per spec that applies to a
// candidate; report passes a cached one. It must not modify its arguments.
type Evaluator func(s *spec.Spec, f *host.Features) (*match.Result, error)

// Options tune a decision. The zero value decides for the host's own platform, with no trust
// policy and no runtime restriction, and uses index annotations when present.
type Options struct {
	// Platform is the platform asked for (a --platform flag): only the index entries a host of
	// this platform runs are candidates (containerd's matching), and each must run on the actual
	// host too. nil means the host's platform.
	Platform *ocispec.Platform
	// PinPlatform keeps, of those entries, only the ones closest to Platform (what a runtime
	// pulling that platform gets): `check --platform` checks that manifest, where select ranks
	// every entry the platform runs.
	PinPlatform bool
	// RequireTrusted, under a trust policy (the Image's Reader), makes a manifest that no trusted
	// spec covers (neither its own nor an index's: unsigned, stripped, untrusted or absent) not
	// compatible. Without it, such a manifest is treated as one without a spec.
	RequireTrusted bool
	// AllowedRuntimes lists the runtime handlers the administrator allows (runc, nvidia, ...): a
	// compatibility set that needs another does not count (match.RestrictRuntimes), and the
	// chosen candidate names the runtime its best set needs. Empty: runtimes are not considered.
	AllowedRuntimes []string
	// Annotations says whether index annotations are used (AnnotationsVerify by default: the
	// referrers decide).
	Annotations AnnotationMode
	// Evaluate evaluates a spec; nil compiles it once per Image with match.Compile and evaluates
	// with explanations (match.Program.Evaluate).
	Evaluate Evaluator
}

// Verdict is the outcome of one candidate manifest on one host.
type Verdict string

// The verdicts of a candidate.
const (
	// Compatible: every spec that applies matches (at least one does apply).
	Compatible Verdict = "compatible"
	// NoSpec: no spec applies (none attached, or under a policy without RequireTrusted, none
	// trusted): the manifest runs, as on runtimes without compatkit.
	NoSpec Verdict = "nospec"
	// Incompatible: the host cannot run the manifest's platform, a spec that applies has no
	// matching compatibility set, or (RequireTrusted) no trusted spec covers it.
	Incompatible Verdict = "incompatible"
	// Unreadable: a spec that applies could not be read or evaluated; nothing is known.
	Unreadable Verdict = "unreadable"
)

// Runs reports whether a manifest with this verdict may be given to the host.
func (v Verdict) Runs() bool { return v == Compatible || v == NoSpec }

// AppliedSpec is one subject whose spec applies to a candidate, and the evaluation of that spec.
type AppliedSpec struct {
	// Role is "manifest" for the candidate's own spec, "index" for the spec of an index that lists
	// it (nearest index first).
	Role string `json:"role"`
	*SubjectSpec
	// Result is the evaluation of the spec on the host (State SpecFound).
	Result *match.Result `json:"result,omitempty"`
}

// Candidate is one manifest of the image with its outcome on the host.
type Candidate struct {
	// Manifest is the manifest's descriptor as its index lists it (for a single manifest, the
	// resolved descriptor).
	Manifest ocispec.Descriptor `json:"manifest"`
	// Platform is the manifest's platform ("os/arch[/variant]"); "" for a single manifest, whose
	// platform (in its config, which is never fetched) is not checked.
	Platform string `json:"platform,omitempty"`
	// Position is the manifest's place in the index tree (depth first).
	Position int `json:"position"`
	// Verdict is the outcome.
	Verdict Verdict `json:"verdict"`
	// Score ranks compatible candidates (see the package documentation: the score rule).
	Score int `json:"score"`
	// Runtime is the allowed runtime handler the best set needs (Options.AllowedRuntimes).
	Runtime string `json:"runtime,omitempty"`
	// Reason says on one line why the candidate is not Compatible; for NoSpec, why no spec
	// applies when specs were attached but not trusted.
	Reason string `json:"reason,omitempty"`
	// Specs are the subjects whose specs apply: the manifest's own first, then the indexes above
	// it, nearest first. Empty when the platform does not fit (nothing was read).
	Specs []AppliedSpec `json:"specs,omitempty"`

	platform *ocispec.Platform
}

// HasSpec reports whether a spec applies to the candidate (its own or an index's).
func (c *Candidate) HasSpec() bool {
	for _, a := range c.Specs {
		if a.State == SpecFound {
			return true
		}
	}
	return false
}

// Decision is the outcome of an image on a host: the candidate manifests ranked best first, and
// the one selected.
type Decision struct {
	// Image is the repository or layout path.
	Image string `json:"image"`
	// Root is what the reference resolved to.
	Root ocispec.Descriptor `json:"root"`
	// Host names the host; HostPlatform is its platform ("" when unknown).
	Host         string `json:"host"`
	HostPlatform string `json:"hostPlatform,omitempty"`
	// Platform is the platform the candidates were chosen for (Options.Platform or the host's).
	Platform string `json:"platform,omitempty"`
	// Candidates are ranked best first (the rule in the package documentation). For an index they
	// are the manifests of Platform's os and architecture; entries of other platforms are left out.
	Candidates []Candidate `json:"candidates"`
	// Selected is the first candidate when it may run on the host, nil when none may.
	Selected *Candidate `json:"selected,omitempty"`
	// Available lists the index's platforms (for messages when nothing is a candidate).
	Available []string `json:"available,omitempty"`
	// Notes are remarks that do not change the outcome (index annotations that disagree with the
	// referrers).
	Notes []string `json:"notes,omitempty"`

	describe string // the index's platforms, for Why
}

// Unreadable reports whether some candidate is Unreadable: when nothing is selected, the outcome
// is then unknown rather than "not compatible".
func (d *Decision) Unreadable() bool {
	for _, c := range d.Candidates {
		if c.Verdict == Unreadable {
			return true
		}
	}
	return false
}

// Best returns the first candidate (the selected one, or when none runs the closest one, whose
// Reason explains), nil when there is no candidate.
func (d *Decision) Best() *Candidate {
	if len(d.Candidates) == 0 {
		return nil
	}
	return &d.Candidates[0]
}

// Why says on one line why nothing was selected ("" when something was).
func (d *Decision) Why() string {
	if d.Selected != nil {
		return ""
	}
	if len(d.Candidates) == 0 {
		return fmt.Sprintf("the index has no manifest for %s (%s)", d.Platform, d.describe)
	}
	var why []string
	for _, c := range d.Candidates {
		p := c.Platform
		if p == "" {
			p = "manifest"
		}
		why = append(why, p+": "+c.Reason)
	}
	return strings.Join(why, "; ")
}

// Decide decides for host h: which manifests of the image are candidates, what applies to each,
// their verdicts and scores, and their ranking (see the package documentation). It reads the
// specs it needs (each subject once per Image; none for a candidate whose platform the host
// cannot run) and returns an error only for what concerns the whole decision: a host without a
// platform for an index (ErrNoHostPlatform), an invalid Options.Platform, or ctx's end. A spec
// that cannot be read makes its candidates Unreadable.
func (img *Image) Decide(ctx context.Context, h Host, opts Options) (*Decision, error) {
	if opts.RequireTrusted && img.reader.verifier == nil {
		return nil, ErrRequireTrustedWithoutPolicy
	}
	d := &Decision{Image: img.Name, Root: img.Tree.Root, Host: h.Name}
	if h.Platform.Architecture != "" {
		d.HostPlatform = oci.FormatPlatform(&h.Platform)
	}
	var cands []Candidate
	if !img.Tree.IsIndex() {
		cands = []Candidate{{Manifest: img.Tree.Root}}
		if opts.Platform != nil {
			d.Notes = append(d.Notes, fmt.Sprintf("%s is a single manifest: its platform is in its config, which is not fetched, so the platform asked for is not checked", img.Ref(img.Tree.Root)))
		}
	} else {
		if h.Platform.Architecture == "" {
			return nil, fmt.Errorf("%w: %s is an image index and the platform of %s is unknown", ErrNoHostPlatform, img.Ref(img.Tree.Root), h.Name)
		}
		if opts.Platform != nil {
			if err := ValidatePlatform(*opts.Platform); err != nil {
				return nil, err
			}
		}
		w := want(h, opts)
		d.Platform = oci.FormatPlatform(&w)
		d.Available, d.describe = img.Platforms(), img.describePlatforms()
		cands = img.candidates(h, w, opts.PinPlatform)
	}
	// Read what applies to the candidates the host can run, all at once.
	var subjects []ocispec.Descriptor
	for i := range cands {
		if cands[i].Verdict == "" {
			subjects = append(subjects, img.appliesTo(&cands[i])...)
		}
	}
	specs := img.specsOf(ctx, dedupe(subjects), &opts, &d.Notes)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	byDigest := map[string]*SubjectSpec{}
	for _, s := range specs {
		byDigest[s.Subject.Digest.String()] = s
	}
	eval := opts.Evaluate
	if eval == nil {
		eval = func(s *spec.Spec, f *host.Features) (*match.Result, error) {
			p, err := img.program(s)
			if err != nil {
				return nil, err
			}
			return p.Evaluate(f)
		}
	}
	for i := range cands {
		c := &cands[i]
		if c.Verdict != "" {
			continue // the platform does not fit
		}
		for j, sub := range img.appliesTo(c) {
			role := "index"
			if j == 0 {
				role = "manifest"
			}
			ss := byDigest[sub.Digest.String()]
			c.Specs = append(c.Specs, AppliedSpec{Role: role, SubjectSpec: ss})
			if ss != nil && ss.Unlisted {
				d.Notes = append(d.Notes, fmt.Sprintf("the referrers listing of %s does not show its newest signed spec %s (found through its signature): the listing is stale, or someone hid the spec", img.Ref(sub), img.Ref(ss.Referrer)))
			}
		}
		if !img.Tree.IsIndex() {
			signedPlatform(c, h)
		}
		if c.Verdict == "" {
			judge(c, h, &opts, eval)
		}
	}
	rank(cands, want(h, opts))
	d.Candidates = cands
	if len(cands) > 0 && cands[0].Verdict.Runs() {
		d.Selected = &d.Candidates[0]
	}
	return d, nil
}

// signedPlatform applies, to a single manifest, the platform its verified spec is signed for: no
// index states its platform, so the signature's is the requirement (the host must run it).
func signedPlatform(c *Candidate, h Host) {
	if len(c.Specs) == 0 || c.Specs[0].SubjectSpec == nil || c.Specs[0].Platform == "" {
		return
	}
	sp, err := oci.ParsePlatform(c.Specs[0].Platform)
	if err != nil {
		return
	}
	c.Platform, c.platform = c.Specs[0].Platform, &sp
	if h.Platform.Architecture != "" && !newPlatformMatcher(h.Platform).runs(&sp) {
		c.Verdict, c.Reason = Incompatible, fmt.Sprintf("its spec is signed for platform %s, which a %s host does not run", c.Platform, oci.FormatPlatform(&h.Platform))
	}
}

// want is the platform the candidates are chosen for: Options.Platform, else the host's. A
// platform without a variant, of the host's os and architecture, means "as this host": it gets the
// host's variant (linux/amd64 on an x86-64-v3 host is linux/amd64/v3); give the variant to ask for
// less (linux/amd64/v1).
func want(h Host, opts Options) ocispec.Platform {
	if opts.Platform == nil {
		return h.Platform
	}
	p := *opts.Platform
	if p.Variant == "" {
		n, hn := platforms.Normalize(p), platforms.Normalize(h.Platform)
		if n.OS == hn.OS && n.Architecture == hn.Architecture {
			p.Variant = h.Platform.Variant
		}
	}
	return p
}

// candidates lists the index's manifests a host of platform want may get, and those of want's os
// and architecture that it cannot run (Incompatible at once, so that the output says why).
func (img *Image) candidates(h Host, want ocispec.Platform, pin bool) []Candidate {
	wm, hm := newPlatformMatcher(want), newPlatformMatcher(h.Platform)
	var out []Candidate
	for _, e := range img.Tree.Manifests {
		if e.Attestation() {
			continue
		}
		p := e.Descriptor.Platform
		runs := wm.runs(p)
		if !runs && !wm.sameFamily(p) {
			continue // another platform altogether
		}
		c := Candidate{Manifest: e.Descriptor, Platform: oci.FormatPlatform(p), Position: e.Position, platform: p}
		switch {
		case !hm.runs(p):
			c.Verdict, c.Reason = Incompatible, platformMismatch(h.Platform, p, h.Features)
		case !runs:
			c.Verdict, c.Reason = Incompatible, fmt.Sprintf("platform %s is not one a %s host runs (the platform asked for)", c.Platform, oci.FormatPlatform(&want))
		}
		out = append(out, c)
	}
	if !pin {
		return out
	}
	// Only the entries the platform asked for matches best (containerd's order).
	var best *ocispec.Platform
	for _, c := range out {
		if wm.runs(c.platform) && (best == nil || wm.prefers(c.platform, best)) {
			best = c.platform
		}
	}
	var kept []Candidate
	for _, c := range out {
		if best != nil && wm.runs(c.platform) && !wm.prefers(best, c.platform) {
			kept = append(kept, c)
		}
	}
	return kept
}

// appliesTo lists the subjects whose specs apply to c: its manifest, then the indexes above it,
// nearest first.
func (img *Image) appliesTo(c *Candidate) []ocispec.Descriptor {
	out := []ocispec.Descriptor{c.Manifest}
	if !img.Tree.IsIndex() {
		return out
	}
	e := img.Tree.Manifests[c.Position]
	for i := len(e.Indexes) - 1; i >= 0; i-- {
		out = append(out, e.Indexes[i])
	}
	return out
}

func dedupe(ds []ocispec.Descriptor) []ocispec.Descriptor {
	seen := map[string]bool{}
	var out []ocispec.Descriptor
	for _, d := range ds {
		if !seen[d.Digest.String()] {
			seen[d.Digest.String()] = true
			out = append(out, d)
		}
	}
	return out
}

// judge sets c's verdict, score, reason and runtime from its applied specs: the one rule every
// command uses (see the package documentation).
func judge(c *Candidate, h Host, opts *Options, eval Evaluator) {
	var unreadable, untrusted []string
	trusted := false
	var scored *AppliedSpec
	for i := range c.Specs {
		a := &c.Specs[i]
		switch a.State {
		case SpecUnreadable:
			unreadable = append(unreadable, fmt.Sprintf("%s spec: %v", a.Role, a.Err))
			continue
		case SpecUntrusted:
			untrusted = append(untrusted, a.Role)
			continue
		case SpecNone:
			continue
		}
		res, err := eval(a.Spec, h.Features)
		if err != nil {
			unreadable = append(unreadable, fmt.Sprintf("%s spec %s: %v", a.Role, a.Referrer.Digest, err))
			continue
		}
		res = match.RestrictRuntimes(a.Spec, res, opts.AllowedRuntimes)
		a.Result = res
		trusted = trusted || a.Verified
		if !res.Compatible {
			if c.Verdict != Incompatible {
				c.Verdict, c.Reason = Incompatible, a.Role+" spec: "+res.Why()
			}
			continue
		}
		if scored == nil {
			scored = a
		}
	}
	switch {
	case c.Verdict == Incompatible:
		c.Score = 0
		return
	case len(unreadable) > 0:
		c.Verdict, c.Reason = Unreadable, strings.Join(unreadable, "; ")
		return
	case opts.RequireTrusted && !trusted:
		c.Verdict, c.Reason = Incompatible, "no trusted spec (required): "+noTrustedReason(c)
		return
	case scored == nil:
		c.Verdict = NoSpec
		if len(untrusted) > 0 {
			c.Reason = "no trusted spec: " + noTrustedReason(c) + "; treated as an image without a spec"
		}
		return
	}
	c.Verdict, c.Score = Compatible, scored.Result.Score
	if len(opts.AllowedRuntimes) > 0 {
		c.Runtime = match.Runtime(scored.Spec, scored.Result)
	}
}

// noTrustedReason says why no trusted spec covers c.
func noTrustedReason(c *Candidate) string {
	var parts []string
	for _, a := range c.Specs {
		switch a.State {
		case SpecUntrusted:
			if n := len(a.Passed) + a.PassedMore; n == 1 {
				parts = append(parts, fmt.Sprintf("the %s's spec does not verify", a.Role))
			} else {
				parts = append(parts, fmt.Sprintf("the %s's %d specs do not verify", a.Role, n))
			}
		case SpecNone:
			parts = append(parts, "the "+a.Role+" has no spec")
		}
	}
	if len(parts) == 0 {
		return "none verifies"
	}
	return strings.Join(parts, ", ")
}

// rank orders candidates best first: those that run with a spec by score (highest first), then
// those that run without one, then the unreadable ones (their outcome is unknown), then the
// incompatible ones; within each class, the platform closest to want first (containerd's order),
// then index order.
func rank(cands []Candidate, want ocispec.Platform) {
	wm := newPlatformMatcher(want)
	class := func(c *Candidate) int {
		switch c.Verdict {
		case Compatible:
			return 0
		case NoSpec:
			return 1
		case Unreadable:
			return 2 // nothing is known: before what is known not to run
		}
		return 3
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := &cands[i], &cands[j]
		if ca, cb := class(a), class(b); ca != cb {
			return ca < cb
		}
		if a.Verdict == Compatible && a.Score != b.Score {
			return a.Score > b.Score
		}
		if wm.prefers(a.platform, b.platform) {
			return true
		}
		if wm.prefers(b.platform, a.platform) {
			return false
		}
		return a.Position < b.Position
	})
}
