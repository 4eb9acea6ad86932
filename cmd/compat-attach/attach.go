package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/cmd/compat-attach/internal/ciout"
	"github.com/compatkit/compatkit/cmd/compat-attach/internal/display"
	"github.com/compatkit/compatkit/internal/parallel"
	"github.com/compatkit/compatkit/pkg/author"
	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/signing"
	"github.com/compatkit/compatkit/pkg/spec"
)

type attachOptions struct {
	target    targetOptions
	output    outputOption
	cue       cueOptions
	specFiles []string
	platforms []string
	created   string
	createdAt time.Time
	images    []string
	conc      int
	fromAtt   bool
	unchanged bool
	ci        ciout.Files
	doSign    bool
	sign      signOptions
	base      baseOptions
}

func attachCmd() *cobra.Command {
	var opts attachOptions
	cmd := &cobra.Command{
		Use:   "attach IMAGE... (--spec FILE | --from-attestations) [--platform os/arch[/variant]]...",
		Short: "Compile a spec and attach it to an existing image as an OCI referrer",
		Long: `Compile the spec and push it as a referrer of the image (artifactType
application/vnd.nfd.image-compatibility.v1alpha1), without changing the image.

Subjects: for an image index, each platform manifest that --platform names; without --platform, the
manifests of the platforms the document lists (and, when the document also has a top-level spec,
every other manifest of the index), or the index itself when the document has no per-platform specs.
Registries without the referrers API get the referrers tag schema (sha256-<hex>) instead.

Inheritance: with --base REF, or when the image's manifest names its base in the annotations
org.opencontainers.image.base.name/.digest, the base image's newest spec (its newest verified one
with --base-key/--base-policy) is composed with the image's own: the derived spec keeps every rule
the base requires and may only tighten it; to drop a base rule or expression the document must say
so in relax: [...], which prints a warning. The attached provenance layer records the base
digest, its spec referrer, what was inherited and what was relaxed.

Several images: the document is compiled once; every image is resolved and planned (subjects,
inheritance) before anything is pushed, so a bad --platform or a base conflict on one image pushes
nothing; then the images are attached --concurrency at a time (one at a time in an OCI layout).
An image that fails is named on stderr, the others are still attached, and the exit code is 1.

--from-attestations publishes the specs that a build attached as in-toto attestations (compatkit's
BuildKit frontend keeps them in the image index) as NFD referrers of the same manifests, which
nfd compat validate-node reads, and signs them with --sign; a manifest that already has an equal
spec referrer is left as it is.`,
		Example: `  # Attach the example's specs to its multi-platform OCI layout
  compat-attach attach --oci-layout examples/hello/build/oci:1.0 --spec examples/hello/compat.cue

  # Attach one spec to the linux/amd64/v3 manifest of an image in a local registry
  compat-attach attach --plain-http localhost:5000/hello:1.0 --spec compat.cue --platform linux/amd64/v3

  # Inherit the base image's spec (the derived spec may only tighten it)
  compat-attach attach --plain-http localhost:5000/app:1.0 --spec compat.cue --base localhost:5000/base:1.0

  # Attach one document to many images at once (CI after a release)
  compat-attach attach --plain-http localhost:5000/api:1.4 localhost:5000/worker:1.4 localhost:5000/cron:1.4 --spec compat.cue

  # Publish, signed, the specs a build made with compatkit's BuildKit frontend
  compat-attach attach --plain-http localhost:5000/hello:built --from-attestations --sign --key cosign.key

  # Attach and sign (a sigstore bundle referrer per spec; see 'compat-attach sign --help')
  COSIGN_PASSWORD=... compat-attach attach --plain-http localhost:5000/hello:1.0 --spec compat.cue --sign --key cosign.key`,
		Args: cobra.MinimumNArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			opts.images = args
			if opts.conc < 1 {
				return usagef("--concurrency %d: must be at least 1", opts.conc)
			}
			if err := opts.output.validate(); err != nil {
				return err
			}
			if !opts.doSign && opts.sign.given() {
				return usagef("--key and --keyless sign: add --sign")
			}
			switch {
			case opts.fromAtt && len(opts.specFiles) > 0:
				return usagef("--spec and --from-attestations: give one (the document, or the build's attestations)")
			case !opts.fromAtt && len(opts.specFiles) == 0:
				return usagef("give --spec FILE (the document to attach) or --from-attestations (the specs a build attached)")
			case opts.fromAtt && (len(opts.platforms) > 0 || opts.base.ref != "" || (opts.base.policy.file != "" || len(opts.base.policy.keys) > 0)):
				return usagef("--from-attestations publishes the build's specs as they are: --platform, --base, --base-key and --base-policy do not apply")
			}
			// Each image once, in the order given.
			seen := map[string]bool{}
			opts.images = slices.DeleteFunc(slices.Clone(args), func(a string) bool {
				dup := seen[a]
				seen[a] = true
				return dup
			})
			if err := oneDocument(opts.specFiles); err != nil {
				return err
			}
			if opts.created != "" {
				t, err := time.Parse(time.RFC3339, opts.created)
				if err != nil {
					return usagef("--created %q is not RFC 3339 (e.g. 2026-01-02T15:04:05Z)", opts.created)
				}
				if _, ok := oci.CreatedBefore(ocispec.Descriptor{Annotations: map[string]string{ocispec.AnnotationCreated: opts.created}}, time.Now()); !ok {
					return usagef("--created %s is in the future: readers do not order by a time ahead of their clock (a spec dated ahead would stay the newest); give a past time", opts.created)
				}
				opts.createdAt = t.UTC()
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runAttach(cmd, &opts) },
	}
	opts.target.bind(cmd.Flags())
	opts.output.bind(cmd.Flags(), "text", "text", "json")
	opts.cue.bind(cmd.Flags())
	cmd.Flags().StringArrayVar(&opts.specFiles, "spec", nil, "spec file (.cue, .yaml, .json); repeat for the .cue files of one CUE package")
	cmd.Flags().StringArrayVar(&opts.platforms, "platform", nil, "attach to the manifest of this platform (os/arch[/variant]); repeatable")
	cmd.Flags().StringVar(&opts.created, "created", "", "creation time to record (RFC 3339; default now), for reproducible digests")
	cmd.Flags().IntVar(&opts.conc, "concurrency", 8, "images attached at once (with several IMAGE arguments)")
	cmd.Flags().BoolVar(&opts.doSign, "sign", false, "sign each attached spec (after it is pushed) with --key FILE or --keyless")
	opts.sign.bind(cmd.Flags())
	opts.base.bind(cmd.Flags())
	cmd.Flags().BoolVar(&opts.unchanged, "skip-unchanged", false, "attach nothing to a subject whose newest spec equals the compiled one (with --sign, sign that one if it is not signed yet): re-running attaches nothing new")
	opts.ci.Bind(cmd.Flags())
	cmd.Flags().BoolVar(&opts.fromAtt, "from-attestations", false, "attach the specs a build attached as in-toto attestations (compatkit's BuildKit frontend), as NFD referrers")
	return cmd
}

// attachResult is what attach prints per referrer.
type attachResult struct {
	Subject  string `json:"subject"`
	Platform string `json:"platform,omitempty"`
	Referrer string `json:"referrer"`
	Created  string `json:"created"`
	Bundle   string `json:"bundle,omitempty"`
	Signer   string `json:"signer,omitempty"`
	// Unchanged is true when nothing was pushed: Referrer is the subject's newest spec, equal to
	// the compiled one (--skip-unchanged).
	Unchanged bool `json:"unchanged,omitempty"`
	// kind is "index" or "manifest" for a subject without a platform (text output only).
	kind string
	spec *spec.Spec
}

// attachOutput is the model attach prints.
type attachOutput []attachResult

// attachPlan is one image ready to be attached: its subjects and their composed specs.
type attachPlan struct {
	image    string
	img      *decide.Image
	jobs     []decide.Attachment
	composed []decide.Inherited
	sources  []spec.SourceFile
}

func runAttach(cmd *cobra.Command, opts *attachOptions) error {
	ctx := cmd.Context()
	created := opts.createdAt
	if created.IsZero() {
		created = time.Now().UTC().Truncate(time.Second)
	}
	var res *author.Result
	var err error
	if !opts.fromAtt {
		if res, err = author.Compile(ctx, opts.specFiles, opts.cue.options()); err != nil {
			return compileNext(err, opts.specFiles[0])
		}
	}
	var signer *signing.Signer
	var sigRepo *oci.Target
	if opts.doSign {
		// Load the key (and ask its password) before pushing anything.
		if signer, err = opts.sign.signer(ctx); err != nil {
			return err
		}
		if sigRepo, err = openSignatureRepository(ctx, opts.sign.sigRepo, &opts.target); err != nil {
			return err
		}
	}
	bopts, err := opts.base.options(ctx, &opts.target)
	if err != nil {
		return err
	}
	conc := opts.conc
	if opts.target.ociLayout {
		conc = 1 // one writer of a layout's index.json at a time
	}
	many := len(opts.images) > 1
	named := func(i int, err error) error {
		if many {
			return fmt.Errorf("%s: %w", opts.images[i], err)
		}
		return err
	}

	// Work out every subject of every image before pushing anything: a bad --platform or a base
	// conflict pushes nothing.
	plans := make([]attachPlan, len(opts.images))
	planErrs := make([]error, len(opts.images))
	notes := make([][]string, len(opts.images))
	parallel.Each(len(opts.images), conc, func(i int) {
		plans[i], notes[i], planErrs[i] = planAttach(ctx, opts, opts.images[i], res, bopts)
	})
	for i := range opts.images {
		for _, n := range notes[i] {
			if many {
				n = opts.images[i] + ": " + n
			}
			cmd.PrintErrln(n)
		}
	}
	var planFailed []int
	for i, err := range planErrs {
		if err != nil {
			planFailed = append(planFailed, i)
		}
	}
	switch {
	case len(planFailed) == 0:
	case !many:
		return planErrs[0]
	default:
		for _, i := range planFailed {
			printErr(cmd, named(i, planErrs[i]))
		}
		return &exitError{code: exitFailure, msg: fmt.Sprintf("Error: %d of %d images could not be planned (named above): nothing was pushed to any image", len(planFailed), len(plans))}
	}

	results := make([]attachOutput, len(plans))
	pushErrs := make([]error, len(plans))
	parallel.Each(len(plans), conc, func(i int) {
		results[i], pushErrs[i] = pushAttach(ctx, opts, &plans[i], created, signer, sigRepo)
	})
	var all attachOutput
	failed := 0
	for i := range plans {
		all = append(all, results[i]...)
		if pushErrs[i] != nil {
			failed++
		}
	}
	if err := writeAttachCI(opts.ci, all); err != nil {
		return err
	}
	if failed > 0 && !many {
		return pushErrs[0]
	}
	if err := display.Print(cmd.OutOrStdout(), opts.output.format, all); err != nil {
		return err
	}
	if failed == 0 {
		return nil
	}
	for i, err := range pushErrs {
		if err != nil {
			printErr(cmd, named(i, err))
		}
	}
	return &exitError{code: exitFailure, msg: fmt.Sprintf("Error: %d of %d images failed (named above); the others are attached: run attach again for those that failed", failed, len(plans))}
}

// printErr prints err on stderr, "Error: " first, each of its lines escaped on its own line.
func printErr(cmd *cobra.Command, err error) {
	for i, l := range strings.Split(err.Error(), "\n") {
		if i == 0 {
			l = "Error: " + l
		} else {
			l = "  " + l
		}
		cmd.PrintErrln(display.Line(l))
	}
}

// planAttach resolves one image and plans its attachments (subjects, inherited specs).
func planAttach(ctx context.Context, opts *attachOptions, image string, res *author.Result, bopts decide.BaseOptions) (attachPlan, []string, error) {
	img, err := opts.target.image(ctx, image, nil)
	if err != nil {
		return attachPlan{}, nil, err
	}
	if opts.fromAtt {
		return planFromAttestations(ctx, image, img)
	}
	jobs, err := decide.PlanAttach(img, res, opts.platforms)
	if err != nil {
		return attachPlan{}, nil, withNext(err, "name a platform the index lists, or give the document a spec for it")
	}
	composed, notes, err := decide.Inherit(ctx, img, res, jobs, bopts)
	notes = append(img.PlanNotes(), notes...)
	if img.Annotated() {
		notes = append(notes, fmt.Sprintf("note: %s carries specs copied by `compat-attach annotate`: run annotate again, or `select --use-annotations` keeps seeing the old ones (check and select read the referrers by default)", image))
	}
	var ie *author.InheritError
	if err == nil && opts.unchanged {
		unchanged(ctx, img, jobs, composed)
	}
	switch {
	case errors.As(err, &ie):
		return attachPlan{}, notes, withNext(err, "make the rule at least as strict as the base's, or name it in relax: [...] to drop it explicitly")
	case errors.Is(err, decide.ErrBasePerPlatform):
		return attachPlan{}, notes, withNext(err, "attach per platform (--platform P, or platforms: in the document), or pass --no-base")
	case err != nil:
		return attachPlan{}, notes, err
	}
	return attachPlan{image: image, img: img, jobs: jobs, composed: composed, sources: res.Sources}, notes, nil
}

// planFromAttestations plans to attach, as NFD referrers, the specs a build attached to img as
// attestations, except where an equal spec referrer exists already.
func planFromAttestations(ctx context.Context, image string, img *decide.Image) (attachPlan, []string, error) {
	atts, err := img.BuildAttested(ctx)
	if err != nil {
		return attachPlan{}, nil, err
	}
	if len(atts) == 0 {
		return attachPlan{}, nil, withNext(fmt.Errorf("%w: %s holds no compatibility attestation", oci.ErrNoSpec, image), "build it with compatkit's BuildKit frontend (buildkit/), or attach a document with --spec FILE")
	}
	p := attachPlan{image: image, img: img}
	var notes []string
	t := img.Reader().Target()
	for _, a := range atts {
		if ref, _, _, err := decide.FindAttached(ctx, t, a.Subject, a.Spec); err == nil {
			notes = append(notes, fmt.Sprintf("note: %s already has this spec as %s: nothing to attach", img.Ref(a.Subject), img.Ref(ref)))
			continue
		}
		platform := a.Platform
		if a.Subject.Platform != nil {
			platform = oci.FormatPlatform(a.Subject.Platform)
		}
		p.jobs = append(p.jobs, decide.Attachment{Subject: a.Subject, Platform: platform, Spec: a.Spec})
		p.composed = append(p.composed, decide.Inherited{Spec: a.Spec})
		p.sources = append(p.sources, spec.SourceFile{Path: img.Ref(a.Manifest) + " (build attestation)", Digest: a.Layer.Digest.String()})
	}
	return p, notes, nil
}

// unchanged marks the attachments whose subject's newest spec (what readers use, without a trust
// policy) equals the composed spec: Inherited.Unchanged names that referrer, and nothing is
// pushed for them.
func unchanged(ctx context.Context, img *decide.Image, jobs []decide.Attachment, composed []decide.Inherited) {
	for i, j := range jobs {
		ss := img.Reader().Spec(ctx, j.Subject)
		if ss.State != decide.SpecFound || ss.FromAttestation || ss.FromAnnotation {
			continue
		}
		a, err1 := ss.Spec.MarshalYAML()
		b, err2 := composed[i].Spec.MarshalYAML()
		if err1 == nil && err2 == nil && string(a) == string(b) {
			ref := ss.Referrer
			composed[i].Unchanged = &ref
		}
	}
}

// signedBefore reports whether a signature bundle of subject names ref and was made with signer's
// key (verified); for a keyless signer, whether any bundle names it (a keyless certificate is new
// each time, so "this signer" cannot be told apart): re-running a signing attach adds no bundle.
func signedBefore(ctx context.Context, img *decide.Image, sigRepo *oci.Target, subject, ref ocispec.Descriptor, s *signing.Signer) bool {
	t := img.Reader().Target()
	if sigRepo != nil {
		t = sigRepo
	}
	refs, err := t.Referrers(ctx, subject, "")
	if err != nil {
		return false
	}
	for _, r := range refs {
		if signing.IsBundle(r.ArtifactType) && r.Annotations[signing.AnnotationSpecReferrer] == ref.Digest.String() {
			return s.CertificateProvider != nil // a key signer's own bundle is found by signSpec
		}
	}
	return false
}

// writeAttachCI writes attach's outputs (subjects, referrers, bundles, each REPO@DIGEST, one per
// line) and a Markdown summary of what was attached, with each spec's sets and rules.
func writeAttachCI(f ciout.Files, rs attachOutput) error {
	var subjects, referrers, bundles []string
	for _, r := range rs {
		subjects, referrers = append(subjects, r.Subject), append(referrers, r.Referrer)
		if r.Bundle != "" {
			bundles = append(bundles, r.Bundle)
		}
	}
	for name, v := range map[string][]string{"subjects": subjects, "referrers": referrers, "bundles": bundles} {
		if err := f.SetLines(name, v); err != nil {
			return err
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### compat-attach: %d compatibility specs\n\n| platform | subject | spec referrer | signature bundle | |\n|---|---|---|---|---|\n", len(rs))
	for _, r := range rs {
		what := "attached"
		if r.Unchanged {
			what = "unchanged"
		}
		fmt.Fprintf(&b, "| %s | `%s` | `%s` | %s | %s |\n", ciout.Cell(r.Platform), ciout.Cell(r.Subject), ciout.Cell(r.Referrer), ciout.Cell(r.Bundle), what)
	}
	for _, r := range rs {
		if r.spec == nil {
			continue
		}
		p := r.Platform
		if p == "" {
			p = r.kind
		}
		fmt.Fprintf(&b, "\n**%s** (`%s`)\n\n", ciout.Cell(p), ciout.Cell(r.Referrer))
		for i, c := range r.spec.Compatibilities {
			tag := c.Tag
			if tag == "" {
				tag = fmt.Sprintf("set %d", i+1)
			}
			var rules []string
			for _, rl := range c.Rules {
				rules = append(rules, ciout.Cell(rl.Name))
			}
			fmt.Fprintf(&b, "- %s (weight %d): %s\n", ciout.Cell(tag), c.Weight, strings.Join(rules, "; "))
		}
	}
	return f.AddSummary(b.String())
}

// pushAttach pushes (and signs) the specs of one planned image, in index order; it returns what
// was attached before any error.
func pushAttach(ctx context.Context, opts *attachOptions, p *attachPlan, created time.Time, signer *signing.Signer, sigRepo *oci.Target) (attachOutput, error) {
	t := p.img.Reader().Target()
	var results attachOutput
	for i, j := range p.jobs {
		if ref := p.composed[i].Unchanged; ref != nil {
			ar := attachResult{Subject: p.img.Ref(j.Subject), Platform: j.Platform, Referrer: p.img.Ref(*ref), Unchanged: true, kind: "manifest", spec: p.composed[i].Spec}
			if c, ok := oci.Created(*ref); ok {
				ar.Created = c.UTC().Format(time.RFC3339)
			}
			if signer != nil && !signedBefore(ctx, p.img, sigRepo, j.Subject, *ref, signer) {
				sr, err := signSpec(ctx, p.img, j.Subject, j.Platform, *ref, p.composed[i].Spec, signer, sigRepo)
				if err != nil {
					return results, err
				}
				ar.Bundle, ar.Signer = sr.Bundle, sr.Signer
			}
			results = append(results, ar)
			continue
		}
		sources := p.sources
		if len(p.sources) == len(p.jobs) && opts.fromAtt {
			sources = p.sources[i : i+1] // each spec comes from its own attestation
		}
		prov := &spec.Provenance{Tool: "compat-attach/" + version, Source: sources, Base: p.composed[i].Base}
		d, err := t.PushSpec(ctx, j.Subject, p.composed[i].Spec, prov, created)
		if err != nil {
			return results, fmt.Errorf("attaching to %s: %w", p.img.Ref(j.Subject), err)
		}
		ar := attachResult{Subject: p.img.Ref(j.Subject), Platform: j.Platform, Referrer: p.img.Ref(d), Created: created.Format(time.RFC3339), kind: "manifest", spec: p.composed[i].Spec}
		if oci.IsIndex(j.Subject.MediaType) {
			ar.kind = "index"
		}
		if signer != nil {
			// The spec referrer exists now: sign it (never a signature for nothing).
			sr, err := signSpec(ctx, p.img, j.Subject, j.Platform, d, p.composed[i].Spec, signer, sigRepo)
			if err != nil {
				return results, withNext(err, "the spec %s is attached but unsigned: fix the signing problem, then sign it with `compat-attach sign %s --referrer %s` and the same --key or --keyless flags (under a trust policy an unsigned spec is ignored)", ar.Referrer, opts.target.ref(p.image), d.Digest)
			}
			ar.Bundle, ar.Signer = sr.Bundle, sr.Signer
		}
		results = append(results, ar)
	}
	return results, nil
}

// Text implements display.Texter.
func (rs attachOutput) Text(w io.Writer) error {
	for _, a := range rs {
		p := a.Platform
		if p == "" {
			p = "(" + a.kind + ")"
		}
		if a.Unchanged {
			fmt.Fprintf(w, "Unchanged %s: its newest spec %s is the compiled one (nothing pushed)\n", a.Subject, a.Referrer)
			if a.Bundle != "" {
				fmt.Fprintf(w, "Signed   %s with %s: bundle %s\n", a.Referrer, a.Signer, a.Bundle)
			}
			continue
		}
		fmt.Fprintf(w, "Attached %s to %s %s\n", a.Referrer, p, a.Subject)
		if a.Bundle != "" {
			fmt.Fprintf(w, "Signed   %s with %s: bundle %s\n", a.Referrer, a.Signer, a.Bundle)
		}
	}
	return nil
}
