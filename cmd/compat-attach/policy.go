package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/compatkit/compatkit/internal/fileutil"
	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/signing"
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
	// requireTrusted (check, select, report): a manifest no trusted spec covers is not compatible.
	requireTrusted bool
	// sigRepo is where signature bundles are (default $COSIGN_REPOSITORY); maxReferrers bounds
	// the bundles read per subject.
	sigRepo      string
	maxReferrers int
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
	fs.StringVar(&o.sigRepo, "signature-repository", os.Getenv("COSIGN_REPOSITORY"), "the repository holding the signature bundles, as cosign's COSIGN_REPOSITORY (default $COSIGN_REPOSITORY; the image's own)")
	fs.IntVar(&o.maxReferrers, "max-referrers", signing.DefaultMaxReferrers, "under a policy: signature bundles of one subject read at most (a registry can hold any number)")
}

// bindRequireTrusted binds --require-trusted (for the commands that decide).
func (o *policyOptions) bindRequireTrusted(fs *pflag.FlagSet) {
	fs.BoolVar(&o.requireTrusted, "require-trusted", false, "under a trust policy: a manifest that no trusted spec covers (unsigned, stripped, untrusted or absent) is not compatible")
}

// validate checks the combinations of flags that need no file or network.
func (o *policyOptions) validate() error {
	if o.requireTrusted && !o.active() {
		return usagef("--require-trusted needs a trust policy: add --key, --certificate-identity[-regexp] with --certificate-oidc-issuer[-regexp], or --policy")
	}
	if !o.active() && (o.requireTlog || o.trustedRoot != "") {
		return usagef("--require-tlog and --trusted-root refine a trust policy: add --key, --certificate-identity[-regexp] with --certificate-oidc-issuer[-regexp], or --policy")
	}
	hasID := o.identity != "" || o.identityRegexp != ""
	hasIss := o.issuer != "" || o.issuerRegexp != ""
	if hasID != hasIss {
		return usagef("--certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp] go together")
	}
	return nil
}

// active reports whether a policy was given.
func (o *policyOptions) active() bool {
	return o.file != "" || len(o.keys) > 0 || o.identity != "" || o.identityRegexp != "" || o.issuer != "" || o.issuerRegexp != ""
}

// verifier compiles the policy; nil when none was given.
func (o *policyOptions) verifier(ctx context.Context) (*signing.Verifier, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if !o.active() {
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
	if o.identity != "" || o.identityRegexp != "" {
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

// trust compiles the policy with its verification options: nil when no policy was given. A
// signature repository is reached like IMAGE (target's --plain-http or --oci-layout).
func (o *policyOptions) trust(ctx context.Context, target *targetOptions) (*decide.Trust, error) {
	v, err := o.verifier(ctx)
	if err != nil || v == nil {
		return nil, err
	}
	if o.maxReferrers < 1 {
		return nil, usagef("--max-referrers %d: must be at least 1", o.maxReferrers)
	}
	tr := &decide.Trust{Verifier: v, Verify: signing.VerifyOptions{MaxReferrers: o.maxReferrers}}
	if tr.Verify.SignatureRepository, err = openSignatureRepository(ctx, o.sigRepo, target); err != nil {
		return nil, err
	}
	return tr, nil
}

// openSignatureRepository opens repo (a registry repository, or with --oci-layout a layout path)
// for signature bundles; nil when repo is empty.
func openSignatureRepository(ctx context.Context, repo string, target *targetOptions) (*oci.Target, error) {
	if repo == "" {
		return nil, nil
	}
	ref := repo
	if !target.ociLayout && !strings.ContainsAny(repo[strings.LastIndex(repo, "/")+1:], ":@") {
		ref = repo + ":signatures" // a repository; the reference is never resolved
	}
	t, err := oci.Open(ctx, ref, target.options(ctx))
	if err != nil {
		return nil, withNext(fmt.Errorf("--signature-repository (or COSIGN_REPOSITORY) %q: %w", repo, err), "give a repository such as registry.example/signatures, or unset COSIGN_REPOSITORY")
	}
	return t, nil
}

// absFromCwd makes a flag's relative path survive the policy's own directory resolution.
func absFromCwd(path, policyDir string) string {
	if policyDir == "" {
		return path
	}
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// isNoHostPlatform reports whether err is decide.ErrNoHostPlatform.
func isNoHostPlatform(err error) bool { return errors.Is(err, decide.ErrNoHostPlatform) }
