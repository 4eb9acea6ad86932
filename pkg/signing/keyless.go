package signing

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/compatkit/compatkit/internal/fileutil"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
)

// KeylessOptions configures keyless signing: an ephemeral key, a certificate from Fulcio for an
// OIDC identity token, a Rekor entry and an RFC 3161 timestamp. Services come from the sigstore
// signing config (SigningConfig file, or sigstore's public one through TUF), each overridable by
// URL for private deployments. An empty URL with no signing config means: not used, except Fulcio.
type KeylessOptions struct {
	// IDToken is the OIDC token; empty means GitHub Actions' (ACTIONS_ID_TOKEN_REQUEST_URL and
	// ACTIONS_ID_TOKEN_REQUEST_TOKEN, audience "sigstore").
	IDToken string
	// FulcioURL, RekorURL and TSAURL override the signing config's services.
	FulcioURL, RekorURL, TSAURL string
	// SigningConfig is a sigstore signing_config.json; empty fetches the public one through TUF
	// unless FulcioURL is set.
	SigningConfig string
	// TrustedRoot, when set, is the trusted_root.json each new bundle is verified against.
	TrustedRoot string
	// CertificateProvider replaces Fulcio (a private CA, or a local one in tests).
	CertificateProvider sign.CertificateProvider
	// HTTPClient fetches the GitHub Actions token; nil is a client with a 30 s timeout.
	HTTPClient *http.Client
}

// NewKeylessSigner prepares a keyless Signer (see KeylessOptions).
func NewKeylessSigner(ctx context.Context, o KeylessOptions) (*Signer, error) {
	kp, err := sign.NewEphemeralKeypair(nil)
	if err != nil {
		return nil, err
	}
	s := &Signer{Keypair: kp, CertificateProvider: o.CertificateProvider}
	var sc *root.SigningConfig
	switch {
	case o.SigningConfig != "":
		if sc, err = loadSigningConfig(o.SigningConfig); err != nil {
			return nil, fmt.Errorf("signing config %s: %w", o.SigningConfig, err)
		}
	case o.FulcioURL == "" && o.CertificateProvider == nil:
		if sc, err = root.FetchSigningConfig(); err != nil {
			return nil, fmt.Errorf("fetching sigstore's signing config through TUF: %w: give --signing-config FILE or --fulcio-url/--rekor-url/--tsa-url for a private deployment", err)
		}
	}
	now := time.Now()
	fulcio, rekor, tsa := o.FulcioURL, o.RekorURL, o.TSAURL
	if sc != nil {
		if fulcio == "" {
			if svc, err := root.SelectService(sc.FulcioCertificateAuthorityURLs(), []uint32{1}, now); err == nil {
				fulcio = svc.URL
			}
		}
		if rekor == "" {
			if svc, err := root.SelectService(sc.RekorLogURLs(), []uint32{1}, now); err == nil {
				rekor = svc.URL
			}
		}
		if tsa == "" {
			if svc, err := root.SelectService(sc.TimestampAuthorityURLs(), []uint32{1}, now); err == nil {
				tsa = svc.URL
			}
		}
	}
	if s.CertificateProvider == nil {
		if fulcio == "" {
			return nil, fmt.Errorf("keyless signing: no Fulcio URL: give --fulcio-url or --signing-config")
		}
		s.CertificateProvider = sign.NewFulcio(&sign.FulcioOptions{BaseURL: fulcio, Timeout: 30 * time.Second, Retries: 1})
	}
	if rekor != "" {
		s.TransparencyLogs = append(s.TransparencyLogs, sign.NewRekor(&sign.RekorOptions{BaseURL: rekor, Timeout: 90 * time.Second, Retries: 1, Version: 1}))
	}
	if tsa != "" {
		s.TimestampAuthorities = append(s.TimestampAuthorities, sign.NewTimestampAuthority(&sign.TimestampAuthorityOptions{URL: tsa, Timeout: 30 * time.Second, Retries: 1}))
	}
	if o.TrustedRoot != "" {
		tr, err := loadTrustedRoot(o.TrustedRoot)
		if err != nil {
			return nil, fmt.Errorf("trusted root %s: %w", o.TrustedRoot, err)
		}
		s.TrustedMaterial = tr
	}
	s.IDToken = o.IDToken
	if s.IDToken == "" {
		if s.IDToken, err = GitHubActionsToken(ctx, o.HTTPClient); err != nil {
			return nil, err
		}
	}
	s.Identity = "keyless (Fulcio " + fulcio + ")"
	return s, nil
}

// GitHubActionsToken requests an OIDC token with audience "sigstore" from GitHub Actions
// (ACTIONS_ID_TOKEN_REQUEST_URL, ACTIONS_ID_TOKEN_REQUEST_TOKEN; the job needs
// `permissions: id-token: write`).
func GitHubActionsToken(ctx context.Context, hc *http.Client) (string, error) {
	u, tok := os.Getenv("ACTIONS_ID_TOKEN_REQUEST_URL"), os.Getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
	if u == "" || tok == "" {
		return "", fmt.Errorf("%w: pass --identity-token, or run in GitHub Actions with `permissions: id-token: write` (ACTIONS_ID_TOKEN_REQUEST_URL is not set)", ErrNoIdentityToken)
	}
	pu, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("%w: ACTIONS_ID_TOKEN_REQUEST_URL: %v", ErrNoIdentityToken, err)
	}
	q := pu.Query()
	q.Set("audience", "sigstore")
	pu.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pu.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: requesting the GitHub Actions token: %v", ErrNoIdentityToken, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: GitHub Actions answered %s to the token request", ErrNoIdentityToken, resp.Status)
	}
	var out struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Value == "" {
		return "", fmt.Errorf("%w: GitHub Actions' token response does not decode", ErrNoIdentityToken)
	}
	return out.Value, nil
}

// CertificateIdentity returns the OIDC issuer and SAN of a Fulcio-style certificate.
func CertificateIdentity(cert *x509.Certificate) (issuer, subject string, err error) {
	sum, err := certificate.SummarizeCertificate(cert)
	if err != nil {
		return "", "", err
	}
	return sum.Extensions.Issuer, sum.SubjectAlternativeName, nil
}

// maxRootBytes bounds trusted_root.json and signing_config.json files (sigstore's public ones are
// tens of kilobytes).
const maxRootBytes = 4 << 20

// loadTrustedRoot reads a sigstore trusted_root.json with a size limit.
func loadTrustedRoot(path string) (*root.TrustedRoot, error) {
	data, err := fileutil.ReadLimited(path, maxRootBytes)
	if err != nil {
		return nil, err
	}
	return root.NewTrustedRootFromJSON(data)
}

// loadSigningConfig reads a sigstore signing_config.json with a size limit.
func loadSigningConfig(path string) (*root.SigningConfig, error) {
	data, err := fileutil.ReadLimited(path, maxRootBytes)
	if err != nil {
		return nil, err
	}
	return root.NewSigningConfigFromJSON(data)
}
