package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/pkg/oci"
)

type discoverOptions struct {
	target targetOptions
	output outputOption
	image  string
}

func discoverCmd() *cobra.Command {
	var opts discoverOptions
	cmd := &cobra.Command{
		Use:   "discover IMAGE",
		Short: "List the compatibility specs attached to an image and, for an index, to its manifests",
		Long: `List the compatibility referrers of IMAGE and, when IMAGE is an index, of each of its manifests:
subject, platform, referrer digest and creation time, newest first per subject. Reads manifests
and the referrers list only; no blob is downloaded.`,
		Example: `  compat-attach discover --oci-layout examples/hello/build/oci:1.0
  compat-attach discover --plain-http localhost:5000/hello:1.0 -o json`,
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
	return cmd
}

// discoverEntry is one row of discover's output.
type discoverEntry struct {
	Subject      string `json:"subject"`
	Platform     string `json:"platform,omitempty"`
	Referrer     string `json:"referrer"`
	ArtifactType string `json:"artifactType"`
	Created      string `json:"created,omitempty"`
}

func runDiscover(cmd *cobra.Command, opts *discoverOptions) error {
	ctx := cmd.Context()
	t, err := oci.Open(ctx, opts.image, opts.target.options())
	if err != nil {
		return err
	}
	entries, err := t.Discover(ctx)
	if err != nil {
		return err
	}
	rows := make([]discoverEntry, 0, len(entries))
	for _, e := range entries {
		row := discoverEntry{
			Subject:      t.Name() + "@" + e.Subject.Digest.String(),
			Platform:     oci.FormatPlatform(e.Subject.Platform),
			Referrer:     t.Name() + "@" + e.Referrer.Digest.String(),
			ArtifactType: e.Referrer.ArtifactType,
		}
		if !e.Created.IsZero() {
			row.Created = e.Created.UTC().Format(time.RFC3339)
		}
		rows = append(rows, row)
	}
	out := cmd.OutOrStdout()
	if opts.output.format != "table" {
		return writeData(out, opts.output.format, rows)
	}
	tab := newTable(out, "SUBJECT", "PLATFORM", "REFERRER", "CREATED")
	for _, r := range rows {
		p := r.Platform
		if p == "" {
			p = "-"
		}
		tab.row(shortDigest(r.Subject), p, shortDigest(r.Referrer), r.Created)
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
