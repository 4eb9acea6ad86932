package main

import (
	"errors"
	"fmt"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/compatkit/compatkit/cmd/compat-attach/internal/display"
	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/match"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/spec"
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
	// The specs that apply to a subject: its own and those of the indexes above it (decide's rule),
	// with the references of their referrers.
	specsOf := func(subjects []ocispec.Descriptor) ([]*spec.Spec, []string, error) {
		var out []*spec.Spec
		var refs []string
		for _, ss := range img.Reader().Specs(ctx, subjects) {
			switch ss.State {
			case decide.SpecUnreadable:
				return nil, nil, withNext(ss.Err, "an affinity from specs that cannot be read would be a guess; see `compat-attach discover %s`", opts.target.ref(opts.image))
			case decide.SpecUntrusted:
				cmd.PrintErrf("WARNING: %s: its specs are left out\n", display.Line(ss.Err.Error()))
			case decide.SpecFound:
				out = append(out, ss.Spec)
				refs = append(refs, img.Ref(ss.Referrer))
			}
		}
		return out, refs, nil
	}
	var a *match.Affinity
	if !img.Tree.IsIndex() {
		specs, refs, err := specsOf([]ocispec.Descriptor{img.Tree.Root})
		if err != nil {
			return err
		}
		if a, err = match.NodeAffinity(specs...); err != nil {
			return affinityTooLarge(err, img.Ref(img.Tree.Root), refs, opts)
		}
	} else {
		entries, err := affinityEntries(img, opts.platform.raw)
		if err != nil {
			return err
		}
		var parts []*match.Affinity
		for _, e := range entries {
			subjects := []ocispec.Descriptor{e.Descriptor}
			for i := len(e.Indexes) - 1; i >= 0; i-- {
				subjects = append(subjects, e.Indexes[i])
			}
			specs, refs, err := specsOf(subjects)
			if err != nil {
				return err
			}
			pa, err := match.NodeAffinity(specs...)
			if err != nil {
				return affinityTooLarge(err, img.Ref(e.Descriptor)+" ("+oci.FormatPlatform(e.Descriptor.Platform)+")", refs, opts)
			}
			reqs, omitted := match.PlatformRequirements(oci.FormatPlatform(e.Descriptor.Platform))
			pa.Require(reqs...)
			if omitted != "" {
				pa.Omitted = append(pa.Omitted, match.Omission{Set: "platform", Rule: oci.FormatPlatform(e.Descriptor.Platform),
					What: omitted, Why: "a node that cannot run this entry may be selected"})
			}
			parts = append(parts, pa)
		}
		if a, err = match.Union(parts...); err != nil {
			return affinityTooLarge(err, fmt.Sprintf("%s (%d platforms)", img.Ref(img.Tree.Root), len(parts)), nil, opts)
		}
	}
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

// affinityTooLarge turns match's *TooLargeError for the affinity of what (an image, an index entry
// or the index's platforms together) into the error the command prints: the spec that took the
// affinity past the bound (refs, parallel to the specs given to NodeAffinity), and what to do.
func affinityTooLarge(err error, what string, refs []string, opts *affinityOptions) error {
	var tl *match.TooLargeError
	if errors.As(err, &tl) && tl.Spec >= 0 && tl.Spec < len(refs) {
		err = fmt.Errorf("spec %s: %w", refs[tl.Spec], err)
	}
	return withNext(fmt.Errorf("no node affinity for %s: %w", what, err),
		"simplify the spec (fewer compatibility sets, matchAny alternatives, pci.device classes and vendors), or decide on the node with `compat-attach check %s` or at admission with a webhook on pkg/decide (examples/sdk) instead of an affinity", opts.target.ref(opts.image))
}

// affinityEntries lists the entries of the index to derive an affinity for: the one platform
// names, or every image entry (BuildKit's attestations excluded).
func affinityEntries(img *decide.Image, platform string) ([]oci.IndexEntry, error) {
	if platform != "" {
		e, err := img.Named(platform)
		if err != nil {
			return nil, withNext(err, "name a platform the index lists")
		}
		return []oci.IndexEntry{e}, nil
	}
	var out []oci.IndexEntry
	for _, e := range img.Tree.Manifests {
		if !e.Attestation() && e.Descriptor.Platform != nil {
			out = append(out, e)
		}
	}
	return out, nil
}
