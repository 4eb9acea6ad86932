package signing

import (
	"context"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/compatkit/compatkit/internal/fileutil"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	"sigs.k8s.io/yaml"
)

// Policy is a trust policy: the keys and keyless identities whose signatures are trusted. Its
// YAML form:
//
//	# compatkit trust policy
//	keys: [{path: cosign.pub}]            # or {pem: "-----BEGIN PUBLIC KEY-----..."}
//	identities:
//	  - issuer: https://token.actions.githubusercontent.com
//	    subjectRegExp: ^https://github.com/myorg/.*
//	trustedRoot: trusted_root.json          # keyless: Fulcio CA, Rekor, TSA; default: sigstore's public root through TUF
//	requireTransparencyLog: false
//
// Relative paths are relative to the policy file. A signature is trusted when it verifies with one
// of the keys, or with a certificate chaining to the trusted root whose OIDC issuer and subject
// (SAN) match one of the identities.
type Policy struct {
	// Keys are trusted public keys (PEM PKIX, as cosign.pub).
	Keys []PolicyKey `json:"keys,omitempty"`
	// Identities are trusted keyless signers.
	Identities []PolicyIdentity `json:"identities,omitempty"`
	// TrustedRoot is a sigstore trusted_root.json (Fulcio CAs, Rekor logs, CT logs, TSAs) for
	// keyless signatures; empty means sigstore's public-good root, fetched through TUF.
	TrustedRoot string `json:"trustedRoot,omitempty"`
	// RequireTransparencyLog requires a Rekor entry in every signature (checked against the
	// trusted root).
	RequireTransparencyLog bool `json:"requireTransparencyLog,omitempty"`

	// Dir resolves relative paths (the policy file's directory); "" is the working directory.
	Dir string `json:"-"`
	// TrustedMaterial, when not nil, replaces TrustedRoot (for callers and tests with their own CA).
	TrustedMaterial root.TrustedMaterial `json:"-"`
}

// PolicyKey is one trusted public key: a file or inline PEM.
type PolicyKey struct {
	Path string `json:"path,omitempty"`
	PEM  string `json:"pem,omitempty"`
}

// PolicyIdentity is one trusted keyless identity: the certificate's OIDC issuer (extension
// 1.3.6.1.4.1.57264.1.8) and subject (SAN URI or email), each exact or a Go regular expression.
type PolicyIdentity struct {
	Issuer        string `json:"issuer,omitempty"`
	IssuerRegExp  string `json:"issuerRegExp,omitempty"`
	Subject       string `json:"subject,omitempty"`
	SubjectRegExp string `json:"subjectRegExp,omitempty"`
}

// ParsePolicy parses a YAML (or JSON) trust policy strictly: unknown fields are errors.
func ParsePolicy(data []byte, source string) (*Policy, error) {
	var p Policy
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidPolicy, source, err)
	}
	if len(p.Keys) == 0 && len(p.Identities) == 0 {
		return nil, fmt.Errorf("%w: %s: names no key and no identity: add keys: [{path: cosign.pub}] or identities: [{issuer: ..., subject: ...}]", ErrInvalidPolicy, source)
	}
	return &p, nil
}

// LoadPolicy reads a policy file; relative paths in it are relative to its directory.
func LoadPolicy(path string) (*Policy, error) {
	data, err := fileutil.ReadLimited(path, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPolicy, err)
	}
	p, err := ParsePolicy(data, path)
	if err != nil {
		return nil, err
	}
	p.Dir = filepath.Dir(path)
	return p, nil
}

func (p *Policy) path(s string) string {
	if filepath.IsAbs(s) || p.Dir == "" {
		return s
	}
	return filepath.Join(p.Dir, s)
}

// trustedKey is one compiled policy key.
type trustedKey struct {
	hint     string
	verifier signature.Verifier
}

// Verifier checks bundles against a compiled Policy. It is safe for concurrent use.
type Verifier struct {
	keys        []trustedKey
	identities  verify.CertificateIdentities
	trusted     root.TrustedMaterial
	requireTlog bool
	describe    string

	// verified remembers each bundle referrer's outcome by its manifest digest (which pins the
	// bundle's bytes): a bundle listed under many subjects is fetched and verified once.
	verified sync.Map // digest.Digest → *bundleOutcome
}

// String describes the policy in one line, for messages.
func (v *Verifier) String() string { return v.describe }

// Compile loads the policy's keys and trusted root and returns its Verifier. Without TrustedRoot
// and TrustedMaterial, identities (or RequireTransparencyLog) fetch sigstore's public trusted root
// through TUF (root.FetchTrustedRoot), which needs the network.
func (p *Policy) Compile(ctx context.Context) (*Verifier, error) {
	_ = ctx
	v := &Verifier{requireTlog: p.RequireTransparencyLog}
	var desc []string
	for i, k := range p.Keys {
		var pubData []byte
		src := fmt.Sprintf("keys[%d]", i)
		switch {
		case k.Path != "" && k.PEM != "":
			return nil, fmt.Errorf("%w: %s: give path or pem, not both", ErrInvalidPolicy, src)
		case k.Path != "":
			b, err := fileutil.ReadLimited(p.path(k.Path), maxKeyBytes)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrInvalidPolicy, src, err)
			}
			pubData, src = b, p.path(k.Path)
		case k.PEM != "":
			pubData = []byte(k.PEM)
		default:
			return nil, fmt.Errorf("%w: %s: give path or pem", ErrInvalidPolicy, src)
		}
		pub, err := ParsePublicKey(pubData, src)
		if err != nil {
			return nil, err
		}
		sv, err := signature.LoadDefaultVerifier(pub)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidKey, src, err)
		}
		hint, err := KeyHint(pub)
		if err != nil {
			return nil, err
		}
		v.keys = append(v.keys, trustedKey{hint: hint, verifier: sv})
		desc = append(desc, "key "+src)
	}
	for i, id := range p.Identities {
		if (id.Issuer == "") == (id.IssuerRegExp == "") || (id.Subject == "") == (id.SubjectRegExp == "") {
			return nil, fmt.Errorf("%w: identities[%d]: give exactly one of issuer and issuerRegExp, and exactly one of subject and subjectRegExp", ErrInvalidPolicy, i)
		}
		ci, err := verify.NewShortCertificateIdentity(id.Issuer, id.IssuerRegExp, id.Subject, id.SubjectRegExp)
		if err != nil {
			return nil, fmt.Errorf("%w: identities[%d]: %v", ErrInvalidPolicy, i, err)
		}
		v.identities = append(v.identities, ci)
		desc = append(desc, fmt.Sprintf("identity issuer=%s subject=%s", id.Issuer+id.IssuerRegExp, id.Subject+id.SubjectRegExp))
	}
	if len(v.keys) == 0 && len(v.identities) == 0 {
		return nil, fmt.Errorf("%w: names no key and no identity", ErrInvalidPolicy)
	}
	switch {
	case p.TrustedMaterial != nil:
		v.trusted = p.TrustedMaterial
	case p.TrustedRoot != "":
		tr, err := loadTrustedRoot(p.path(p.TrustedRoot))
		if err != nil {
			return nil, fmt.Errorf("%w: trusted root %s: %v", ErrInvalidPolicy, p.path(p.TrustedRoot), err)
		}
		v.trusted = tr
	case len(v.identities) > 0 || p.RequireTransparencyLog:
		tr, err := root.FetchTrustedRoot()
		if err != nil {
			return nil, fmt.Errorf("%w: fetching sigstore's public trusted root through TUF: %v: give a trusted_root.json with trustedRoot (--trusted-root) for a private or offline deployment", ErrInvalidPolicy, err)
		}
		v.trusted = tr
	}
	v.describe = strings.Join(desc, ", ")
	return v, nil
}

// hasCTLogs reports whether tm names certificate transparency logs (then SCTs are required).
func hasCTLogs(tm root.TrustedMaterial) bool { return tm != nil && len(tm.CTLogs()) > 0 }

// chainsToTrustedCA reports whether leaf chains to a CA of tm at some time inside its own
// validity: used to tell an expired certificate from an untrusted one.
func chainsToTrustedCA(tm root.TrustedMaterial, leaf *x509.Certificate) bool {
	if tm == nil {
		return false
	}
	at := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	for _, ca := range tm.FulcioCertificateAuthorities() {
		if _, err := ca.Verify(leaf, at); err == nil {
			return true
		}
	}
	return false
}
