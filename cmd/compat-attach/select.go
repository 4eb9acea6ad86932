package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/cmd/compat-attach/internal/display"
	"github.com/compatkit/compatkit/pkg/decide"
)

type selectOptions struct {
	target            targetOptions
	platform          platformOption
	output            outputOption
	host              hostOptions
	policy            policyOptions
	allowedRuntimes   []string
	noAnnotations     bool
	verifyAnnotations bool // the default now; the flag is kept for scripts that pass it
	useAnnotations    bool
	image             string
}

func selectCmd() *cobra.Command {
	var opts selectOptions
	cmd := &cobra.Command{
		Use:   "select IMAGE [--features FILE | --node NAME [--nodes FILE]] [--platform os/arch[/variant]]",
		Short: "Pick the best manifest of an image index for a host",
		Long: `Rank the manifests of IMAGE's index that the host can run and print REPO@DIGEST of the best.

Candidates: the entries a host of --platform (default: the host's own platform) runs, as
containerd matches them: an x86-64-v3 host runs linux/amd64/v3, /v2 and plain linux/amd64 entries;
a host without AVX2 never gets a linux/amd64/v3 entry, with or without a spec. Each candidate's
spec and the specs of the indexes above it must all match. Compatible candidates rank by score
(their own spec's highest matching weight, else the index spec's), then those without a spec;
ties go to the platform closest to the host's, then to index order. The result is always a
manifest the index lists. A candidate whose spec cannot be read is "unreadable" (listed with the
reason in -o json) and never chosen; select still picks among the others. Exit 3 when nothing
fits, 1 when nothing fits and some candidate could not be read.

Host features: this host, a feature file (--features: 'nfd export features' or 'compat-attach
features' JSON, or a saved profile), or a Kubernetes node (--node NAME, from --nodes FILE holding
'kubectl get nodes -o json' or 'kubectl get nodefeatures -A -o json', or else from 'kubectl get
node NAME -o json'). Features without a platform need --platform.

Round trips: the index is fetched once, the referrers of each candidate (and of the index) are
listed once and concurrently, and no layer is fetched. An index written by 'compat-attach
annotate' carries every spec in its annotations: the referrers still decide, and an annotation
that disagrees with them is reported; --use-annotations takes the annotations alone (the index
request only, but a spec attached after annotate is not seen), --no-annotations ignores them.

Runtimes: with --allowed-runtimes, a compatibility set that needs a runtime (compatkit.runtime)
outside the list does not count, and the runtime the chosen set needs is reported; a runtime is
never taken from the spec alone.

Under a trust policy (--key, --policy, --certificate-identity ...; see 'compat-attach verify
--help'), only verified specs count: each manifest's newest verified spec is used, a manifest whose
specs all fail verification ranks as one without a spec (with --require-trusted: it is not
compatible), and the index annotations (which carry no signature) are not used.`,
		Example: `  # The best image of the example for this machine
  compat-attach select --oci-layout examples/hello/build/oci:1.0

  # For a machine without AVX2, with the whole ranking
  compat-attach select --oci-layout examples/hello/build/oci:1.0 --features examples/profiles/x86-64-v2-no-avx2.json -o json

  # The best entry an x86-64-v2 host runs
  compat-attach select --oci-layout examples/hello/build/oci:1.0 --platform linux/amd64/v2

  # For a Kubernetes node
  kubectl get nodes -o json > nodes.json
  compat-attach select registry.example/app:1.0 --node worker-3 --nodes nodes.json --allowed-runtimes runc,nvidia`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			opts.image = args[0]
			return validateAll(opts.output.validate, opts.platform.validate, opts.host.validate, opts.policy.validate)
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runSelect(cmd, &opts) },
	}
	opts.target.bind(cmd.Flags())
	opts.output.bind(cmd.Flags(), "text", "text", "json", "yaml")
	opts.host.bind(cmd.Flags())
	opts.platform.bind(cmd.Flags(), "consider the entries a host of this platform runs (os/arch[/variant]; default: the host's)")
	cmd.Flags().StringSliceVar(&opts.allowedRuntimes, "allowed-runtimes", nil, "runtime handlers the administrator allows (comma-separated)")
	cmd.Flags().BoolVar(&opts.noAnnotations, "no-annotations", false, "ignore specs in the index's annotations; read the referrers")
	cmd.Flags().BoolVar(&opts.verifyAnnotations, "verify-annotations", false, "read the referrers and report annotations that disagree with them (the default)")
	_ = cmd.Flags().MarkHidden("verify-annotations")
	cmd.Flags().BoolVar(&opts.useAnnotations, "use-annotations", false, "take the specs from the index's annotations (compat-attach annotate) when every candidate has one: one request, but a spec attached since is not seen")
	opts.policy.bind(cmd.Flags())
	opts.policy.bindRequireTrusted(cmd.Flags())
	return cmd
}

// selectReport is the model select prints.
type selectReport struct {
	Image        string        `json:"image"`
	Platform     string        `json:"platform"`
	Features     string        `json:"features"`
	HostPlatform string        `json:"hostPlatform,omitempty"`
	Selected     string        `json:"selected,omitempty"`
	RuntimeClass string        `json:"runtimeClass,omitempty"`
	Annotations  bool          `json:"fromAnnotations"`
	Mismatches   []string      `json:"annotationMismatches,omitempty"`
	Ranking      []rankedEntry `json:"ranking"`
	// Why says why nothing fits (empty when something does).
	Why string `json:"why,omitempty"`
}

// rankedEntry is one candidate of the ranking.
type rankedEntry struct {
	Manifest   string               `json:"manifest"`
	Platform   string               `json:"platform"`
	Verdict    decide.Verdict       `json:"verdict"`
	Compatible bool                 `json:"compatible"`
	HasSpec    bool                 `json:"hasSpec"`
	Score      int                  `json:"score"`
	Runtime    string               `json:"runtime,omitempty"`
	Reason     string               `json:"reason,omitempty"`
	Specs      []decide.AppliedSpec `json:"specs,omitempty"`
}

func runSelect(cmd *cobra.Command, opts *selectOptions) error {
	ctx := cmd.Context()
	trust, err := opts.policy.trust(ctx, &opts.target)
	if err != nil {
		return err
	}
	dopts := decide.Options{
		Platform: opts.platform.p, RequireTrusted: opts.policy.requireTrusted, AllowedRuntimes: opts.allowedRuntimes,
		Annotations: annotationMode(opts.noAnnotations, opts.useAnnotations),
	}
	img, h, err := opts.target.imageForHost(ctx, cmd, opts.image, trust, &opts.host, opts.platform.p, dopts)
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
	printNotes(cmd, img, d)
	rep := &selectReport{Image: opts.image, Platform: d.Platform, Features: h.Name, HostPlatform: d.HostPlatform, Mismatches: d.Notes, Ranking: []rankedEntry{}}
	rep.Annotations = len(d.Candidates) > 0
	for _, c := range d.Candidates {
		rep.Ranking = append(rep.Ranking, rankedEntry{Manifest: img.Ref(c.Manifest), Platform: c.Platform, Verdict: c.Verdict,
			Compatible: c.Verdict.Runs(), HasSpec: c.HasSpec(), Score: c.Score, Runtime: c.Runtime, Reason: c.Reason, Specs: c.Specs})
		for _, a := range c.Specs {
			rep.Annotations = rep.Annotations && a.SubjectSpec != nil && a.FromAnnotation
		}
		if len(c.Specs) == 0 {
			rep.Annotations = false
		}
	}
	if d.Selected != nil {
		rep.Selected, rep.RuntimeClass = img.Ref(d.Selected.Manifest), d.Selected.Runtime
	} else {
		rep.Why = d.Why()
	}
	if err := display.Print(cmd.OutOrStdout(), opts.output.format, rep); err != nil {
		return err
	}
	if rep.Selected != "" {
		if rep.RuntimeClass != "" {
			cmd.PrintErrf("runtime class: %s\n", rep.RuntimeClass)
		}
		return nil
	}
	// One line per manifest, each value escaped onto it: the platform comes from the index.
	var why []string
	for _, r := range rep.Ranking {
		why = append(why, fmt.Sprintf("  %s %s: %s", display.Line(r.Manifest), display.Line(r.Platform), display.Line(r.Reason)))
	}
	if len(why) == 0 {
		why = []string{"  " + display.Line(rep.Why)}
	}
	if d.Unreadable() {
		return withNext(fmt.Errorf("no manifest of %s can be chosen for %s: a spec that applies cannot be read, so the outcome is unknown:\n%s", display.Line(opts.image), display.Line(h.Name), strings.Join(why, "\n")),
			"see what is attached with `compat-attach discover %s`", opts.target.ref(opts.image))
	}
	return &exitError{code: exitIncompatible, msg: fmt.Sprintf("No manifest of %s fits %s:\n%s", display.Line(opts.image), display.Line(h.Name), strings.Join(why, "\n"))}
}

// Text implements display.Texter: REPO@DIGEST of the selected manifest, nothing when none fits.
func (rep *selectReport) Text(w io.Writer) error {
	if rep.Selected != "" {
		fmt.Fprintln(w, display.Line(rep.Selected))
	}
	return nil
}
