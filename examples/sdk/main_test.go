package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/signing"
	"github.com/compatkit/compatkit/pkg/spec"
)

// TestSDKProgram builds the example program and runs it against a registry holding the test
// image with signed specs (v1 build weight 50, v3 build weight 90) and Kubernetes nodes as kubectl
// prints them.
func TestSDKProgram(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bin := filepath.Join(dir, "sdk")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	reg := testregistry.NewOCI(t)
	img := testregistry.PushImage(t, reg.Host(), "hello", "1.0")
	image := reg.Host() + "/hello:1.0"
	tg, err := oci.Open(ctx, image, oci.Options{PlainHTTP: true, HTTPClient: testregistry.Client()})
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := signing.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := signing.ParsePrivateKey(priv, "test key", func(bool) ([]byte, error) { return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signing.KeySigner(key)
	if err != nil {
		t.Fatal(err)
	}
	cpu := func(weight int, flags ...string) *spec.Spec {
		ex := map[string]*spec.MatchExpression{}
		for _, f := range flags {
			ex[f] = &spec.MatchExpression{Op: spec.OpExists}
		}
		return &spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{{Weight: weight, Rules: []spec.Rule{{
			Name: "cpu", MatchFeatures: []spec.FeatureMatcherTerm{{Feature: "cpu.cpuid", MatchExpressions: ex}}}}}}}
	}
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, s := range []*spec.Spec{cpu(50, "SSE2"), cpu(90, "AVX2", "FMA3")} {
		ref, err := tg.PushSpec(ctx, img.Manifests[i], s, nil, created)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := signing.Sign(ctx, tg, img.Manifests[i], ref, s, signer, signing.SignOptions{Created: created}); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "cosign.pub"), pub, 0o644)
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte("keys: [{path: cosign.pub}]\n"), 0o644)

	node := func(name string, flags ...string) string {
		labels := `"kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux"`
		for _, f := range flags {
			labels += `, "feature.node.kubernetes.io/cpu-cpuid.` + f + `": "true"`
		}
		p := filepath.Join(dir, name+".json")
		os.WriteFile(p, []byte(`{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "`+name+`", "labels": {`+labels+`}}}`), 0o644)
		return p
	}
	run := func(args ...string) (string, int) {
		out, err := exec.Command(bin, append([]string{"-plain-http"}, args...)...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}

	// A Haswell node (NFD labels AVX, AVX2, FMA3, MOVBE, OSXSAVE ...) gets the v3 build.
	out, code := run(image, node("haswell", "AVX", "AVX2", "FMA3", "MOVBE", "OSXSAVE", "LAHF", "X87"), policy)
	if code != 0 || !strings.Contains(out, "@"+img.Manifests[1].Digest.String()+" (linux/amd64/v3, score 90)") {
		t.Fatalf("haswell: exit %d: %s", code, out)
	}
	// A node without AVX2 gets the v1 build.
	out, code = run(image, node("westmere", "LAHF", "X87"), policy)
	if code != 0 || !strings.Contains(out, "@"+img.Manifests[0].Digest.String()+" (linux/amd64, score 50)") {
		t.Fatalf("westmere: exit %d: %s", code, out)
	}
	t.Logf("%s", out)
	// Trusting another key: no trusted spec, so (RequireTrusted) nothing fits.
	_, otherPub, _ := signing.GenerateKeyPair(nil)
	os.WriteFile(filepath.Join(dir, "cosign.pub"), otherPub, 0o644)
	out, code = run(image, node("haswell", "AVX", "AVX2", "FMA3", "MOVBE", "OSXSAVE"), policy)
	if code != 3 || !strings.Contains(out, "NOT COMPATIBLE with node haswell") || !strings.Contains(out, "no trusted spec") {
		t.Fatalf("another key: exit %d: %s", code, out)
	}
	t.Logf("%s", out)
}
