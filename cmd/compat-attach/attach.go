package main

import (
	"fmt"
	"sort"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/pkg/author"
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
	image     string
	doSign    bool
	sign      signOptions
	base      baseOptions
}

func attachCmd() *cobra.Command {
	var opts attachOptions
	cmd := &cobra.Command{
		Use:   "attach IMAGE --spec FILE [--platform os/arch[/variant]]...",
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
digest, its spec referrer, what was inherited and what was relaxed.`,
		Example: `  # Attach the example's specs to its multi-platform OCI layout
  compat-attach attach --oci-layout examples/hello/build/oci:1.0 --spec examples/hello/compat.cue

  # Attach one spec to the linux/amd64/v3 manifest of an image in a local registry
  compat-attach attach --plain-http localhost:5000/hello:1.0 --spec compat.cue --platform linux/amd64/v3

  # Inherit the base image's spec (the derived spec may only tighten it)
  compat-attach attach --plain-http localhost:5000/app:1.0 --spec compat.cue --base localhost:5000/base:1.0

  # Attach and sign (a sigstore bundle referrer per spec; see 'compat-attach sign --help')
  COSIGN_PASSWORD=... compat-attach attach --plain-http localhost:5000/hello:1.0 --spec compat.cue --sign --key cosign.key`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.image = args[0]
			if err := opts.output.validate(); err != nil {
				return err
			}
			return runAttach(cmd, &opts)
		},
	}
	opts.target.bind(cmd.Flags())
	opts.output.bind(cmd.Flags(), "text", "text", "json")
	opts.cue.bind(cmd.Flags())
	cmd.Flags().StringArrayVar(&opts.specFiles, "spec", nil, "spec file (.cue, .yaml, .json); repeat for the .cue files of one CUE package")
	cmd.Flags().StringArrayVar(&opts.platforms, "platform", nil, "attach to the manifest of this platform (os/arch[/variant]); repeatable")
	cmd.Flags().StringVar(&opts.created, "created", "", "creation time to record (RFC 3339; default now), for reproducible digests")
	cmd.Flags().BoolVar(&opts.doSign, "sign", false, "sign each attached spec (after it is pushed) with --key FILE or --keyless")
	opts.sign.bind(cmd.Flags())
	opts.base.bind(cmd.Flags())
	_ = cmd.MarkFlagRequired("spec")
	return cmd
}

// attachment is one referrer to push.
type attachment struct {
	subject  ocispec.Descriptor
	platform string
	spec     *spec.Spec
}

// attachResult is what attach prints per referrer.
type attachResult struct {
	Subject  string `json:"subject"`
	Platform string `json:"platform,omitempty"`
	Referrer string `json:"referrer"`
	Created  string `json:"created"`
	Bundle   string `json:"bundle,omitempty"`
	Signer   string `json:"signer,omitempty"`
}

func runAttach(cmd *cobra.Command, opts *attachOptions) error {
	ctx := cmd.Context()
	if err := oneDocument(opts.specFiles); err != nil {
		return err
	}
	created := time.Now().UTC().Truncate(time.Second)
	if opts.created != "" {
		t, err := time.Parse(time.RFC3339, opts.created)
		if err != nil {
			return &exitError{code: exitUsage, msg: fmt.Sprintf("Error: --created %q is not RFC 3339 (e.g. 2026-01-02T15:04:05Z)", opts.created)}
		}
		created = t.UTC()
	}
	res, err := author.Compile(ctx, opts.specFiles, opts.cue.options())
	if err != nil {
		return withNext(err, "run `compat-attach vet %s` and fix the problems above", opts.specFiles[0])
	}
	r, err := resolveImage(ctx, opts.image, &opts.target, "")
	if err != nil {
		return err
	}
	// Work out every subject before pushing anything: a bad --platform pushes nothing.
	jobs, err := planAttach(r, res, opts.platforms)
	if err != nil {
		return err
	}
	var signer *signing.Signer
	if opts.doSign {
		// Load the key (and ask its password) before pushing anything.
		if signer, err = opts.sign.signer(ctx); err != nil {
			return err
		}
	} else if opts.sign.given() {
		return &exitError{code: exitUsage, msg: "Error: --key and --keyless sign: add --sign"}
	}
	composed, err := inheritAll(ctx, cmd.ErrOrStderr(), opts, r, res, jobs)
	if err != nil {
		return err
	}
	var results []attachResult
	for i, j := range jobs {
		j.spec = composed[i].spec
		prov := &spec.Provenance{Tool: "compat-attach/" + version, Source: res.Sources, Base: composed[i].base}
		d, err := r.target.PushSpec(ctx, j.subject, j.spec, prov, created)
		if err != nil {
			return fmt.Errorf("attaching to %s: %w", r.ref(j.subject), err)
		}
		ar := attachResult{Subject: r.ref(j.subject), Platform: j.platform, Referrer: r.ref(d), Created: created.Format(time.RFC3339)}
		if signer != nil {
			// The spec referrer exists now: sign it (never a signature for nothing).
			sr, err := signSpec(ctx, r, j.subject, j.platform, d, j.spec, signer)
			if err != nil {
				return withNext(err, "the spec %s is attached but unsigned: fix the signing problem, then sign it with `compat-attach sign %s` and the same --key or --keyless flags (under a trust policy an unsigned spec is ignored)", ar.Referrer, opts.target.ref(opts.image))
			}
			ar.Bundle, ar.Signer = sr.Bundle, sr.Signer
		}
		results = append(results, ar)
	}
	out := cmd.OutOrStdout()
	if opts.output.format == "json" {
		return writeData(out, "json", results)
	}
	for _, a := range results {
		p := a.Platform
		if p == "" {
			p = "(index)"
			if !isIndex(r.root) {
				p = "(manifest)"
			}
		}
		fmt.Fprintf(out, "Attached %s to %s %s\n", a.Referrer, p, a.Subject)
		if a.Bundle != "" {
			fmt.Fprintf(out, "Signed   %s with %s: bundle %s\n", a.Referrer, a.Signer, a.Bundle)
		}
	}
	return nil
}

// planAttach decides which subject gets which spec (see the command's help).
func planAttach(r *resolved, res *author.Result, platforms []string) ([]attachment, error) {
	if r.index == nil {
		if len(platforms) > 1 {
			return nil, fmt.Errorf("%s is a single image manifest: give at most one --platform", r.target.Reference())
		}
		p := ""
		if len(platforms) == 1 {
			p = platforms[0]
		}
		s, err := res.For(p)
		if err != nil {
			return nil, withNext(err, "%s is a single manifest: say which platform's spec to attach with --platform", r.target.Reference())
		}
		return []attachment{{subject: r.root, platform: p, spec: s}}, nil
	}
	var jobs []attachment
	if len(platforms) > 0 {
		for _, p := range platforms {
			d, err := oci.SelectPlatform(r.index, p)
			if err != nil {
				return nil, withNext(fmt.Errorf("%s: %w", r.target.Reference(), err), "name a platform the index lists")
			}
			s, err := res.For(p)
			if err != nil {
				return nil, err
			}
			jobs = append(jobs, attachment{subject: d, platform: p, spec: s})
		}
		return jobs, nil
	}
	if len(res.Platforms) == 0 {
		s, err := res.For("")
		if err != nil {
			return nil, err
		}
		return []attachment{{subject: r.root, spec: s}}, nil
	}
	covered := map[string]bool{}
	keys := make([]string, 0, len(res.Platforms))
	for k := range res.Platforms {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, p := range keys {
		d, err := oci.SelectPlatform(r.index, p)
		if err != nil {
			return nil, withNext(fmt.Errorf("the spec names platform %s but %s has no manifest for it: %w", p, r.target.Reference(), err), "remove it from the spec or attach to another image")
		}
		covered[d.Digest.String()] = true
		jobs = append(jobs, attachment{subject: d, platform: p, spec: res.Platforms[p]})
	}
	if res.Default != nil {
		for _, m := range r.index.Manifests {
			if covered[m.Digest.String()] || m.Platform == nil {
				continue
			}
			jobs = append(jobs, attachment{subject: m, platform: oci.FormatPlatform(m.Platform), spec: res.Default})
		}
	}
	// Index order, so output follows the index.
	order := map[string]int{}
	for i, m := range r.index.Manifests {
		order[m.Digest.String()] = i
	}
	sort.SliceStable(jobs, func(a, b int) bool {
		return order[jobs[a].subject.Digest.String()] < order[jobs[b].subject.Digest.String()]
	})
	return jobs, nil
}
