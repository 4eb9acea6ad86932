package main

import (
	"fmt"
	"io"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/cmd/compat-attach/internal/display"
	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/signing"
)

type verifyOptions struct {
	target   targetOptions
	platform platformOption
	policy   policyOptions
	output   outputOption
	image    string
}

func verifyCmd() *cobra.Command {
	var opts verifyOptions
	cmd := &cobra.Command{
		Use:   "verify IMAGE [--platform os/arch[/variant]] --policy FILE | --key PUB | --certificate-identity ... --certificate-oidc-issuer ...",
		Short: "Check the signatures of the compatibility specs of an image against a trust policy",
		Long: `List each compatibility spec of IMAGE (with --platform: of that platform's manifest and of the index;
without: of the image and of every manifest of its index) with VERIFIED, or the reason it is not:
unsigned; no trusted signature (wrong key, wrong identity, untrusted CA); certificate not valid at
signing time; statement subject is another image (replay); predicate names another referrer (swap);
spec content differs from the signed one (tampered).

A spec is VERIFIED when a sigstore bundle attached to the same image (or kept in
--signature-repository, as cosign's COSIGN_REPOSITORY) verifies under the policy and its in-toto
statement (v1, or cosign's default v0.1) names exactly this image digest, this spec referrer digest
and this spec. Bundles are checked first and only the specs they name are fetched, so any number
of unsigned specs costs their listing alone; --max-referrers bounds the bundles read per subject.
Verified specs are listed first, newest first by the creation time inside their (signed) referrer
manifest, never by the listing's unsigned annotation.

Exit codes: 0 when every spec checked verifies; 1 when any does not (each is listed with why), or
on an error.

The policy file (--policy) is YAML; relative paths are relative to it:

  # compatkit trust policy
  keys: [{path: cosign.pub}]            # or {pem: "-----BEGIN PUBLIC KEY-----..."}
  identities:
    - issuer: https://token.actions.githubusercontent.com
      subjectRegExp: ^https://github.com/myorg/.*
  trustedRoot: trusted_root.json          # keyless; default: sigstore's public root through TUF
  requireTransparencyLog: false

The flags --key, --certificate-identity[-regexp], --certificate-oidc-issuer[-regexp] and
--trusted-root say the same (and add to a policy file). check, fetch and discover take them too.

Exit codes: 0 at least one spec verifies, 1 none does (or an error), 2 usage.`,
		Example: `  compat-attach verify --plain-http localhost:5000/hello:1.0 --key cosign.pub
  compat-attach verify --oci-layout build/oci:1.0 --platform linux/amd64/v3 --policy policy.yaml
  compat-attach verify ghcr.io/org/app:1.0 --certificate-oidc-issuer https://token.actions.githubusercontent.com \
      --certificate-identity-regexp '^https://github.com/org/.*' -o json`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			opts.image = args[0]
			if err := validateAll(opts.output.validate, opts.platform.validate, opts.policy.validate); err != nil {
				return err
			}
			if !opts.policy.active() {
				return usagef("give a trust policy: --policy FILE, --key PUB, or --certificate-identity[-regexp] with --certificate-oidc-issuer[-regexp]")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runVerify(cmd, &opts) },
	}
	opts.target.bind(cmd.Flags())
	opts.platform.bind(cmd.Flags(), "verify the specs of this platform's manifest (os/arch[/variant]) and of the index")
	opts.policy.bind(cmd.Flags())
	opts.output.bind(cmd.Flags(), "text", "text", "json", "yaml")
	return cmd
}

// verifiedEntry is one spec as verify prints it.
type verifiedEntry struct {
	Subject  string `json:"subject"`
	Platform string `json:"platform,omitempty"`
	Referrer string `json:"referrer"`
	Created  string `json:"created,omitempty"`
	Status   string `json:"status"` // VERIFIED or UNVERIFIED
	Reason   string `json:"reason,omitempty"`
	Signer   string `json:"signer,omitempty"`
	Bundle   string `json:"bundle,omitempty"`
}

// verifyOutput is the model verify prints.
type verifyOutput []verifiedEntry

func runVerify(cmd *cobra.Command, opts *verifyOptions) error {
	ctx := cmd.Context()
	trust, err := opts.policy.trust(ctx, &opts.target)
	if err != nil {
		return err
	}
	img, err := opts.target.image(ctx, opts.image, trust)
	if err != nil {
		return err
	}
	var subjects []ocispec.Descriptor
	switch {
	case opts.platform.raw != "":
		e, err := img.Named(opts.platform.raw)
		if err != nil {
			return withNext(fmt.Errorf("%s: %w", opts.image, err), "pick one of the index's platforms with --platform")
		}
		subjects = []ocispec.Descriptor{e.Descriptor}
		for i := len(e.Indexes) - 1; i >= 0; i-- {
			subjects = append(subjects, e.Indexes[i])
		}
	default:
		subjects = append([]ocispec.Descriptor{img.Tree.Root}, img.Tree.Indexes...)
		if len(img.Tree.Indexes) > 0 {
			subjects = subjects[1:] // the root is the first index
		}
		for _, e := range img.Tree.Manifests {
			if !e.Attestation() {
				subjects = append(subjects, e.Descriptor)
			}
		}
	}
	var rows verifyOutput
	verified := 0
	for _, sub := range subjects {
		res, err := signing.VerifySpecs(ctx, img.Reader().Target(), sub, trust.Verifier, trust.Verify)
		if err != nil {
			return err
		}
		rows = append(rows, statusRows(img, res)...)
	}
	for _, row := range rows {
		if row.Status == "VERIFIED" {
			verified++
		}
	}
	if err := display.Print(cmd.OutOrStdout(), opts.output.format, rows); err != nil {
		return err
	}
	if len(rows) == 0 && opts.output.format == "text" {
		fmt.Fprintf(cmd.OutOrStdout(), "No compatibility spec is attached to %s\n", opts.image)
	}
	if failed := len(rows) - verified; failed > 0 || verified == 0 {
		what := fmt.Sprintf("%d of the %d specs of %s do not verify", failed, len(rows), opts.image)
		if verified == 0 {
			what = fmt.Sprintf("no spec of %s verifies", opts.image)
		}
		return &exitError{code: exitFailure, msg: fmt.Sprintf("Error: %s under the policy (%s)\nNext: sign the specs you wrote with `compat-attach sign %s --spec FILE --key FILE`, or check the policy's keys and identities", what, trust.Verifier, opts.target.ref(opts.image))}
	}
	return nil
}

// Text implements display.Texter: one line per spec and one under it, each value escaped onto
// its line (the platform and the references come from the registry).
func (rows verifyOutput) Text(w io.Writer) error {
	for _, row := range rows {
		p := row.Platform
		if p == "" {
			p = "-"
		}
		fmt.Fprintf(w, "%s  %s  %s  %s\n", display.Line(row.Referrer), display.Line(p), display.Line(row.Created), row.Status)
		if row.Status == "VERIFIED" {
			fmt.Fprintf(w, "    signed by %s (bundle %s)\n", display.Line(row.Signer), display.Line(row.Bundle))
		} else {
			fmt.Fprintf(w, "    %s\n", display.Line(row.Reason))
		}
	}
	return nil
}

// statusRows turns a verification result into printable rows.
func statusRows(img *decide.Image, res *signing.Result) []verifiedEntry {
	var rows []verifiedEntry
	for _, s := range res.Specs {
		row := verifiedEntry{Subject: img.Ref(s.Subject), Referrer: img.Ref(s.Referrer), Status: "UNVERIFIED"}
		if s.Subject.Platform != nil {
			row.Platform = oci.FormatPlatform(s.Subject.Platform)
		}
		if !s.Created.IsZero() {
			row.Created = s.Created.UTC().Format(time.RFC3339)
		}
		if s.Verified {
			row.Status, row.Signer, row.Bundle = "VERIFIED", s.Signer, img.Ref(s.Bundle)
		} else {
			row.Reason = s.Reason()
		}
		rows = append(rows, row)
	}
	return rows
}
