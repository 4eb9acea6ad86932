package main

import (
	"fmt"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

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
		Long: `List the compatibility referrers of IMAGE and, when IMAGE is an index, of each of its manifests:
subject, platform, referrer digest, creation time and the tags of the spec's compatibility sets,
newest first per subject. Reads manifests
and the referrers list only; no blob is downloaded.

Under a trust policy (--policy, --key, --certificate-identity ...; see 'compat-attach verify --help'),
each entry is marked VERIFIED or UNVERIFIED with the reason (this fetches the specs and their
signature bundles).`,
		Example: `  compat-attach discover --oci-layout examples/hello/build/oci:1.0
  compat-attach discover --plain-http localhost:5000/hello:1.0 -o json
  compat-attach discover --plain-http localhost:5000/hello:1.0 --key cosign.pub`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.image = args[0]
			if err := opts.output.validate(); err != nil {
				return err
			}
			return runDiscover(cmd, &opts)
		},
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
	// Tags are the tags of the spec's compatibility sets, as its referrer announces them.
	Tags    []string `json:"tags,omitempty"`
	Created string   `json:"created,omitempty"`
	// Status is VERIFIED or UNVERIFIED under a trust policy, empty without one.
	Status string `json:"status,omitempty"`
	// Reason says why an entry is UNVERIFIED.
	Reason string `json:"reason,omitempty"`
}

func runDiscover(cmd *cobra.Command, opts *discoverOptions) error {
	ctx := cmd.Context()
	v, err := opts.policy.verifier(ctx)
	if err != nil {
		return err
	}
	if err := opts.target.guardLayout(opts.image); err != nil {
		return err
	}
	t, err := oci.Open(ctx, opts.image, opts.target.options())
	if err != nil {
		return err
	}
	entries, err := t.Discover(ctx)
	if err != nil {
		return err
	}
	if opts.platform.raw != "" {
		if entries, err = entriesOfPlatform(entries, opts.platform.raw); err != nil {
			return withNext(fmt.Errorf("%s: %w", opts.image, err), "list every platform's specs without --platform")
		}
	}
	// Under a policy: the status of every referrer, one verification per subject.
	status := map[string]*signing.SpecStatus{}
	if v != nil {
		done := map[string]bool{}
		for _, e := range entries {
			if done[e.Subject.Digest.String()] {
				continue
			}
			done[e.Subject.Digest.String()] = true
			res, err := signing.VerifySpecs(ctx, t, e.Subject, v)
			if err != nil {
				return err
			}
			for i := range res.Specs {
				status[res.Specs[i].Referrer.Digest.String()] = &res.Specs[i]
			}
		}
	}
	rows := make([]discoverEntry, 0, len(entries))
	for _, e := range entries {
		row := discoverEntry{
			Subject:      t.Name() + "@" + e.Subject.Digest.String(),
			Platform:     oci.FormatPlatform(e.Subject.Platform),
			Referrer:     t.Name() + "@" + e.Referrer.Digest.String(),
			ArtifactType: e.Referrer.ArtifactType,
			Tags:         oci.Tags(e.Referrer),
		}
		if !e.Created.IsZero() {
			row.Created = e.Created.UTC().Format(time.RFC3339)
		}
		if v != nil {
			row.Status = "UNVERIFIED"
			if st := status[e.Referrer.Digest.String()]; st != nil && st.Verified {
				row.Status = "VERIFIED"
			} else if st != nil {
				row.Reason = st.Reason()
				cmd.PrintErrf("Unverified spec %s: %s\n", row.Referrer, row.Reason)
			}
		}
		rows = append(rows, row)
	}
	out := cmd.OutOrStdout()
	if opts.output.format != "table" {
		return writeData(out, opts.output.format, rows)
	}
	header := []string{"SUBJECT", "PLATFORM", "REFERRER", "CREATED", "TAGS"}
	if v != nil {
		header = append(header, "SIGNATURE", "REASON")
	}
	tab := newTable(out, header...)
	for _, r := range rows {
		p := r.Platform
		if p == "" {
			p = "-"
		}
		tags := strings.Join(r.Tags, ",")
		if tags == "" {
			tags = "-"
		}
		cols := []string{shortDigest(r.Subject), p, shortDigest(r.Referrer), r.Created, tags}
		if v != nil {
			cols = append(cols, r.Status, r.Reason)
		}
		tab.row(cols...)
	}
	if err := tab.flush(); err != nil {
		return err
	}
	if len(rows) == 0 {
		cmd.PrintErrf("No compatibility spec is attached to %s\n", opts.image)
	}
	return nil
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

// entriesOfPlatform keeps the entries whose subject is the manifest of platform, chosen among the
// subjects as select and check choose (an exact match first).
func entriesOfPlatform(entries []oci.Entry, platform string) ([]oci.Entry, error) {
	idx := &ocispec.Index{}
	seen := map[string]bool{}
	for _, e := range entries {
		if e.Subject.Platform != nil && !seen[e.Subject.Digest.String()] {
			seen[e.Subject.Digest.String()] = true
			idx.Manifests = append(idx.Manifests, e.Subject)
		}
	}
	if len(idx.Manifests) == 0 {
		return nil, nil
	}
	d, err := oci.SelectPlatform(idx, platform)
	if err != nil {
		return nil, err
	}
	var out []oci.Entry
	for _, e := range entries {
		if e.Subject.Digest == d.Digest {
			out = append(out, e)
		}
	}
	return out, nil
}
