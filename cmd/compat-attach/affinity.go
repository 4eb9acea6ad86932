package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/compatkit/compatkit/cmd/compat-attach/internal/display"
	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/match"
)

type affinityOptions struct {
	target   targetOptions
	platform platformOption
	output   outputOption
	policy   policyOptions
	image    string
}

func affinityCmd() *cobra.Command {
	var opts affinityOptions
	cmd := &cobra.Command{
		Use:   "affinity IMAGE [--platform os/arch[/variant]]",
		Short: "Print a Kubernetes nodeAffinity that schedules the image on compatible nodes (NFD labels)",
		Long: `Derive a Kubernetes node affinity from the image's compatibility spec, on the node labels that
Node Feature Discovery publishes (feature.node.kubernetes.io/...), to paste into a pod template.

  requiredDuringSchedulingIgnoredDuringExecution: one node selector term per compatibility set
    (terms are ORed, as sets are); a term's matchExpressions are the set's rules:
      cpu.cpuid AVX2 Exists          → feature.node.kubernetes.io/cpu-cpuid.AVX2 In [true]
      kernel.version major Ge 5      → feature.node.kubernetes.io/kernel-version.major Gt [4]
      GtLt / GeLe                    → a Gt and an Lt requirement
      NotIn                          → Exists and NotIn (NFD's NotIn needs the element)
      system.osrelease ID In [...]   → feature.node.kubernetes.io/system-os_release.ID In [...]
      pci.device class/vendor In     → one term per feature.node.kubernetes.io/pci-<class>_<vendor>.present
      matchAny                       → one term per alternative (distributed, at most 32 terms per set)
  preferredDuringSchedulingIgnoredDuringExecution: the sets' terms with their weights (1-100),
    when the sets' weights differ.

For an index, each platform's manifest spec is combined with the index's spec (both must hold)
and kubernetes.io/os and kubernetes.io/arch requirements; without --platform every platform of
the index is a term of its own. An amd64 variant (v2-v4) requires the level's cpuid flags that
NFD labels (AVX, AVX2, FMA3, MOVBE, OSXSAVE, LAHF, AVX512*), which NFD v0.18 and v0.19 both
publish; the level's unlabelled flags are listed as not expressed. NFD v0.19's own
cpu-cpuid.X86_64_V<n> label is not required, so that nodes of older releases still match (a spec
may require it: templates/x86-64-levels nfdLevel). arm variants have no label.

What cannot be expressed is left out, which weakens the affinity (it may select a node that fails
the spec, never reject one that passes; 'compat-attach check' on the node, or a runtime with
compatkit, still refuses the image there):
  - cpuid flags that NFD does not label (BMI1, BMI2, POPCNT, SSE4.2, ... see NFDUnlabelledCPUID),
    attributes NFD does not label by default, PCI classes other than 03, 0b40 and 12;
  - type: version comparisons, InRegexp, matchName (node selectors have neither);
  - a rule whose alternatives would exceed 32 terms.
They are listed on stderr and in the output (a YAML comment, the JSON field "omitted"). A set
whose term becomes empty accepts every node, so no required affinity is printed then. Known
difference: DoesNotExist also holds on a node where NFD published no label of that feature at
all, where NFD's rule would fail.

An affinity of more than 1024 terms, or 65536 requirements in all (the specs that must hold
multiplied, the platforms added), is an error: such specs are better decided on the node
('compat-attach check') or at admission (pkg/decide).`,
		Example: `  # The affinity of the example image, every platform
  compat-attach affinity --oci-layout examples/hello/build/oci:1.0

  # For a Deployment: paste under spec.template.spec
  compat-attach affinity --plain-http localhost:5000/hello:1.0 --platform linux/amd64`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			opts.image = args[0]
			return validateAll(opts.output.validate, opts.platform.validate, opts.policy.validate)
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runAffinity(cmd, &opts) },
	}
	opts.target.bind(cmd.Flags())
	opts.platform.bind(cmd.Flags(), "only this platform's entry of an index (os/arch[/variant]); default: every platform")
	opts.output.bind(cmd.Flags(), "yaml", "yaml", "json")
	opts.policy.bind(cmd.Flags())
	return cmd
}

// affinityOutput is what affinity prints.
type affinityOutput struct {
	Affinity struct {
		NodeAffinity *corev1.NodeAffinity `json:"nodeAffinity"`
	} `json:"affinity"`
	Omitted []match.Omission `json:"omitted,omitempty"`
}

func runAffinity(cmd *cobra.Command, opts *affinityOptions) error {
	ctx := cmd.Context()
	trust, err := opts.policy.trust(ctx, &opts.target)
	if err != nil {
		return err
	}
	img, err := opts.target.image(ctx, opts.image, trust)
	if err != nil {
		return err
	}
	ia, err := img.Affinity(ctx, decide.AffinityOptions{Platform: opts.platform.raw})
	if err != nil {
		var tl *match.TooLargeError
		if errors.As(err, &tl) {
			return withNext(err, "simplify the spec (fewer compatibility sets, matchAny alternatives, pci.device classes and vendors), or decide on the node with `compat-attach check %s` or at admission with `compat-attach webhook` (pkg/admission) instead of an affinity", opts.target.ref(opts.image))
		}
		if opts.platform.raw != "" && img.Tree.IsIndex() {
			if _, nerr := img.Named(opts.platform.raw); nerr != nil {
				return withNext(err, "name a platform the index lists")
			}
		}
		return withNext(err, "an affinity from specs that cannot be read would be a guess; see `compat-attach discover %s`", opts.target.ref(opts.image))
	}
	for _, ss := range ia.Untrusted {
		cmd.PrintErrf("WARNING: %s: its specs are left out\n", display.Line(ss.Err.Error()))
	}
	a := ia.Affinity
	if trust == nil {
		cmd.PrintErrln(unverifiedNote)
	}
	var out affinityOutput
	out.Affinity.NodeAffinity = a.NodeAffinity()
	seen := map[string]bool{}
	for _, o := range a.Omitted {
		if !seen[o.String()] {
			seen[o.String()] = true
			out.Omitted = append(out.Omitted, o)
		}
	}
	for _, o := range out.Omitted {
		cmd.PrintErrf("not expressed: %s\n", display.Line(o.String()))
	}
	w := cmd.OutOrStdout()
	if opts.output.format == "yaml" {
		yamlComment(w, "node affinity of %s", opts.image)
		if len(out.Omitted) > 0 {
			yamlComment(w, "Not expressed (the affinity is weaker than the spec; check still applies):")
			for _, o := range out.Omitted {
				yamlComment(w, "  %s", o)
			}
		}
		if out.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
			yamlComment(w, "No required terms: the spec does not constrain the labels Kubernetes can match.")
		}
		return display.Print(w, "yaml", struct {
			Affinity any `json:"affinity"`
		}{out.Affinity})
	}
	return display.Print(w, "json", out)
}

// yamlComment writes one YAML comment line. The text holds values from specs and indexes (rule
// names, platforms): it is escaped onto one line (display.Line escapes every character a YAML
// parser takes for a line break, \r, NEL, U+2028 and U+2029 included), so that nothing in it can
// end the comment and add keys to a pod spec the output is pasted into.
func yamlComment(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "# %s\n", display.Line(fmt.Sprintf(format, args...)))
}
