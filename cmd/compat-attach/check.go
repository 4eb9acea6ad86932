package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/pkg/host"
	"github.com/compatkit/compatkit/pkg/match"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/spec"
)

type checkOptions struct {
	target   targetOptions
	platform platformOption
	output   outputOption
	features string
	policy   policyOptions
	image    string
	// requireTrusted makes a subject whose specs all fail verification incompatible.
	requireTrusted bool
}

func checkCmd() *cobra.Command {
	var opts checkOptions
	cmd := &cobra.Command{
		Use:   "check IMAGE [--platform os/arch[/variant]] [--features FILE]",
		Short: "Check whether this host (or a saved feature file) can run an image",
		Long: `Evaluate the image's newest compatibility spec against this host's features, or against a saved
feature file (the JSON of 'nfd export features' or 'compat-attach features', or a NodeFeature
object), and print OK or FAIL per compatibility set and rule, with the expressions that failed.

For an index, the manifest of --platform is checked (default: this host's os/arch, or the
platform recorded in the feature file); a spec attached to the index itself applies too, and both
must be satisfied. An image without any spec is compatible: runtimes without compatkit run it.
No layer of the image is downloaded.

Under a trust policy (--policy, --key, --certificate-identity ...; see 'compat-attach verify --help'),
only specs that verify are used: the newest verified spec of each subject is evaluated, and every
newer spec that does not verify is named on stderr with the reason. When a subject has specs but
none verifies, check treats it like an image without a spec (compatible, as runtimes without
compatkit behave) and says so loudly on stderr and in the report ("untrusted"): an unsigned spec can
neither make an image incompatible nor compatible. With --require-trusted, such an image is not
compatible (exit 3): for admission checks that must not pass on a wrong key or a stripped signature.

Exit codes: 0 compatible, 3 not compatible, 1 error, 2 usage.`,
		Example: `  # Can this machine run the example's x86-64-v3 image?
  compat-attach check --oci-layout examples/hello/build/oci:1.0 --platform linux/amd64/v3

  # Check against another machine's features
  compat-attach check --plain-http localhost:5000/hello:1.0 --platform linux/amd64/v3 --features node.json

  # Only trust specs signed with cosign.pub
  compat-attach check --plain-http localhost:5000/hello:1.0 --platform linux/amd64/v3 --key cosign.pub`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.image = args[0]
			if err := opts.output.validate(); err != nil {
				return err
			}
			return runCheck(cmd, &opts)
		},
	}
	opts.target.bind(cmd.Flags())
	opts.platform.bind(cmd.Flags(), "check the manifest of this platform (os/arch[/variant]); default: the host's")
	opts.output.bind(cmd.Flags(), "text", "text", "json", "yaml")
	cmd.Flags().StringVar(&opts.features, "features", "", "read features from FILE (- for stdin) instead of discovering this host's")
	cmd.Flags().BoolVar(&opts.requireTrusted, "require-trusted", false, "under a trust policy: an image whose specs all fail verification is not compatible")
	opts.policy.bind(cmd.Flags())
	return cmd
}

// checkReport is the model check prints, as text or data.
type checkReport struct {
	Image      string        `json:"image"`
	Platform   string        `json:"platform,omitempty"`
	Features   string        `json:"features"`
	Specs      []checkedSpec `json:"specs"`
	Compatible bool          `json:"compatible"`
	// Score is the lowest score among the evaluated specs (each spec must match).
	Score int `json:"score"`
	// Untrusted lists the subjects whose specs were all ignored under the trust policy.
	Untrusted []string `json:"untrusted,omitempty"`
	// RequireTrusted is true when untrusted subjects make the image incompatible.
	RequireTrusted bool `json:"requireTrusted,omitempty"`
}

// checkedSpec is one evaluated spec: where it is attached and the outcome.
type checkedSpec struct {
	Subject  string        `json:"subject"`
	Referrer string        `json:"referrer"`
	Created  string        `json:"created,omitempty"`
	Result   *match.Result `json:"result"`
}

func runCheck(cmd *cobra.Command, opts *checkOptions) error {
	ctx := cmd.Context()
	if opts.requireTrusted && !opts.policy.active() {
		return &usageError{err: fmt.Errorf("--require-trusted needs a trust policy: add --key, --certificate-identity[-regexp] with --certificate-oidc-issuer[-regexp], or --policy")}
	}
	if _, err := opts.platform.parse(); err != nil {
		return err
	}
	v, err := opts.policy.verifier(ctx)
	if err != nil {
		return err
	}
	features, source, err := loadFeatures(ctx, cmd, opts.features)
	if err != nil {
		return err
	}
	platform := opts.platform.raw
	r, err := resolveImage(ctx, opts.image, &opts.target, "")
	if err != nil {
		return err
	}
	if r.index != nil {
		if platform == "" {
			platform = featuresPlatform(features)
		}
		if r.manifest, err = oci.SelectPlatform(r.index, platform); err != nil {
			return withNext(fmt.Errorf("%s: %w", opts.image, err), "pick one of the index's platforms with --platform")
		}
		r.platform = platform
	}
	rep := &checkReport{Image: r.ref(r.manifest), Platform: r.platform, Features: source, Compatible: true}
	subjects := []ocispec.Descriptor{r.manifest}
	if r.index != nil {
		subjects = append(subjects, r.root)
	}
	for _, subject := range subjects {
		var s *spec.Spec
		var ref ocispec.Descriptor
		if v != nil {
			s, ref, err = trustedSpec(ctx, r, subject, v, cmd.ErrOrStderr())
		} else {
			s, ref, err = r.target.NewestSpec(ctx, subject)
		}
		if errors.Is(err, oci.ErrNoSpec) {
			continue
		}
		if isNoTrustedSpec(err) {
			rep.Untrusted = append(rep.Untrusted, r.ref(subject))
			if rep.RequireTrusted = opts.requireTrusted; opts.requireTrusted {
				cmd.PrintErrf("%v\nNo trusted spec for %s: not compatible (--require-trusted)\n", err, r.ref(subject))
				rep.Compatible = false
				continue
			}
			cmd.PrintErrf("WARNING: %v\nWARNING: no trusted spec for %s: it is treated as an image without a spec (compatible); --require-trusted makes it incompatible\n", err, r.ref(subject))
			continue
		}
		if err != nil {
			return err
		}
		res, err := evaluate(s, features)
		if err != nil {
			return fmt.Errorf("%s: %w", r.ref(ref), err)
		}
		cs := checkedSpec{Subject: r.ref(subject), Referrer: r.ref(ref), Result: res}
		if c, ok := oci.Created(ref); ok {
			cs.Created = c.UTC().Format("2006-01-02T15:04:05Z")
		}
		if len(rep.Specs) == 0 || res.Score < rep.Score {
			rep.Score = res.Score
		}
		rep.Compatible = rep.Compatible && res.Compatible
		rep.Specs = append(rep.Specs, cs)
	}
	if !rep.Compatible {
		rep.Score = 0
	}
	out := cmd.OutOrStdout()
	if opts.output.format != "text" {
		if err := writeData(out, opts.output.format, rep); err != nil {
			return err
		}
	} else {
		printCheck(out, rep)
	}
	if !rep.Compatible {
		return &exitError{code: exitIncompatible}
	}
	return nil
}

func evaluate(s *spec.Spec, f *match.Features) (*match.Result, error) {
	p, err := match.Compile(s)
	if err != nil {
		return nil, err
	}
	return p.Evaluate(f)
}

// loadFeatures reads the feature file, or discovers this host's features.
func loadFeatures(ctx context.Context, cmd *cobra.Command, file string) (*host.Features, string, error) {
	if file != "" {
		f, err := host.ReadFeatureFile(file)
		if err != nil {
			return nil, "", withNext(err, "save a host's features with `compat-attach features > FILE` or `nfd export features`")
		}
		return f, file, nil
	}
	f, warnings, err := host.New().Discover(ctx)
	for _, w := range warnings {
		cmd.PrintErrf("warning: feature source %s\n", w)
	}
	return f, "this host", err
}

// featuresPlatform is the os/arch recorded by compatkit's platform source, or this host's.
func featuresPlatform(f *host.Features) string {
	if a, ok := f.Attributes["compatkit.platform"]; ok && a.Elements["os"] != "" && a.Elements["arch"] != "" {
		return a.Elements["os"] + "/" + a.Elements["arch"]
	}
	return hostPlatform()
}

func printCheck(w io.Writer, rep *checkReport) {
	fmt.Fprintf(w, "Image:    %s", rep.Image)
	if rep.Platform != "" {
		fmt.Fprintf(w, " (%s)", rep.Platform)
	}
	fmt.Fprintf(w, "\nFeatures: %s\n", rep.Features)
	for _, u := range rep.Untrusted {
		if rep.RequireTrusted {
			fmt.Fprintf(w, "\nNo trusted spec for %s: its specs do not verify under the policy;\n  with --require-trusted it is not compatible. See `compat-attach verify`.\n", u)
			continue
		}
		fmt.Fprintf(w, "\nWARNING: no trusted spec for %s: its specs do not verify under the policy and are ignored;\n  it is treated as an image without a spec (compatible). See `compat-attach verify`.\n", u)
	}
	if len(rep.Specs) == 0 && len(rep.Untrusted) == 0 {
		fmt.Fprintln(w, "\nNo compatibility spec is attached: the image is treated as compatible.")
	}
	for _, cs := range rep.Specs {
		fmt.Fprintf(w, "\nSpec %s", cs.Referrer)
		if cs.Created != "" {
			fmt.Fprintf(w, " (created %s)", cs.Created)
		}
		fmt.Fprintf(w, "\n  attached to %s\n", cs.Subject)
		for i, set := range cs.Result.Sets {
			verdict := "MATCH"
			if !set.Matched {
				verdict = "NO MATCH"
			}
			name := fmt.Sprintf("set %d", i+1)
			if set.Tag != "" {
				name += " " + fmt.Sprintf("%q", set.Tag)
			}
			fmt.Fprintf(w, "\n  %s (weight %d): %s\n", name, set.Weight, verdict)
			if set.Description != "" {
				fmt.Fprintf(w, "    %s\n", strings.TrimSpace(set.Description))
			}
			for _, rr := range set.Rules {
				status := "OK  "
				if !rr.Matched {
					status = "FAIL"
				}
				fmt.Fprintf(w, "    %s  %s\n", status, rr.Name)
				for _, f := range rr.Failed {
					fmt.Fprintf(w, "            %s\n", f)
				}
			}
		}
	}
	fmt.Fprintln(w)
	if rep.Compatible {
		fmt.Fprintf(w, "Verdict: COMPATIBLE (score %d)\n", rep.Score)
	} else {
		if rep.RequireTrusted && len(rep.Untrusted) > 0 {
			fmt.Fprintln(w, "Verdict: NOT COMPATIBLE: no trusted spec")
		} else {
			fmt.Fprintln(w, "Verdict: NOT COMPATIBLE: no compatibility set matches")
		}
	}
}
