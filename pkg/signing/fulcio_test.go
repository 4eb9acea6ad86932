package signing_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/pkg/signing"
)

// fakeFulcio serves Fulcio's v2 signingCert API (the request and response shapes sigstore-go's
// sign.Fulcio uses) from the local CA: it checks the bearer token is present and the proof of
// possession (the token subject signed with the requested key), then issues the certificate.
func fakeFulcio(t *testing.T, ca *localCA, calls *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
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
		sum := sha256.Sum256([]byte(tokenSubject))
		if !ok || !ecdsa.VerifyASN1(ecpub, sum[:], sig) {
			http.Error(w, "proof of possession does not verify", http.StatusBadRequest)
			return
		}
		der, err := ca.issue(pub)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		leaf := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		root := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))
		_ = json.NewEncoder(w).Encode(map[string]any{
			"signedCertificateEmbeddedSct": map[string]any{"chain": map[string]any{"certificates": []string{leaf, root}}},
		})
	})
}

// tokenSubject is the sub claim of the test's OIDC token, what the proof of possession signs.
const tokenSubject = "repo:myorg/app:ref:refs/heads/main"

// TestKeylessThroughFulcioAPI signs keyless through sigstore-go's real Fulcio client against a
// local Fulcio-compatible server, with the identity token fetched the GitHub Actions way from a
// local stand-in for the runner's token endpoint, and verifies the identity.
func TestKeylessThroughFulcioAPI(t *testing.T) {
	ctx := context.Background()
	ca := newLocalCA(t)
	ca.issuer, ca.san = "https://token.actions.githubusercontent.com", "https://github.com/myorg/app/.github/workflows/release.yml@refs/heads/main"
	var fulcioCalls atomic.Int32
	fulcio := httptest.NewServer(fakeFulcio(t, ca, &fulcioCalls))
	defer fulcio.Close()

	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"` + ca.issuer + `","sub":"` + tokenSubject + `","aud":"sigstore"}`))
	token := "eyJhbGciOiJub25lIn0." + payload + ".c2ln"
	github := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer request-token" || r.URL.Query().Get("audience") != "sigstore" {
			http.Error(w, "bad token request", http.StatusForbidden)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"value": token})
	}))
	defer github.Close()
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", github.URL+"/token?api-version=2.0")
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-token")

	signer, err := signing.NewKeylessSigner(ctx, signing.KeylessOptions{FulcioURL: fulcio.URL})
	if err != nil {
		t.Fatal(err)
	}
	img, tg := newLayout(t)
	attachAndSign(t, tg, img.Manifests[0], testregistry.SampleSpec(50), signer, t0)
	if fulcioCalls.Load() != 1 {
		t.Fatalf("Fulcio got %d requests, want 1", fulcioCalls.Load())
	}
	res, err := signing.VerifySpecs(ctx, tg, img.Manifests[0], identityVerifier(t, ca.trustedRoot(t), signing.PolicyIdentity{Issuer: ca.issuer, Subject: ca.san}), signing.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st := res.Specs[0]; !st.Verified || !strings.Contains(st.Signer, "myorg/app") {
		t.Fatalf("want VERIFIED by the workflow identity: %s", st.Reason())
	}

	// Without a token source, keyless signing says what to do.
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "")
	if _, err := signing.NewKeylessSigner(ctx, signing.KeylessOptions{FulcioURL: fulcio.URL}); err == nil || !strings.Contains(err.Error(), "--identity-token") {
		t.Fatalf("no token: %v", err)
	}
}
