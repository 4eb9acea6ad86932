package admission

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
)

// pullSecrets reads the registry credentials a pod may pull with, as the kubelet does: the pod's
// imagePullSecrets and its service account's, each a Secret of type kubernetes.io/dockerconfigjson
// (or the older kubernetes.io/dockercfg) in the pod's namespace. Secrets and service accounts
// are fetched with GET (RBAC: get on secrets and serviceaccounts; no list or watch) and kept for
// ttl (those that do not exist too; an error is not kept).
type pullSecrets struct {
	client *kubeClient
	ttl    time.Duration

	mu    sync.Mutex
	cache map[string]cachedObj // "kind ns/name" → object
}

type cachedObj struct {
	obj     any
	err     error
	expires time.Time
}

func (p *pullSecrets) fetch(ctx context.Context, kind, ns, name string, get func() (any, error)) (any, error) {
	key := kind + " " + ns + "/" + name
	p.mu.Lock()
	c, ok := p.cache[key]
	p.mu.Unlock()
	if ok && time.Now().Before(c.expires) {
		return c.obj, c.err
	}
	obj, err := get()
	if err != nil && !apierrors.IsNotFound(err) {
		return obj, err // a transient error is not remembered: the next pod asks again
	}
	p.mu.Lock()
	if p.cache == nil {
		p.cache = map[string]cachedObj{}
	}
	if len(p.cache) >= maxCachedObjects {
		now := time.Now()
		for k, c := range p.cache {
			if now.After(c.expires) {
				delete(p.cache, k)
			}
		}
		if len(p.cache) >= maxCachedObjects {
			clear(p.cache)
		}
	}
	p.cache[key] = cachedObj{obj: obj, err: err, expires: time.Now().Add(p.ttl)}
	p.mu.Unlock()
	return obj, err
}

const (
	// maxCachedObjects bounds the secrets and service accounts kept.
	maxCachedObjects = 10_000
	// MaxPullSecrets bounds the image pull secrets read for one pod (its own and its service
	// account's together); a pod naming more is decided by the failure policy.
	MaxPullSecrets = 32
)

// store returns the credentials of pod's pull secrets (nil when it has none or there is no
// client). A secret that does not exist is skipped, as the kubelet skips it; other errors are
// returned, naming the secret.
func (p *pullSecrets) store(ctx context.Context, ns string, spec *corev1.PodSpec) (credentials.Store, error) {
	if p == nil || p.client == nil {
		return nil, nil
	}
	names := []string{}
	for _, s := range spec.ImagePullSecrets {
		names = append(names, s.Name)
	}
	sa := spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	obj, err := p.fetch(ctx, "serviceaccount", ns, sa, func() (any, error) {
		return p.client.serviceAccount(ctx, ns, sa)
	})
	switch {
	case err == nil:
		for _, s := range obj.(*corev1.ServiceAccount).ImagePullSecrets {
			names = append(names, s.Name)
		}
	case apierrors.IsNotFound(err):
	default:
		return nil, fmt.Errorf("service account %s/%s: %w", ns, sa, err)
	}
	if len(names) == 0 {
		return nil, nil
	}
	if len(names) > MaxPullSecrets {
		return nil, fmt.Errorf("the pod and its service account %s/%s name %d image pull secrets, more than the %d the webhook reads", ns, sa, len(names), MaxPullSecrets)
	}
	store := credentials.NewMemoryStore()
	for _, name := range names {
		obj, err := p.fetch(ctx, "secret", ns, name, func() (any, error) {
			return p.client.secret(ctx, ns, name)
		})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("image pull secret %s/%s: %w", ns, name, err)
		}
		if err := addDockerConfig(ctx, store, obj.(*corev1.Secret)); err != nil {
			return nil, fmt.Errorf("image pull secret %s/%s: %w", ns, name, err)
		}
	}
	return store, nil
}

// dockerConfig is the part of a Docker config file that pull secrets hold.
type dockerConfig struct {
	Auths map[string]dockerAuth `json:"auths"`
}

type dockerAuth struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// addDockerConfig adds the credentials of a kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg
// secret to store; the first secret naming a registry wins, as with the kubelet's ordered list.
func addDockerConfig(ctx context.Context, store credentials.Store, s *corev1.Secret) error {
	var cfg dockerConfig
	switch s.Type {
	case corev1.SecretTypeDockerConfigJson:
		if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
			return fmt.Errorf("%s: not a Docker config: %v", corev1.DockerConfigJsonKey, err)
		}
	case corev1.SecretTypeDockercfg:
		if err := json.Unmarshal(s.Data[corev1.DockerConfigKey], &cfg.Auths); err != nil {
			return fmt.Errorf("%s: not a Docker config: %v", corev1.DockerConfigKey, err)
		}
	default:
		return nil // not a pull secret: the kubelet ignores it too
	}
	for server, a := range cfg.Auths {
		host := registryHost(server)
		if c, err := store.Get(ctx, host); err == nil && c != auth.EmptyCredential {
			continue
		}
		c := auth.Credential{Username: a.Username, Password: a.Password, RefreshToken: a.IdentityToken, AccessToken: a.RegistryToken}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return fmt.Errorf("auths[%q].auth: not base64", server)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return fmt.Errorf("auths[%q].auth: not user:password", server)
			}
			c.Username, c.Password = user, pass
		}
		if err := store.Put(ctx, host, c); err != nil {
			return err
		}
		// oras-go asks for Docker Hub's credentials under Docker's own key
		// (credentials.ServerAddressFromHostname: https://index.docker.io/v1/).
		if sa := credentials.ServerAddressFromRegistry(host); sa != host {
			if err := store.Put(ctx, sa, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// registryHost reduces a Docker config key ("https://index.docker.io/v1/", "ghcr.io",
// "registry:5000/path") to the host oras-go asks credentials for; Docker Hub's keys become
// docker.io's.
func registryHost(server string) string {
	h := strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	switch h {
	case "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return h
}
