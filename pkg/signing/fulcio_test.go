package signing_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/internal/testsigstore"
	"github.com/compatkit/compatkit/pkg/signing"
)

// tokenSubject is the sub claim of the test's OIDC token, what the proof of possession signs.
const tokenSubject = "repo:myorg/app:ref:refs/heads/main"

// TestKeylessThroughFulcioAPI signs keyless through sigstore-go's real Fulcio client against a
// local Fulcio-compatible server, with the identity token fetched the GitHub Actions way from a
// local stand-in for the runner's token endpoint, and verifies the identity.
func TestKeylessThroughFulcioAPI(t *testing.T) {
	ctx := context.Background()
	ca := testsigstore.NewCA(t)
	ca.Issuer, ca.SAN = "https://token.actions.githubusercontent.com", "https://github.com/myorg/app/.github/workflows/release.yml@refs/heads/main"
	var fulcioCalls atomic.Int32
	fulcio := httptest.NewServer(testsigstore.Fulcio(ca, tokenSubject, &fulcioCalls))
	defer fulcio.Close()

	testsigstore.GitHubTokenEndpoint(t, testsigstore.Token(ca.Issuer, tokenSubject))

	signer, err := signing.NewKeylessSigner(ctx, signing.KeylessOptions{FulcioURL: fulcio.URL})
	if err != nil {
		t.Fatal(err)
	}
	img, tg := newLayout(t)
	attachAndSign(t, tg, img.Manifests[0], testregistry.SampleSpec(50), signer, t0)
	if fulcioCalls.Load() != 1 {
		t.Fatalf("Fulcio got %d requests, want 1", fulcioCalls.Load())
	}
	res, err := signing.VerifySpecs(ctx, tg, img.Manifests[0], identityVerifier(t, ca.TrustedRoot(t), signing.PolicyIdentity{Issuer: ca.Issuer, Subject: ca.SAN}), signing.VerifyOptions{})
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
