package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/pkg/host"
	"github.com/compatkit/compatkit/pkg/match"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/spec"
)

type selectOptions struct {
	target            targetOptions
	output            outputOption
	features          string
	node              string
	nodes             string
	platform          string
	allowedRuntimes   []string
	noAnnotations     bool
	verifyAnnotations bool
	policy            policyOptions
	image             string
}

func selectCmd() *cobra.Command {
	var opts selectOptions
	cmd := &cobra.Command{
		Use:   "select IMAGE [--features FILE | --node NAME [--nodes FILE]]",
		Short: "Pick the best manifest of an image index for a host",
		Long: `Evaluate the spec of every manifest of IMAGE's index for the host's os/arch (and a spec attached
to the index itself, which applies to all of them) and print REPO@DIGEST of the best: compatible
manifests rank by score (the highest weight of a matching set; ties keep index order), and a
manifest without a spec ranks after every one whose spec matches. The result is always a manifest
the index lists. Exit 3 when nothing fits.

Host features: this host, a feature file (--features: 'nfd export features' or 'compat-attach
features' JSON, or a saved profile), or a Kubernetes node (--node NAME, from --nodes FILE holding
'kubectl get nodes -o json' or 'kubectl get nodefeatures -A -o json', or else from 'kubectl get
node NAME -o json').

Round trips: the index is fetched once, each candidate's referrers are listed once and concurrently,
and no layer is fetched. An index written by 'compat-attach annotate' carries every spec in its
annotations: select then needs the index alone (--no-annotations to ignore them,
--verify-annotations to read the referrers too and report any annotation that disagrees; the
referrers win).

Runtimes: with --allowed-runtimes, a compatibility set that needs a runtime (compatkit.runtime)
outside the list does not count, and the runtime the chosen set needs is reported; a runtime is
never taken from the spec alone.

Under a trust policy (--key, --policy, --certificate-identity ...; see 'compat-attach verify
--help'), only verified specs count: each manifest's newest verified spec is used, a manifest whose
specs all fail verification ranks as one without a spec, and the index annotations (which carry no
signature) are not used.`,
		Example: `  # The best image of the example for this machine
  compat-attach select --oci-layout examples/hello/build/oci:1.0

  # For a machine without AVX2, with the whole ranking
  compat-attach select --oci-layout examples/hello/build/oci:1.0 --features examples/profiles/x86-64-v2-no-avx2.json -o json

  # For a Kubernetes node
  kubectl get nodes -o json > nodes.json
  compat-attach select registry.example/app:1.0 --node worker-3 --nodes nodes.json --allowed-runtimes runc,nvidia`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.image = args[0]
			if err := opts.output.validate(); err != nil {
				return err
			}
			if opts.features != "" && opts.node != "" {
				return &exitError{code: exitUsage, msg: "Error: give --features or --node, not both"}
			}
			if opts.nodes != "" && opts.node == "" {
				return &exitError{code: exitUsage, msg: "Error: --nodes needs --node NAME (the node to select for); for every node, use `compat-attach report`"}
			}
			return runSelect(cmd, &opts)
		},
	}
	opts.target.bind(cmd.Flags())
	opts.output.bind(cmd.Flags(), "text", "text", "json", "yaml")
	cmd.Flags().StringVar(&opts.features, "features", "", "read the host's features from FILE")
	cmd.Flags().StringVar(&opts.node, "node", "", "select for the Kubernetes node NAME")
	cmd.Flags().StringVar(&opts.nodes, "nodes", "", "with --node: the nodes file (kubectl get nodes -o json); default: ask kubectl")
	cmd.Flags().StringVar(&opts.platform, "platform", "", "consider the manifests of this os/arch (default: the host's)")
	cmd.Flags().StringSliceVar(&opts.allowedRuntimes, "allowed-runtimes", nil, "runtime handlers the administrator allows (comma-separated)")
	cmd.Flags().BoolVar(&opts.noAnnotations, "no-annotations", false, "ignore specs in the index's annotations; read the referrers")
	cmd.Flags().BoolVar(&opts.verifyAnnotations, "verify-annotations", false, "read the referrers and report annotations that disagree with them")
	opts.policy.bind(cmd.Flags())
	return cmd
}

// selectReport is the model select prints.
type selectReport struct {
	Image        string        `json:"image"`
	Platform     string        `json:"platform"`
	Features     string        `json:"features"`
	Selected     string        `json:"selected,omitempty"`
	RuntimeClass string        `json:"runtimeClass,omitempty"`
	Annotations  bool          `json:"fromAnnotations"`
	Mismatches   []string      `json:"annotationMismatches,omitempty"`
	Ranking      []rankedEntry `json:"ranking"`
}

type rankedEntry struct {
	Manifest   string        `json:"manifest"`
	Platform   string        `json:"platform"`
	Compatible bool          `json:"compatible"`
	HasSpec    bool          `json:"hasSpec"`
	Score      int           `json:"score"`
	Runtime    string        `json:"runtime,omitempty"`
	Reason     string        `json:"reason,omitempty"`
	Result     *match.Result `json:"result,omitempty"`
	IndexSpec  *match.Result `json:"indexResult,omitempty"`
}

func runSelect(cmd *cobra.Command, opts *selectOptions) error {
	ctx := cmd.Context()
	features, source, err := selectFeatures(ctx, cmd, opts)
	if err != nil {
		return err
	}
	platform := opts.platform
	if platform == "" {
		platform = featuresPlatform(features)
	}
	want, err := oci.ParsePlatform(platform)
	if err != nil {
		return &exitError{code: exitUsage, msg: fmt.Sprintf("Error: --platform %q: %v", platform, err)}
	}
	if err := opts.target.guardLayout(opts.image); err != nil {
		return err
	}
	v, err := opts.policy.verifier(ctx)
	if err != nil {
		return err
	}
	t, err := oci.Open(ctx, opts.image, opts.target.options())
	if err != nil {
		return err
	}
	read := t.NewestSpec
	if v != nil {
		read = func(ctx context.Context, subject ocispec.Descriptor) (*spec.Spec, ocispec.Descriptor, error) {
			s, ref, err := trustedSpec(ctx, &resolved{target: t}, subject, v, cmd.ErrOrStderr())
			if isNoTrustedSpec(err) {
				cmd.PrintErrf("WARNING: %v: ranked as a manifest without a spec\n", err)
				return nil, ocispec.Descriptor{}, fmt.Errorf("%w: %v", oci.ErrNoSpec, err)
			}
			return s, ref, err
		}
	}
	root, err := t.Resolve(ctx)
	if err != nil {
		return err
	}
	rep := &selectReport{Image: opts.image, Platform: platform, Features: source}
	var cands []match.Candidate
	if !isIndex(root) {
		s, _, err := read(ctx, root)
		if err != nil && !isNoSpec(err) {
			return err
		}
		cands = []match.Candidate{{Descriptor: root, Spec: s}}
	} else {
		all, err := t.IndexSpecs(ctx, root, oci.IndexSpecsOptions{
			Filter: func(d ocispec.Descriptor) bool {
				return d.Platform != nil && d.Platform.OS == want.OS && d.Platform.Architecture == want.Architecture
			},
			SpecFunc:          read,
			UseAnnotations:    !opts.noAnnotations && v == nil,
			VerifyAnnotations: opts.verifyAnnotations,
		})
		if err != nil {
			return err
		}
		rep.Annotations, rep.Mismatches = all.FromAnnotations, all.Mismatches
		for _, m := range rep.Mismatches {
			cmd.PrintErrf("warning: %s; using the referrer\n", m)
		}
		for _, m := range all.Manifests {
			cands = append(cands, match.Candidate{Descriptor: m.Descriptor, Position: m.Position, Spec: m.Spec, IndexSpec: all.IndexSpec})
		}
		if len(cands) == 0 {
			var have []string
			for _, m := range all.Index.Manifests {
				have = append(have, oci.FormatPlatform(m.Platform))
			}
			printSelect(cmd, opts, rep)
			return &exitError{code: exitIncompatible, msg: fmt.Sprintf("No manifest of %s is for %s (the index has %s)", opts.image, platform, strings.Join(have, ", "))}
		}
	}
	ranked, err := match.Rank(cands, features, match.RankOptions{AllowedRuntimes: opts.allowedRuntimes})
	if err != nil {
		return err
	}
	for _, r := range ranked {
		rep.Ranking = append(rep.Ranking, rankedEntry{
			Manifest: t.Name() + "@" + r.Descriptor.Digest.String(), Platform: oci.FormatPlatform(r.Descriptor.Platform),
			Compatible: r.Compatible, HasSpec: r.HasSpec, Score: r.Score, Runtime: r.Runtime, Reason: r.Reason,
			Result: r.Result, IndexSpec: r.IndexResult,
		})
	}
	if best := ranked[0]; best.Compatible {
		rep.Selected = t.Name() + "@" + best.Descriptor.Digest.String()
		rep.RuntimeClass = best.Runtime
	}
	if err := printSelect(cmd, opts, rep); err != nil {
		return err
	}
	if rep.Selected == "" {
		var why []string
		for _, r := range rep.Ranking {
			why = append(why, fmt.Sprintf("  %s %s: %s", r.Manifest, strings.Trim(r.Platform, "()"), r.Reason))
		}
		return &exitError{code: exitIncompatible, msg: fmt.Sprintf("No manifest of %s fits %s:\n%s", opts.image, source, strings.Join(why, "\n"))}
	}
	return nil
}

func printSelect(cmd *cobra.Command, opts *selectOptions, rep *selectReport) error {
	out := cmd.OutOrStdout()
	if opts.output.format != "text" {
		return writeData(out, opts.output.format, rep)
	}
	if rep.Selected != "" {
		fmt.Fprintln(out, rep.Selected)
		if rep.RuntimeClass != "" {
			cmd.PrintErrf("runtime class: %s\n", rep.RuntimeClass)
		}
	}
	return nil
}

// selectFeatures loads the features of the host select works for.
func selectFeatures(ctx context.Context, cmd *cobra.Command, opts *selectOptions) (*host.Features, string, error) {
	if opts.node == "" {
		return loadFeatures(ctx, cmd, opts.features)
	}
	var nodes []host.Node
	var err error
	if opts.nodes != "" {
		nodes, err = host.ReadNodes(opts.nodes)
	} else {
		out, kerr := exec.CommandContext(ctx, "kubectl", "get", "node", opts.node, "-o", "json").Output()
		if kerr != nil {
			return nil, "", withNext(fmt.Errorf("kubectl get node %s: %w", opts.node, kerr), "save the nodes with `kubectl get nodes -o json > nodes.json` and pass --nodes nodes.json")
		}
		nodes, err = host.ParseNodes(out, "kubectl get node "+opts.node)
	}
	if err != nil {
		return nil, "", err
	}
	for _, n := range nodes {
		if n.Name == opts.node {
			if n.FromLabels {
				inferred := "none"
				if len(n.Inferred) > 0 {
					inferred = strings.Join(n.Inferred, " ")
				}
				cmd.PrintErrf("note: features of node %s come from NFD's labels, which omit some cpuid flags (inferred from the labelled ones: %s); NodeFeature objects (kubectl get nodefeatures -A -o json) have them all\n", n.Name, inferred)
			}
			return n.Features, "node " + n.Name, nil
		}
	}
	return nil, "", fmt.Errorf("node %q is not in %s", opts.node, opts.nodes)
}

func isNoSpec(err error) bool { return err != nil && errors.Is(err, oci.ErrNoSpec) }
