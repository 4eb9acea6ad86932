package admission

import (
	"context"
	"encoding/base64"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote/credentials"
)

// TestDockerHubPullSecret: a Docker Hub pull secret is found by oras-go's auth client, which asks
// for registry-1.docker.io under Docker's key https://index.docker.io/v1/.
func TestDockerHubPullSecret(t *testing.T) {
	ctx := context.Background()
	store := credentials.NewMemoryStore()
	auth := base64.StdEncoding.EncodeToString([]byte("hubuser:hubpass"))
	s := &corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(
		`{"auths": {"https://index.docker.io/v1/": {"auth": "` + auth + `"}}}`)}}
	if err := addDockerConfig(ctx, store, s); err != nil {
		t.Fatal(err)
	}
	r, err := ParseImageRef("acme/private:1")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := registry.ParseReference(r.Name() + ":" + r.Tag)
	if err != nil {
		t.Fatal(err)
	}
	host := ref.Host() // the host oras-go sends requests (and asks credentials) for
	c, err := credentials.Credential(store)(ctx, host)
	if err != nil || c.Username != "hubuser" {
		t.Errorf("credentials oras-go gets for %s (image %s): %+v, %v; want the pull secret's hubuser (key %q is not looked up)",
			host, r.Given, c, err, "docker.io")
	}
	if credKey(store, r.Registry) == "-" {
		t.Log("credKey sees no credentials either")
	}
}
