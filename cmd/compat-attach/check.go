package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/cmd/compat-attach/internal/display"
	"github.com/compatkit/compatkit/pkg/author"
	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/match"
)

type checkOptions struct {
	target         targetOptions
	platform       platformOption
	output         outputOption
	host           hostOptions
	policy         policyOptions
	noAnnotations  bool
	useAnnotations bool
	image          string
	specFiles      []string
	cue            cueOptions
}

func checkCmd() *cobra.Command {
	var opts checkOptions
	cmd := &cobra.Command{
		Use:   "check IMAGE|--spec FILE [--platform os/arch[/variant]] [--features FILE | --node NAME]",
		Short: "Check whether this host (or a saved feature file, or a node) can run an image",
		Long: `Decide whether the host can run IMAGE and print OK or FAIL per compatibility set and rule, with
the expressions that failed. The host is this machine, a saved feature file (--features: the JSON
of 'compat-attach features' or 'nfd export features', a profile, or a NodeFeature object), or a
Kubernetes node (--node NAME, from --nodes FILE or kubectl).

For an index, the manifest checked is the one 'select' picks for the host; with --platform, the
entry closest to that platform (what a runtime pulling --platform gets). The platform is a
requirement: an entry linux/amd64/v3 does not run on a host whose CPU lacks x86-64-v3 (its level
comes from its cpuid flags), with or without a spec. The manifest's spec and the specs of the
indexes above it must all be satisfied. An image without any spec is compatible: runtimes without
compatkit run it. A spec that cannot be read is an error (exit 1), never "no spec". No layer of the
image is downloaded.

Features that do not say the host's platform ('nfd export features' output) need --platform for an
index: its os/arch stands in for the host's (the x86-64 level still comes from the cpuid flags).

Under a trust policy (--policy, --key, --certificate-identity ...; see 'compat-attach verify --help'),
only specs that verify are used: the newest verified spec of each subject is evaluated, and every
newer spec that does not verify is named on stderr with the reason. When a subject has specs but
none verifies, check treats it like an image without a spec (compatible, as runtimes without
compatkit behave) and says so loudly: an unsigned spec can neither make an image incompatible nor
compatible. With --require-trusted, a manifest that no trusted spec covers (unsigned, stripped,
untrusted or absent) is not compatible (exit 3): for admission checks.

--spec FILE (instead of IMAGE) tries a document before attaching it: it is compiled and decided as
if attached to an image of its shape (a document with platforms: an index with one manifest per
platform, the top-level spec on the index; without: one manifest), so the verdict, the platform
requirement and the score are what check would give once it is attached. No registry is read.

Exit codes: 0 compatible, 3 not compatible, 1 error (a spec cannot be read), 2 usage.`,
		Example: `  # Can this machine run the example image (the manifest select would pick)?
  compat-attach check --oci-layout examples/hello/build/oci:1.0

  # The x86-64-v3 build on a machine without AVX2 (NOT COMPATIBLE, exit 3)
  compat-attach check --oci-layout examples/hello/build/oci:1.0 --platform linux/amd64/v3 --features examples/profiles/x86-64-v2-no-avx2.json

  # Another machine's features, saved by 'nfd export features' (no platform in them)
  compat-attach check --plain-http localhost:5000/hello:1.0 --features nfd.json --platform linux/amd64

  # Try a spec on a saved profile before attaching it (no image needed)
  compat-attach check --spec examples/hello/compat.cue --features examples/profiles/x86-64-v2-no-avx2.json

  # Only trust specs signed with cosign.pub, and require one
  compat-attach check --plain-http localhost:5000/hello:1.0 --key cosign.pub --require-trusted`,
		Args: cobra.MaximumNArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 1 && len(opts.specFiles) > 0:
				return usagef("give IMAGE or --spec FILE, not both (attach the spec, then check the image)")
			case len(args) == 0 && len(opts.specFiles) == 0:
				return usagef("give IMAGE, or --spec FILE to try a document without an image")
			case len(opts.specFiles) > 0 && (opts.policy.active() || opts.policy.requireTrusted):
				return usagef("--spec tries a document: it has no signature, so trust policies and --require-trusted do not apply")
			case len(args) == 1:
				opts.image = args[0]
			}
			if err := oneDocument(opts.specFiles); err != nil {
				return err
			}
			return validateAll(opts.output.validate, opts.platform.validate, opts.host.validate, opts.policy.validate)
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runCheck(cmd, &opts) },
	}
	opts.target.bind(cmd.Flags())
	opts.platform.bind(cmd.Flags(), "check the index entry closest to this platform (os/arch[/variant]); default: the one select picks for the host")
	opts.output.bind(cmd.Flags(), "text", "text", "json", "yaml")
	opts.host.bind(cmd.Flags())
	opts.policy.bind(cmd.Flags())
	opts.policy.bindRequireTrusted(cmd.Flags())
	cmd.Flags().StringArrayVar(&opts.specFiles, "spec", nil, "try this document (.cue, .yaml, .json) instead of an image's attached specs; repeat for the .cue files of one CUE package")
	opts.cue.bind(cmd.Flags())
	cmd.Flags().BoolVar(&opts.noAnnotations, "no-annotations", false, "ignore specs copied into the index's annotations (compat-attach annotate); read the referrers")
	cmd.Flags().BoolVar(&opts.useAnnotations, "use-annotations", false, "take the specs from the index's annotations (compat-attach annotate) when every candidate has one: one request, but a spec attached since is not seen")
	return cmd
}

// validateAll runs option validations in order and returns the first error.
func validateAll(checks ...func() error) error {
	for _, c := range checks {
		if err := c(); err != nil {
			return err
		}
	}
	return nil
}

// checkReport is the model check prints.
type checkReport struct {
	// Image is REPO@DIGEST of the manifest checked (or of the image when nothing is a candidate).
	Image string `json:"image"`
	// Platform is that manifest's platform.
	Platform string `json:"platform,omitempty"`
	// Features names the host; HostPlatform is its platform.
	Features     string `json:"features"`
	HostPlatform string `json:"hostPlatform,omitempty"`
	// Verdict is decide's; Compatible is true when the manifest may run.
	Verdict    decide.Verdict `json:"verdict"`
	Compatible bool           `json:"compatible"`
	// Score is the manifest's score (its own spec's, else the nearest index spec's).
	Score int `json:"score"`
	// Reason says why it is not compatible (or why no spec applies).
	Reason string `json:"reason,omitempty"`
	// Specs are the specs that apply: the manifest's, then each index's.
	Specs []checkedSpec `json:"specs"`
	// Untrusted lists the subjects whose specs were all ignored under the trust policy.
	Untrusted []string `json:"untrusted,omitempty"`
	// RequireTrusted is true when a manifest without a trusted spec is not compatible.
	RequireTrusted bool `json:"requireTrusted,omitempty"`
	// Document is the --spec file tried (no image): Image and the specs' references are then
	// synthetic (decide.DocumentImage).
	Document string `json:"document,omitempty"`
}

// checkedSpec is one evaluated spec: where it is attached and the outcome.
type checkedSpec struct {
	Subject  string `json:"subject"`
	Role     string `json:"role"`
	Referrer string `json:"referrer"`
	Created  string `json:"created,omitempty"`
	Signer   string `json:"signer,omitempty"`
	// Attestation is true when the spec comes from a build's in-toto attestation (Referrer is
	// then the attestation manifest).
	Attestation bool          `json:"attestation,omitempty"`
	Result      *match.Result `json:"result"`
	// Fallbacks are the when cases that apply to the host but failed, the host being compatible
	// only through a fallback set (decide.Fallbacks).
	Fallbacks []decide.FallbackNote `json:"fallbacks,omitempty"`
}

func runCheck(cmd *cobra.Command, opts *checkOptions) error {
	ctx := cmd.Context()
	trust, err := opts.policy.trust(ctx, &opts.target)
	if err != nil {
		return err
	}
	dopts := decide.Options{
		Platform: opts.platform.p, PinPlatform: opts.platform.p != nil,
		RequireTrusted: opts.policy.requireTrusted, Annotations: annotationMode(opts.noAnnotations, opts.useAnnotations),
	}
	var img *decide.Image
	var h decide.Host
	if len(opts.specFiles) > 0 {
		img, h, err = documentForHost(cmd, opts)
	} else {
		img, h, err = opts.target.imageForHost(ctx, cmd, opts.image, trust, &opts.host, opts.platform.p, dopts)
	}
	if err != nil {
		return err
	}
	d, err := img.Decide(ctx, h, dopts)
	if err != nil {
		if isNoHostPlatform(err) {
			return hostPlatformError(err, h)
		}
		return err
	}
	if len(opts.specFiles) == 0 {
		printNotes(cmd, img, d)
	}
	rep := &checkReport{Image: img.Ref(d.Root), Features: h.Name, HostPlatform: d.HostPlatform, Verdict: decide.Incompatible,
		RequireTrusted: opts.policy.requireTrusted, Specs: []checkedSpec{}}
	if len(opts.specFiles) > 0 {
		rep.Document = opts.specFiles[0]
	}
	c := d.Best()
	if c == nil {
		rep.Reason = d.Why()
	} else {
		rep.Image, rep.Platform = img.Ref(c.Manifest), c.Platform
		rep.Verdict, rep.Compatible, rep.Score, rep.Reason = c.Verdict, c.Verdict.Runs(), c.Score, c.Reason
		for _, a := range c.Specs {
			switch a.State {
			case decide.SpecFound:
				cs := checkedSpec{Subject: img.Ref(a.Subject), Role: a.Role, Referrer: img.Ref(a.Referrer), Signer: a.Signer, Attestation: a.FromAttestation, Result: a.Result, Fallbacks: decide.Fallbacks(a.Result)}
				if !a.Created.IsZero() {
					cs.Created = a.Created.UTC().Format(time.RFC3339)
				}
				if a.Result != nil {
					rep.Specs = append(rep.Specs, cs)
				}
			case decide.SpecUntrusted:
				rep.Untrusted = append(rep.Untrusted, img.Ref(a.Subject))
			}
		}
	}
	if err := display.Print(cmd.OutOrStdout(), opts.output.format, rep); err != nil {
		return err
	}
	switch {
	case rep.Compatible:
		return nil
	case rep.Verdict == decide.Unreadable || d.Unreadable():
		return withNext(fmt.Errorf("cannot decide for %s: %s", rep.Image, display.Line(rep.Reason)), "list what is attached with `compat-attach discover %s`; a spec that cannot be read is never taken as \"no spec\"", opts.target.ref(opts.image))
	}
	return &exitError{code: exitIncompatible}
}

// documentForHost compiles --spec and shapes it as an image (decide.DocumentImage), and loads the
// host.
func documentForHost(cmd *cobra.Command, opts *checkOptions) (*decide.Image, decide.Host, error) {
	ctx := cmd.Context()
	res, err := author.Compile(ctx, opts.specFiles, opts.cue.options())
	if err != nil {
		return nil, decide.Host{}, compileNext(err, opts.specFiles[0])
	}
	h, err := opts.host.load(ctx, cmd, opts.platform.p)
	if err != nil {
		return nil, decide.Host{}, err
	}
	hostPlatform := h.Platform
	if opts.platform.p != nil {
		hostPlatform = *opts.platform.p
	}
	img, err := decide.DocumentImage(opts.specFiles[0], res, hostPlatform)
	return img, h, err
}

// Text implements display.Texter. Every value is escaped onto its line (display.Line): the
// platform and the references come from the registry, and a newline in them would forge lines
// such as a verdict.
func (rep *checkReport) Text(w io.Writer) error {
	if rep.Document != "" {
		fmt.Fprintf(w, "Document: %s", display.Line(rep.Document))
	} else {
		fmt.Fprintf(w, "Image:    %s", display.Line(rep.Image))
	}
	if rep.Platform != "" {
		fmt.Fprintf(w, " (%s)", display.Line(rep.Platform))
	}
	fmt.Fprintf(w, "\nFeatures: %s", display.Line(rep.Features))
	if rep.HostPlatform != "" {
		fmt.Fprintf(w, " (%s)", display.Line(rep.HostPlatform))
	}
	fmt.Fprintln(w)
	for _, u := range rep.Untrusted {
		if rep.RequireTrusted {
			fmt.Fprintf(w, "\nNo trusted spec for %s: its specs do not verify under the policy;\n  with --require-trusted it is not compatible. See `compat-attach verify`.\n", display.Line(u))
			continue
		}
		fmt.Fprintf(w, "\nWARNING: no trusted spec for %s: its specs do not verify under the policy and are ignored;\n  it is treated as an image without a spec (compatible). See `compat-attach verify`.\n", display.Line(u))
	}
	if len(rep.Specs) == 0 && len(rep.Untrusted) == 0 && rep.Verdict == decide.NoSpec {
		fmt.Fprintln(w, "\nNo compatibility spec is attached: the image is treated as compatible.")
	}
	for _, cs := range rep.Specs {
		if rep.Document != "" {
			what := "top-level spec"
			if cs.Role != "index" && rep.Platform != "" {
				what = "spec of platform " + rep.Platform
			}
			fmt.Fprintf(w, "\nThe document's %s\n", display.Line(what))
			printSets(w, cs.Result)
			printFallbacks(w, cs.Fallbacks)
			continue
		}
		fmt.Fprintf(w, "\nSpec %s", display.Line(cs.Referrer))
		if cs.Created != "" {
			fmt.Fprintf(w, " (created %s)", display.Line(cs.Created))
		}
		if cs.Attestation {
			fmt.Fprintf(w, "\n  a build attestation of the %s %s\n", display.Line(cs.Role), display.Line(cs.Subject))
		} else {
			fmt.Fprintf(w, "\n  attached to the %s %s\n", display.Line(cs.Role), display.Line(cs.Subject))
		}
		if cs.Signer != "" {
			fmt.Fprintf(w, "  signed by %s\n", display.Line(cs.Signer))
		}
		printSets(w, cs.Result)
		printFallbacks(w, cs.Fallbacks)
	}
	fmt.Fprintln(w)
	switch {
	case rep.Compatible && rep.Verdict == decide.NoSpec:
		fmt.Fprintln(w, "Verdict: COMPATIBLE (no spec applies)")
	case rep.Compatible:
		fmt.Fprintf(w, "Verdict: COMPATIBLE (score %d)\n", rep.Score)
	case rep.Verdict == decide.Unreadable:
		fmt.Fprintf(w, "Verdict: UNKNOWN: %s\n", display.Line(rep.Reason))
	default:
		fmt.Fprintf(w, "Verdict: NOT COMPATIBLE: %s\n", display.Line(rep.Reason))
	}
	return nil
}

// printSets prints each compatibility set of a result with its rules, OK or FAIL.
func printSets(w io.Writer, res *match.Result) {
	for i, set := range res.Sets {
		verdict := "MATCH"
		if !set.Matched {
			verdict = "NO MATCH"
		}
		name := fmt.Sprintf("set %d", i+1)
		if set.Tag != "" {
			name += " " + fmt.Sprintf("%q", set.Tag)
		}
		fmt.Fprintf(w, "\n  %s (weight %d): %s\n", display.Line(name), set.Weight, verdict)
		if set.Description != "" {
			fmt.Fprintf(w, "    %s\n", display.Line(strings.TrimSpace(set.Description)))
		}
		for _, rr := range set.Rules {
			status := "OK  "
			if !rr.Matched {
				status = "FAIL"
			}
			fmt.Fprintf(w, "    %s  %s\n", status, display.Line(rr.Name))
			for _, f := range rr.Failed {
				fmt.Fprintf(w, "            %s\n", display.Line(f.String()))
			}
		}
	}
}

// printFallbacks prints a note for each when case that applies to the host but failed, the host
// passing only through a fallback set.
func printFallbacks(w io.Writer, notes []decide.FallbackNote) {
	if len(notes) > 0 {
		fmt.Fprintln(w)
	}
	for _, n := range notes {
		fmt.Fprintf(w, "  note: %s\n", display.Line(n.String()))
	}
}

// printNotes tells stderr what the decision passed over: specs a trust policy did not accept, the
// spec used under a policy, annotations that disagree with the referrers.
func printNotes(cmd *cobra.Command, img *decide.Image, d *decide.Decision) {
	seen := map[string]bool{}
	unverified := false
	for _, c := range d.Candidates {
		for _, a := range c.Specs {
			if a.SubjectSpec == nil || seen[a.Subject.Digest.String()] {
				continue
			}
			seen[a.Subject.Digest.String()] = true
			unverified = unverified || (a.State == decide.SpecFound && !a.Verified && !a.FromAnnotation)
			printPassed(cmd, img, a.SubjectSpec)
			switch {
			case a.State == decide.SpecFound && a.Verified:
				cmd.PrintErrf("Using spec %s: VERIFIED (%s)\n", display.Line(img.Ref(a.Referrer)), display.Line(a.Signer))
			case a.State == decide.SpecFound && a.FromAttestation:
				cmd.PrintErrf("Using the spec of the build attestation %s (%s has no compatibility referrer; `compat-attach attach --from-attestations` publishes it for NFD)\n", display.Line(img.Ref(a.Referrer)), display.Line(img.Ref(a.Subject)))
			case a.State == decide.SpecUntrusted:
				cmd.PrintErrf("WARNING: %s\n", display.Line(a.Err.Error()))
			}
		}
	}
	for _, n := range d.Notes {
		cmd.PrintErrf("warning: %s\n", display.Line(n))
	}
	if d.Selected != nil {
		for _, c := range d.Candidates {
			if c.Verdict == decide.Unreadable {
				cmd.PrintErrf("warning: %s (%s) was passed over: %s\n", display.Line(img.Ref(c.Manifest)), display.Line(c.Platform), display.Line(c.Reason))
			}
		}
	}
	if annotated(d) {
		cmd.PrintErrln("note: specs read from the index's annotations (--use-annotations): a spec attached after `compat-attach annotate` is not seen; without the flag the referrers decide")
	}
	if unverified || annotated(d) {
		cmd.PrintErrln(unverifiedNote)
	}
}

// unverifiedNote is the one line that says specs were used without a trust policy.
const unverifiedNote = "note: no trust policy: the specs used are not verified (anyone who can push to the repository can change them); --key or --policy uses only signed ones"

// annotated reports whether a decision used specs copied into index annotations (never signed).
func annotated(d *decide.Decision) bool {
	for _, c := range d.Candidates {
		for _, a := range c.Specs {
			if a.SubjectSpec != nil && a.FromAnnotation && a.State == decide.SpecFound {
				return true
			}
		}
	}
	return false
}

// printPassed names on stderr the specs a trust policy kept out, at most decide.MaxPassed of them.
func printPassed(cmd *cobra.Command, img *decide.Image, ss *decide.SubjectSpec) {
	for _, p := range ss.Passed {
		cmd.PrintErrf("Ignoring spec %s: %s\n", display.Line(img.Ref(p.Referrer)), display.Line(p.Reason))
	}
	if ss.PassedMore > 0 {
		cmd.PrintErrf("Ignoring %d more specs of %s that do not verify (see `compat-attach verify`)\n", ss.PassedMore, img.Ref(ss.Subject))
	}
}

// annotationMode maps the --no-annotations and --use-annotations flags (the default reads the
// referrers and notes stale annotations).
func annotationMode(ignore, use bool) decide.AnnotationMode {
	switch {
	case ignore:
		return decide.AnnotationsIgnore
	case use:
		return decide.AnnotationsUse
	}
	return decide.AnnotationsVerify
}
