package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/pflag"

	"github.com/compatkit/compatkit/internal/fileutil"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/signing"
	"github.com/compatkit/compatkit/pkg/spec"
)

// policyOptions is the trust policy of reading commands (verify, check, fetch, discover): a policy
// file and/or the equivalent flags. Without any, nothing is verified (today's behaviour).
type policyOptions struct {
	file           string
	keys           []string
	identity       string
	identityRegexp string
	issuer         string
	issuerRegexp   string
	trustedRoot    string
	requireTlog    bool
}

func (o *policyOptions) bind(fs *pflag.FlagSet) {
	fs.StringVar(&o.file, "policy", "", "trust policy file (YAML: keys, identities, trustedRoot, requireTransparencyLog); only specs it trusts are used")
	fs.StringArrayVar(&o.keys, "key", nil, "trust signatures by this public key (PEM, e.g. cosign.pub); repeatable")
	fs.StringVar(&o.identity, "certificate-identity", "", "trust keyless signatures whose certificate SAN is exactly this (URI or email)")
	fs.StringVar(&o.identityRegexp, "certificate-identity-regexp", "", "trust keyless signatures whose certificate SAN matches this Go regexp")
	fs.StringVar(&o.issuer, "certificate-oidc-issuer", "", "with --certificate-identity[-regexp]: the OIDC issuer, exactly")
	fs.StringVar(&o.issuerRegexp, "certificate-oidc-issuer-regexp", "", "with --certificate-identity[-regexp]: the OIDC issuer, as a Go regexp")
	fs.StringVar(&o.trustedRoot, "trusted-root", "", "sigstore trusted_root.json for keyless signatures (default: sigstore's public root through TUF)")
	fs.BoolVar(&o.requireTlog, "require-tlog", false, "require a Rekor transparency log entry in every signature")
}

// active reports whether a policy was given.
func (o *policyOptions) active() bool {
	return o.file != "" || len(o.keys) > 0 || o.identity != "" || o.identityRegexp != "" || o.issuer != "" || o.issuerRegexp != ""
}

// verifier compiles the policy; nil when none was given.
func (o *policyOptions) verifier(ctx context.Context) (*signing.Verifier, error) {
	if !o.active() {
		if o.requireTlog || o.trustedRoot != "" {
			return nil, &usageError{err: fmt.Errorf("--require-tlog and --trusted-root refine a trust policy: add --key, --certificate-identity[-regexp] with --certificate-oidc-issuer[-regexp], or --policy")}
		}
		return nil, nil
	}
	p := &signing.Policy{}
	if o.file != "" {
		var err error
		if p, err = signing.LoadPolicy(o.file); err != nil {
			return nil, withNext(err, "fix the policy file; see `compat-attach verify --help` for its format")
		}
	}
	for _, k := range o.keys {
		// Check the flag's key here, so that the error names the flag rather than a policy entry.
		if _, err := signing.LoadPublicKey(k); err != nil {
			hint := "give the public key file (PEM PUBLIC KEY, e.g. cosign.pub)"
			if b, rerr := fileutil.ReadLimited(k, 64<<10); rerr == nil && strings.Contains(string(b), "PRIVATE KEY") {
				hint = "this is a private key: give its public half (" + strings.TrimSuffix(k, filepath.Ext(k)) + ".pub)"
			}
			return nil, withNext(fmt.Errorf("--key %s: %w", k, err), "%s", hint)
		}
		p.Keys = append(p.Keys, signing.PolicyKey{Path: absFromCwd(k, p.Dir)})
	}
	hasID := o.identity != "" || o.identityRegexp != ""
	hasIss := o.issuer != "" || o.issuerRegexp != ""
	if hasID != hasIss {
		return nil, &exitError{code: exitUsage, msg: "Error: --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp] go together"}
	}
	if hasID {
		p.Identities = append(p.Identities, signing.PolicyIdentity{Issuer: o.issuer, IssuerRegExp: o.issuerRegexp, Subject: o.identity, SubjectRegExp: o.identityRegexp})
	}
	if o.trustedRoot != "" {
		p.TrustedRoot = absFromCwd(o.trustedRoot, p.Dir)
	}
	p.RequireTransparencyLog = p.RequireTransparencyLog || o.requireTlog
	v, err := p.Compile(ctx)
	if err != nil {
		return nil, withNext(err, "check the policy's keys, identities and trusted root")
	}
	return v, nil
}

// absFromCwd makes a flag's relative path survive the policy's own directory resolution.
func absFromCwd(path, policyDir string) string {
	if policyDir == "" {
		return path
	}
	if abs, err := filepathAbs(path); err == nil {
		return abs
	}
	return path
}

// trustedSpec returns the newest spec of subject that verifies under v, telling stderr about each
// newer spec it ignores. It returns oci.ErrNoSpec when subject has no spec at all and
// signing.ErrNoTrustedSpec when it has specs but none verifies.
func trustedSpec(ctx context.Context, r *resolved, subject ocispec.Descriptor, v *signing.Verifier, stderr io.Writer) (*spec.Spec, ocispec.Descriptor, error) {
	res, err := signing.VerifySpecs(ctx, r.target, subject, v)
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	if len(res.Specs) == 0 {
		return nil, ocispec.Descriptor{}, fmt.Errorf("%w: %s has no referrer of artifactType %s", oci.ErrNoSpec, r.ref(subject), spec.ArtifactType)
	}
	for _, s := range res.Specs {
		if s.Verified {
			fmt.Fprintf(stderr, "Using spec %s: VERIFIED (%s)\n", r.ref(s.Referrer), s.Signer)
			return s.Spec, s.Referrer, nil
		}
		fmt.Fprintf(stderr, "Ignoring spec %s: %s\n", r.ref(s.Referrer), s.Reason())
	}
	return nil, ocispec.Descriptor{}, fmt.Errorf("%w: none of the %d specs of %s verifies under the policy (%s)", signing.ErrNoTrustedSpec, len(res.Specs), r.ref(subject), v)
}

// isNoTrustedSpec reports whether err is signing.ErrNoTrustedSpec.
func isNoTrustedSpec(err error) bool { return errors.Is(err, signing.ErrNoTrustedSpec) }
