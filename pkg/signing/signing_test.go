package signing_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/internal/testsigstore"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/signing"
	"github.com/compatkit/compatkit/pkg/spec"
)

func regOptions() oci.Options {
	return oci.Options{PlainHTTP: true, HTTPClient: testregistry.Client(), Credentials: credentials.NewMemoryStore()}
}

type place struct {
	name string
	reg  *testregistry.Registry
	open func(t *testing.T) *oci.Target // a new Target on the image
	img  testregistry.Image
}

func places(t *testing.T) []place {
	var out []place
	o := testregistry.NewOCI(t)
	oimg := testregistry.PushImage(t, o.Host(), "hello", "1.0")
	out = append(out, place{name: "referrers-api", reg: o, img: oimg, open: func(t *testing.T) *oci.Target {
		tg, err := oci.Open(context.Background(), o.Host()+"/hello:1.0", regOptions())
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}})
	d := testregistry.NewDistribution(t)
	dimg := testregistry.PushImage(t, d.Host(), "hello", "1.0")
	out = append(out, place{name: "tag-fallback", reg: d, img: dimg, open: func(t *testing.T) *oci.Target {
		tg, err := oci.Open(context.Background(), d.Host()+"/hello:1.0", regOptions())
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}})
	dir := filepath.Join(t.TempDir(), "layout")
	limg := testregistry.WriteLayout(t, dir, "1.0")
	out = append(out, place{name: "oci-layout", img: limg, open: func(t *testing.T) *oci.Target {
		tg, err := oci.Open(context.Background(), dir+":1.0", oci.Options{OCILayout: true})
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}})
	return out
}

func newKey(t testing.TB) (crypto.Signer, []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := signing.MarshalPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return k, pub
}

func keyVerifier(t testing.TB, pubs ...[]byte) *signing.Verifier {
	t.Helper()
	p := &signing.Policy{}
	for _, pub := range pubs {
		p.Keys = append(p.Keys, signing.PolicyKey{PEM: string(pub)})
	}
	v, err := p.Compile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// attachAndSign pushes s to subject and signs it with signer.
func attachAndSign(t *testing.T, tg *oci.Target, subject ocispec.Descriptor, s *spec.Spec, signer *signing.Signer, created time.Time) (ocispec.Descriptor, *signing.Signature) {
	t.Helper()
	ctx := context.Background()
	ref, err := tg.PushSpec(ctx, subject, s, nil, created)
	if err != nil {
		t.Fatal(err)
	}
	if signer == nil {
		return ref, nil
	}
	sig, err := signing.Sign(ctx, tg, subject, ref, s, signer, signing.SignOptions{Created: created})
	if err != nil {
		t.Fatal(err)
	}
	return ref, sig
}

func TestSignVerifyWithKey(t *testing.T) {
	ctx := context.Background()
	key, pub := newKey(t)
	_, otherPub := newKey(t)
	signer, err := signing.KeySigner(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, pl := range places(t) {
		t.Run(pl.name, func(t *testing.T) {
			tg := pl.open(t)
			subject := pl.img.Manifests[1]
			ref, sig := attachAndSign(t, tg, subject, testregistry.SampleSpec(90), signer, t0)

			// cosign's layout of the bundle referrer.
			m, err := tg.FetchManifest(ctx, sig.Bundle)
			if err != nil {
				t.Fatal(err)
			}
			if m.ArtifactType != signing.BundleMediaType || len(m.Layers) != 1 || m.Layers[0].MediaType != signing.BundleMediaType ||
				m.Config.MediaType != ocispec.MediaTypeEmptyJSON || m.Subject == nil || m.Subject.Digest != subject.Digest ||
				m.Annotations[signing.AnnotationBundleContent] != "dsse-envelope" ||
				m.Annotations[signing.AnnotationBundlePredicateType] != signing.PredicateType ||
				m.Annotations[ocispec.AnnotationCreated] == "" {
				t.Fatalf("bundle manifest %+v", m)
			}
			if sig.Statement.Subject[0].Digest["sha256"] != subject.Digest.Encoded() || sig.Statement.Predicate.Referrer.Digest != ref.Digest {
				t.Fatalf("statement %+v", sig.Statement)
			}

			// A fresh reader: the right key verifies, another does not; no image blob is read.
			if pl.reg != nil {
				pl.reg.Reset()
			}
			res, err := signing.VerifySpecs(ctx, pl.open(t), subject, keyVerifier(t, pub), signing.VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Specs) != 1 || !res.Specs[0].Verified || res.Newest() == nil || res.Newest().Spec.Compatibilities[0].Weight != 90 {
				t.Fatalf("want one VERIFIED spec: %+v", res.Specs)
			}
			res, err = signing.VerifySpecs(ctx, pl.open(t), subject, keyVerifier(t, otherPub), signing.VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Newest() != nil || !errors.Is(res.Specs[0].Err, signing.ErrUntrusted) || !strings.Contains(res.Specs[0].Reason(), "wrong key") {
				t.Fatalf("wrong key: %+v", res.Specs)
			}
			if pl.reg != nil {
				for _, r := range pl.reg.Requests() {
					for _, d := range pl.img.Blobs() {
						if strings.Contains(r.Path, "/blobs/"+d.String()) {
							t.Errorf("image blob requested: %s", r)
						}
					}
				}
			}
		})
	}
}

func TestKeyFormats(t *testing.T) {
	privPEM, pubPEM, err := signing.GenerateKeyPair([]byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(privPEM, []byte("BEGIN "+signing.PEMTypeCosignEncrypted)) {
		t.Fatalf("private key:\n%s", privPEM)
	}
	pass := func(pw string) signing.PassFunc { return func(bool) ([]byte, error) { return []byte(pw), nil } }
	k, err := signing.ParsePrivateKey(privPEM, "cosign.key", pass("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := signing.ParsePublicKey(pubPEM, "cosign.pub")
	if err != nil {
		t.Fatal(err)
	}
	if !k.Public().(*ecdsa.PublicKey).Equal(pub) {
		t.Fatal("public key does not match the private key")
	}
	if _, err := signing.ParsePrivateKey(privPEM, "cosign.key", pass("wrong")); !errors.Is(err, signing.ErrInvalidKey) || !strings.Contains(err.Error(), "password") {
		t.Fatalf("wrong password: %v", err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	p8, _ := x509.MarshalPKCS8PrivateKey(ed)
	for name, p := range map[string][]byte{
		"sec1":    pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
		"ed25519": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
	} {
		k, err := signing.ParsePrivateKey(p, name, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s, err := signing.KeySigner(k)
		if err != nil {
			t.Fatal(err)
		}
		// Sign and verify a bundle with the key.
		pubPEM, _ := signing.MarshalPublicKey(k.Public())
		st, _ := signing.NewStatement("r/x", ocispec.Descriptor{Digest: digest.Digest("sha256:" + strings.Repeat("a", 64))}, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.Digest("sha256:" + strings.Repeat("b", 64))}, testregistry.SampleSpec(1))
		payload, _ := st.Marshal()
		bj, err := s.SignStatement(context.Background(), payload)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, who, err := keyVerifier(t, pubPEM).VerifyBundle(bj); err != nil || !strings.HasPrefix(who, "key ") {
			t.Fatalf("%s: verify: %v", name, err)
		}
	}
	if _, err := signing.ParsePrivateKey([]byte("garbage"), "k", nil); !errors.Is(err, signing.ErrInvalidKey) {
		t.Fatal(err)
	}
}

func TestPolicyFile(t *testing.T) {
	dir := t.TempDir()
	_, pub := newKey(t)
	os.WriteFile(filepath.Join(dir, "cosign.pub"), pub, 0o644)
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte("# compatkit trust policy\nkeys: [{path: cosign.pub}]\nrequireTransparencyLog: false\n"), 0o644)
	p, err := signing.LoadPolicy(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Compile(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"keys: [{path: cosign.pub}]\nkeyz: []\n", "requireTransparencyLog: true\n", "identities: [{issuer: x}]\n"} {
		p, err := signing.ParsePolicy([]byte(bad), "bad.yaml")
		if err == nil {
			_, err = p.Compile(context.Background())
		}
		if !errors.Is(err, signing.ErrInvalidPolicy) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func identityVerifier(t *testing.T, tm root.TrustedMaterial, ids ...signing.PolicyIdentity) *signing.Verifier {
	t.Helper()
	v, err := (&signing.Policy{Identities: ids, TrustedMaterial: tm}).Compile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestKeylessOffline(t *testing.T) {
	ctx := context.Background()
	ca := testsigstore.NewCA(t)
	ca.Issuer, ca.SAN = "https://token.actions.githubusercontent.com", "https://github.com/myorg/app/.github/workflows/release.yml@refs/heads/main"
	signer, err := signing.NewKeylessSigner(ctx, signing.KeylessOptions{CertificateProvider: ca, IDToken: "unused.by.local-ca"})
	if err != nil {
		t.Fatal(err)
	}
	img, tg := newLayout(t)
	subject := img.Manifests[0]
	attachAndSign(t, tg, subject, testregistry.SampleSpec(50), signer, t0)

	tm := ca.TrustedRoot(t)
	check := func(name string, v *signing.Verifier, wantErr error, wantText string) {
		t.Helper()
		res, err := signing.VerifySpecs(ctx, tg, subject, v, signing.VerifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		st := res.Specs[0]
		if wantErr == nil {
			if !st.Verified || !strings.Contains(st.Signer, "myorg/app") {
				t.Fatalf("%s: want VERIFIED: %s", name, st.Reason())
			}
			return
		}
		if st.Verified || !errors.Is(st.Err, wantErr) || !strings.Contains(st.Reason(), wantText) {
			t.Fatalf("%s: want %v (%q), got %s", name, wantErr, wantText, st.Reason())
		}
	}
	check("exact identity", identityVerifier(t, tm, signing.PolicyIdentity{Issuer: ca.Issuer, Subject: ca.SAN}), nil, "")
	check("regexp identity", identityVerifier(t, tm, signing.PolicyIdentity{Issuer: ca.Issuer, SubjectRegExp: `^https://github\.com/myorg/.*`}), nil, "")
	check("wrong SAN", identityVerifier(t, tm, signing.PolicyIdentity{Issuer: ca.Issuer, SubjectRegExp: `^https://github\.com/otherorg/.*`}), signing.ErrUntrusted, "wrong identity")
	check("wrong issuer", identityVerifier(t, tm, signing.PolicyIdentity{Issuer: "https://accounts.google.com", Subject: ca.SAN}), signing.ErrUntrusted, "wrong identity")
	other := testsigstore.NewCA(t)
	check("untrusted CA", identityVerifier(t, other.TrustedRoot(t), signing.PolicyIdentity{Issuer: ca.Issuer, Subject: ca.SAN}), signing.ErrUntrusted, "not issued by a trusted CA")
	_, pub := newKey(t)
	check("keys only", keyVerifier(t, pub), signing.ErrUntrusted, "trusts no identity")

	// A certificate that expired before the signature (no timestamp: checked at the current time).
	ca.NotBefore, ca.NotAfter = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	img2, tg2 := newLayout(t)
	ref, err := tg2.PushSpec(ctx, img2.Manifests[0], testregistry.SampleSpec(50), nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signing.Sign(ctx, tg2, img2.Manifests[0], ref, nil, signer, signing.SignOptions{Created: t0}); err != nil {
		t.Fatal(err)
	}
	res, err := signing.VerifySpecs(ctx, tg2, img2.Manifests[0], identityVerifier(t, tm, signing.PolicyIdentity{Issuer: ca.Issuer, Subject: ca.SAN}), signing.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st := res.Specs[0]; st.Verified || !errors.Is(st.Err, signing.ErrCertificateExpired) {
		t.Fatalf("expired certificate: %s", st.Reason())
	}
}

// statusOf returns the status of referrer d in res.
func statusOf(res *signing.Result, d digest.Digest) *signing.SpecStatus {
	for i := range res.Specs {
		if res.Specs[i].Referrer.Digest == d {
			return &res.Specs[i]
		}
	}
	return &signing.SpecStatus{}
}

// TestTampering: under a policy, a tampered, swapped, replayed or unsigned spec is never the one
// used, and the reason says why.
func TestTampering(t *testing.T) {
	ctx := context.Background()
	key, pub := newKey(t)
	signer, _ := signing.KeySigner(key)
	v := keyVerifier(t, pub)
	for _, pl := range places(t) {
		t.Run(pl.name, func(t *testing.T) {
			tg := pl.open(t)
			a, b := pl.img.Manifests[1], pl.img.Manifests[2]

			// Unsigned newer spec next to a signed older one: the older one is used.
			older, _ := attachAndSign(t, tg, a, testregistry.SampleSpec(90), signer, t0)
			newer, _ := attachAndSign(t, tg, a, testregistry.SampleSpec(10), nil, t0.Add(time.Hour))
			res, err := signing.VerifySpecs(ctx, pl.open(t), a, v, signing.VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// Verified specs come first; the unsigned one is listed with why.
			if len(res.Specs) != 2 || res.Specs[1].Referrer.Digest != newer.Digest || !errors.Is(res.Specs[1].Err, signing.ErrUnsigned) || res.Specs[1].Spec != nil {
				t.Fatalf("unsigned newer: %+v", res.Specs)
			}
			if n := res.Newest(); n == nil || n.Referrer.Digest != older.Digest || n.Spec.Compatibilities[0].Weight != 90 {
				t.Fatalf("newest verified: %+v", n)
			}

			// Swap: a bundle of A's signed spec relabelled (copied) for the newer, unsigned spec.
			_, aSig := signedBundle(t, tg, a, older, signer)
			if _, err := signing.PushBundle(ctx, tg, a, aSig, newer.Digest, t0.Add(2*time.Hour)); err != nil {
				t.Fatal(err)
			}
			res, _ = signing.VerifySpecs(ctx, pl.open(t), a, v, signing.VerifyOptions{})
			if st := statusOf(res, newer.Digest); !errors.Is(st.Err, signing.ErrSwapped) || res.Newest().Referrer.Digest != older.Digest {
				t.Fatalf("swap: %s", st.Reason())
			}

			// Replay: B's signed spec and bundle copied to A (a bundle whose statement signs B).
			bRef, _ := attachAndSign(t, tg, b, testregistry.SampleSpec(70), signer, t0)
			_, bSig := signedBundle(t, tg, b, bRef, signer)
			aCopy, err := tg.PushSpec(ctx, a, testregistry.SampleSpec(70), nil, t0.Add(3*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := signing.PushBundle(ctx, tg, a, bSig, aCopy.Digest, t0.Add(3*time.Hour)); err != nil {
				t.Fatal(err)
			}
			res, _ = signing.VerifySpecs(ctx, pl.open(t), a, v, signing.VerifyOptions{})
			if st := statusOf(res, aCopy.Digest); !errors.Is(st.Err, signing.ErrReplayed) || res.Newest().Referrer.Digest != older.Digest {
				t.Fatalf("replay: %s", st.Reason())
			}

			// A trusted signature over another spec content naming the referrer: tampered.
			evil := testregistry.SampleSpec(5)
			forged, err := tg.PushSpec(ctx, a, testregistry.SampleSpec(100), nil, t0.Add(4*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			st, _ := signing.NewStatement(tg.Name(), a, forged, evil)
			payload, _ := st.Marshal()
			bj, _ := signer.SignStatement(ctx, payload)
			signing.PushBundle(ctx, tg, a, bj, forged.Digest, t0.Add(4*time.Hour))
			res, _ = signing.VerifySpecs(ctx, pl.open(t), a, v, signing.VerifyOptions{})
			if st := statusOf(res, forged.Digest); !errors.Is(st.Err, signing.ErrTampered) || res.Newest().Referrer.Digest != older.Digest {
				t.Fatalf("tampered content: %s", st.Reason())
			}

			// One byte of the signed spec's blob changed in transit or at rest.
			m, err := pl.open(t).FetchManifest(ctx, older)
			if err != nil {
				t.Fatal(err)
			}
			blob := m.Layers[0]
			orig, err := content.FetchAll(ctx, pl.open(t).Store(), blob)
			if err != nil {
				t.Fatal(err)
			}
			altered := bytes.Replace(orig, []byte("90"), []byte("99"), 1)
			if pl.reg != nil {
				pl.reg.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
					if strings.HasSuffix(r.URL.Path, "/blobs/"+blob.Digest.String()) && r.Method == http.MethodGet {
						w.Header().Set("Content-Type", "application/octet-stream")
						w.Header().Set("Docker-Content-Digest", blob.Digest.String())
						w.Write(altered)
						return true
					}
					return false
				})
				defer pl.reg.SetHook(nil)
			} else {
				p := filepath.Join(strings.TrimSuffix(tg.Name(), ":1.0"), "blobs", "sha256", blob.Digest.Encoded())
				if err := os.WriteFile(p, altered, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			res, err = signing.VerifySpecs(ctx, pl.open(t), a, v, signing.VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range res.Specs {
				if s.Verified {
					t.Fatalf("a spec verified after tampering: %+v", s)
				}
				if s.Referrer.Digest == older.Digest && !errors.Is(s.Err, signing.ErrTampered) {
					t.Fatalf("altered blob: %s", s.Reason())
				}
			}
			if res.Newest() != nil {
				t.Fatal("newest verified after tampering")
			}
		})
	}
}

// signedBundle signs ref of subject again and returns the bundle JSON (what an attacker copies).
func signedBundle(t *testing.T, tg *oci.Target, subject, ref ocispec.Descriptor, s *signing.Signer) (*signing.Statement, []byte) {
	t.Helper()
	got, _, err := tg.FetchSpec(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := signing.NewStatement(tg.Name(), subject, ref, got)
	payload, _ := st.Marshal()
	bj, err := s.SignStatement(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	return st, bj
}

// newLayout writes the test image into a fresh OCI layout and opens it.
func newLayout(t *testing.T) (testregistry.Image, *oci.Target) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	img := testregistry.WriteLayout(t, dir, "1.0")
	tg, err := oci.Open(context.Background(), dir+":1.0", oci.Options{OCILayout: true})
	if err != nil {
		t.Fatal(err)
	}
	return img, tg
}

// Signing a spec again with the same key pushes nothing and returns the existing bundle.
func TestSignTwice(t *testing.T) {
	ctx := context.Background()
	img, tg := newLayout(t)
	priv, _ := newKey(t)
	signer, err := signing.KeySigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	ref, first := attachAndSign(t, tg, img.Manifests[0], testregistry.SampleSpec(50), signer, t0)
	again, err := signing.Sign(ctx, tg, img.Manifests[0], ref, nil, signer, signing.SignOptions{Created: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Existing || again.Bundle.Digest != first.Bundle.Digest {
		t.Fatalf("second signature: %+v, want the existing bundle %s", again, first.Bundle.Digest)
	}
	bundles, err := tg.Referrers(ctx, img.Manifests[0], signing.BundleMediaType)
	if err != nil || len(bundles) != 1 {
		t.Fatalf("%d bundles (%v), want 1", len(bundles), err)
	}
}

// FuzzVerifyBundle: bundles are what a pusher controls; verification never panics, and only a
// bundle signed by the trusted key verifies.
func FuzzVerifyBundle(f *testing.F) {
	priv, pub := newKey(f)
	signer, err := signing.KeySigner(priv)
	if err != nil {
		f.Fatal(err)
	}
	st, err := signing.NewStatement("r/app", ocispec.Descriptor{Digest: digest.FromString("image")},
		ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("referrer"), Size: 10}, testregistry.SampleSpec(10))
	if err != nil {
		f.Fatal(err)
	}
	payload, _ := st.Marshal()
	good, err := signer.SignStatement(context.Background(), payload)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}`))
	f.Add([]byte(`{}`))
	v := keyVerifier(f, pub)
	f.Fuzz(func(t *testing.T, data []byte) {
		st, _, err := v.VerifyBundle(data)
		if err == nil && st == nil {
			t.Fatal("verified without a statement")
		}
	})
}
