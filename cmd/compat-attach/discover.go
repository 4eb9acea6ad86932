package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/cmd/compat-attach/internal/display"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/signing"
)

type discoverOptions struct {
	target   targetOptions
	output   outputOption
	policy   policyOptions
	platform platformOption
	image    string
}

func discoverCmd() *cobra.Command {
	var opts discoverOptions
	cmd := &cobra.Command{
		Use:   "discover IMAGE",
		Short: "List the compatibility specs attached to an image and, for an index, to its manifests",
		Long: `List the compatibility referrers of IMAGE and, when IMAGE is an index (OCI or a Docker manifest
list, nested indexes included), of each of its manifests: subject, platform, referrer digest,
creation time and the tags of the spec's compatibility sets, newest first per subject. Reads
manifests and the referrers lists only; no blob is downloaded. With --platform, the entry that
platform names and the indexes above it.

Under a trust policy (--policy, --key, --certificate-identity ...; see 'compat-attach verify --help'),
each entry is marked VERIFIED or UNVERIFIED with the reason (this fetches the specs and their
signature bundles).`,
		Example: `  compat-attach discover --oci-layout examples/hello/build/oci:1.0
  compat-attach discover --plain-http localhost:5000/hello:1.0 -o json
  compat-attach discover --plain-http localhost:5000/hello:1.0 --key cosign.pub`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			opts.image = args[0]
			return validateAll(opts.output.validate, opts.platform.validate, opts.policy.validate)
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runDiscover(cmd, &opts) },
	}
	opts.target.bind(cmd.Flags())
	opts.output.bind(cmd.Flags(), "table", "table", "json", "yaml")
	opts.policy.bind(cmd.Flags())
	opts.platform.bind(cmd.Flags(), "list only the specs of this platform's manifest (os/arch[/variant])")
	return cmd
}

// discoverEntry is one row of discover's output.
type discoverEntry struct {
	Subject      string `json:"subject"`
	Platform     string `json:"platform,omitempty"`
	Referrer     string `json:"referrer"`
	ArtifactType string `json:"artifactType"`
	// Kind is "referrer" (an NFD compatibility referrer) or "attestation" (a build's in-toto
	// attestation in the index, from compatkit's BuildKit frontend; Referrer is then the
	// attestation manifest).
	Kind string `json:"kind"`
	// Tags are the tags of the spec's compatibility sets, as its referrer announces them.
	Tags    []string `json:"tags,omitempty"`
	Created string   `json:"created,omitempty"`
	// Status is VERIFIED or UNVERIFIED under a trust policy, empty without one.
	Status string `json:"status,omitempty"`
	// Reason says why an entry is UNVERIFIED.
	Reason string `json:"reason,omitempty"`
}

// discoverOutput is the model discover prints.
type discoverOutput struct {
	rows         []discoverEntry
	policy       bool
	attestations bool
}

// MarshalJSON writes the rows (the JSON and YAML output is the list of entries).
func (o discoverOutput) MarshalJSON() ([]byte, error) {
	if o.rows == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(o.rows)
}

func runDiscover(cmd *cobra.Command, opts *discoverOptions) error {
	ctx := cmd.Context()
	trust, err := opts.policy.trust(ctx, &opts.target)
	if err != nil {
		return err
	}
	img, err := opts.target.image(ctx, opts.image, nil)
	if err != nil {
		return err
	}
	t := img.Reader().Target()
	tree := img.Tree
	if opts.platform.raw != "" {
		e, err := img.Named(opts.platform.raw)
		if err != nil {
			return withNext(fmt.Errorf("%s: %w", opts.image, err), "list every platform's specs without --platform")
		}
		// The entry and the indexes above it, nearest first after the entry itself.
		tree = &oci.Tree{Root: e.Descriptor}
		for i := len(e.Indexes) - 1; i >= 0; i-- {
			tree.Manifests = append(tree.Manifests, oci.IndexEntry{Descriptor: e.Indexes[i]})
		}
	}
	entries, err := t.DiscoverTree(ctx, tree)
	if err != nil {
		return err
	}
	// Under a policy: the status of every referrer, one verification per subject.
	status := map[string]*signing.SpecStatus{}
	if trust != nil {
		done := map[string]bool{}
		for _, e := range entries {
			if done[e.Subject.Digest.String()] {
				continue
			}
			done[e.Subject.Digest.String()] = true
			res, err := signing.VerifySpecs(ctx, t, e.Subject, trust.Verifier, trust.Verify)
			if err != nil {
				return err
			}
			for i := range res.Specs {
				status[res.Specs[i].Referrer.Digest.String()] = &res.Specs[i]
			}
		}
	}
	out := discoverOutput{policy: trust != nil}
	for _, e := range entries {
		row := discoverEntry{
			Subject:      img.Ref(e.Subject),
			Referrer:     img.Ref(e.Referrer),
			ArtifactType: e.Referrer.ArtifactType,
			Tags:         oci.Tags(e.Referrer),
		}
		if e.Subject.Platform != nil {
			row.Platform = oci.FormatPlatform(e.Subject.Platform)
		}
		if !e.Created.IsZero() {
			row.Created = e.Created.UTC().Format(time.RFC3339)
		}
		row.Kind = "referrer"
		if trust != nil {
			row.Status = "UNVERIFIED"
			if st := status[e.Referrer.Digest.String()]; st != nil && st.Verified {
				row.Status = "VERIFIED"
			} else if st != nil {
				row.Reason = st.Reason()
			}
		}
		out.rows = append(out.rows, row)
	}
	// Specs that builds attached as attestations (compatkit's BuildKit frontend).
	atts, err := img.BuildAttested(ctx)
	if err != nil {
		return err
	}
	inTree := map[string]bool{}
	for _, m := range append([]oci.IndexEntry{{Descriptor: tree.Root}}, tree.Manifests...) {
		inTree[m.Descriptor.Digest.String()] = true
	}
	for _, a := range atts {
		if !inTree[a.Subject.Digest.String()] {
			continue
		}
		row := discoverEntry{Subject: img.Ref(a.Subject), Referrer: img.Ref(a.Manifest), ArtifactType: a.Manifest.ArtifactType, Kind: "attestation", Platform: a.Platform}
		if a.Subject.Platform != nil {
			row.Platform = oci.FormatPlatform(a.Subject.Platform)
		}
		for _, c := range a.Spec.Compatibilities {
			if c.Tag != "" {
				row.Tags = append(row.Tags, c.Tag)
			}
		}
		if trust != nil {
			row.Status, row.Reason = "UNVERIFIED", "a build attestation is not signed: publish it with `compat-attach attach --from-attestations --sign`"
		}
		out.attestations = true
		out.rows = append(out.rows, row)
	}
	if err := display.Print(cmd.OutOrStdout(), opts.output.format, out); err != nil {
		return err
	}
	if len(out.rows) == 0 {
		cmd.PrintErrf("No compatibility spec is attached to %s\n", opts.image)
	}
	return nil
}

// Text implements display.Texter: a table.
func (o discoverOutput) Text(w io.Writer) error {
	header := []string{"SUBJECT", "PLATFORM", "REFERRER", "CREATED", "TAGS"}
	if o.attestations {
		header = append(header, "KIND")
	}
	if o.policy {
		header = append(header, "SIGNATURE", "REASON")
	}
	tab := display.NewTable(w, header...)
	for _, r := range o.rows {
		p := r.Platform
		if p == "" {
			p = "-"
		}
		tags := strings.Join(r.Tags, ",")
		if tags == "" {
			tags = "-"
		}
		created := r.Created
		if created == "" {
			created = "-"
		}
		cols := []string{shortDigest(r.Subject), p, shortDigest(r.Referrer), created, tags}
		if o.attestations {
			cols = append(cols, r.Kind)
		}
		if o.policy {
			cols = append(cols, r.Status, r.Reason)
		}
		tab.Row(cols...)
	}
	return tab.Flush()
}

// shortDigest shortens REPO@sha256:<64 hex> to REPO@sha256:<12 hex> for tables.
func shortDigest(ref string) string {
	for i := len(ref) - 1; i >= 0; i-- {
		if ref[i] == ':' {
			if len(ref)-i-1 > 12 {
				return ref[:i+13]
			}
			break
		}
	}
	return ref
}
