package admission

import (
	"context"
	"encoding/base64"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"oras.land/oras-go/v2/registry/remote/credentials"
)

// TestDockerConfigSecrets: both pull-secret types, Docker Hub's keys, token fields, the first
// secret naming a registry wins, and a malformed secret is an error naming the field.
func TestDockerConfigSecrets(t *testing.T) {
	ctx := context.Background()
	store := credentials.NewMemoryStore()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	secrets := []*corev1.Secret{
		{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(
			`{"auths": {"https://index.docker.io/v1/": {"auth": "` + b64("hub:pw") + `"}, "ghcr.io": {"username": "u", "password": "p"}, "reg.example:5000/path": {"identitytoken": "refresh"}}}`)}},
		{Type: corev1.SecretTypeDockercfg, Data: map[string][]byte{corev1.DockerConfigKey: []byte(
			`{"ghcr.io": {"auth": "` + b64("second:ignored") + `"}, "quay.io": {"auth": "` + b64("q:w") + `"}}`)}},
		{Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"x": []byte("not a pull secret")}},
	}
	for _, s := range secrets {
		if err := addDockerConfig(ctx, store, s); err != nil {
			t.Fatal(err)
		}
	}
	for host, want := range map[string]string{"docker.io": "hub:pw", "ghcr.io": "u:p", "quay.io": "q:w", "reg.example:5000": ":"} {
		c, err := store.Get(ctx, host)
		if err != nil || c.Username+":"+c.Password != want {
			t.Errorf("%s: %+v %v, want %s", host, c, err, want)
		}
	}
	if c, _ := store.Get(ctx, "reg.example:5000"); c.RefreshToken != "refresh" {
		t.Errorf("identity token: %+v", c)
	}
	bad := &corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths": {"x.io": {"auth": "!!"}}}`)}}
	if err := addDockerConfig(ctx, credentials.NewMemoryStore(), bad); err == nil || err.Error() != `auths["x.io"].auth: not base64` {
		t.Errorf("malformed auth: %v", err)
	}
}
