// Package testsigstore stands in, in tests, for what cannot run here: Fulcio (a local CA that
// issues code-signing certificates with sigstore's OIDC issuer extension, served through Fulcio's
// v2 signingCert API) and GitHub Actions' OIDC token endpoint. Everything else of keyless signing
// (sigstore-go's Fulcio client, certificate verification, trusted roots) is the real code.
package testsigstore

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
)

// CA is a local certificate authority that issues Fulcio-like certificates: the next one for
// Issuer (the OIDC issuer extension, OID 1.3.6.1.4.1.57264.1.8) and SAN (a URI, or an e-mail
// address), valid from NotBefore to NotAfter.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey

	Issuer, SAN         string
	NotBefore, NotAfter time.Time
}

// NewCA returns a CA valid for a day around now, whose certificates are valid from a minute ago
// for ten minutes.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "compatkit test fulcio"},
		NotBefore:             time.Now().Add(-24 * time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, key: key, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(10 * time.Minute)}
}

// GetCertificate implements sigstore-go's sign.CertificateProvider.
func (ca *CA) GetCertificate(_ context.Context, kp sign.Keypair, _ *sign.CertificateProviderOptions) ([]byte, error) {
	return ca.Issue(kp.GetPublicKey())
}

// Issue returns the DER of a certificate for pub with the CA's Issuer and SAN.
func (ca *CA) Issue(pub crypto.PublicKey) ([]byte, error) {
	issuer, err := asn1.MarshalWithParams(ca.Issuer, "utf8")
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		NotBefore:    ca.NotBefore,
		NotAfter:     ca.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{{
			Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}, Value: issuer,
		}},
	}
	if strings.Contains(ca.SAN, "@") && !strings.Contains(ca.SAN, "://") {
		tmpl.EmailAddresses = []string{ca.SAN}
	} else {
		u, err := url.Parse(ca.SAN)
		if err != nil {
			return nil, err
		}
		tmpl.URIs = []*url.URL{u}
	}
	return x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.key)
}

// TrustedRoot is a sigstore trusted root holding the CA alone (no transparency log).
func (ca *CA) TrustedRoot(t testing.TB) *root.TrustedRoot {
	t.Helper()
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{Root: ca.Cert}}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TrustedRootJSON is TrustedRoot as trusted_root.json (what --trusted-root and policies read).
func (ca *CA) TrustedRootJSON(t testing.TB) []byte {
	t.Helper()
	b, err := ca.TrustedRoot(t).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Fulcio serves Fulcio's v2 signingCert API (the request and response shapes sigstore-go's
// sign.Fulcio uses) from ca: it checks that a bearer token is present and the proof of possession
// (subject, the token's sub claim, signed with the requested key), then issues the certificate.
// calls, when not nil, counts requests.
func Fulcio(ca *CA, subject string, calls *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls != nil {
			calls.Add(1)
		}
		if r.Method != http.MethodPost || r.URL.Path != "/api/v2/signingCert" || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			http.Error(w, "want POST /api/v2/signingCert with a bearer token", http.StatusBadRequest)
			return
		}
		var req struct {
			PublicKeyRequest struct {
				PublicKey struct {
					Content string `json:"content"`
				} `json:"publicKey"`
				ProofOfPossession string `json:"proofOfPossession"`
			} `json:"publicKeyRequest"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		block, _ := pem.Decode([]byte(req.PublicKeyRequest.PublicKey.Content))
		if block == nil {
			http.Error(w, "no PEM public key", http.StatusBadRequest)
			return
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ecpub, ok := pub.(*ecdsa.PublicKey)
		sig, _ := base64.StdEncoding.DecodeString(req.PublicKeyRequest.ProofOfPossession)
		sum := sha256.Sum256([]byte(subject))
		if !ok || !ecdsa.VerifyASN1(ecpub, sum[:], sig) {
			http.Error(w, "proof of possession does not verify", http.StatusBadRequest)
			return
		}
		der, err := ca.Issue(pub)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		leaf := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		rootPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}))
		_ = json.NewEncoder(w).Encode(map[string]any{
			"signedCertificateEmbeddedSct": map[string]any{"chain": map[string]any{"certificates": []string{leaf, rootPEM}}},
		})
	})
}

// Token is an unsigned OIDC token (JWT, alg none) with the claims iss, sub and aud=sigstore: what
// a Fulcio stand-in needs (it does not verify tokens).
func Token(issuer, subject string) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"` + issuer + `","sub":"` + subject + `","aud":"sigstore"}`))
	return "eyJhbGciOiJub25lIn0." + payload + ".c2ln"
}

// GitHubTokenEndpoint stands in for the runner's OIDC token endpoint: it answers token to a
// request with "Authorization: Bearer request-token" and audience=sigstore. It sets
// ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN for the test (t.Setenv) and
// returns the URL.
func GitHubTokenEndpoint(t *testing.T, token string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer request-token" || r.URL.Query().Get("audience") != "sigstore" {
			http.Error(w, "bad token request", http.StatusForbidden)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"value": token})
	}))
	t.Cleanup(srv.Close)
	u := srv.URL + "/token?api-version=2.0"
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", u)
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-token")
	return u
}
