package admission_test

// Review findings (security/operability review of the admission webhook). Each test asserts the
// behaviour the webhook should have and fails on the current code; the failure message says what
// happened instead.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/pkg/admission"
	"github.com/compatkit/compatkit/pkg/oci"
)

// affinityDigestOf is admission.affinityDigest, as a tenant can compute it.
func affinityDigestOf(na *corev1.NodeAffinity) string {
	b, _ := json.Marshal(na)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:12])
}

// TestForgedAnnotationKeepsInjectedAffinity: a tenant who writes the compatkit.dev/admission
// annotation itself ("applied" the digest of the affinity the pod has when it reaches compatkit,
// which includes a term an earlier admission step injected, and "original": null) does not get
// that term dropped: the recorded original is used only when compatkit's terms added to it give
// the pod's affinity exactly.
func TestForgedAnnotationKeepsInjectedAffinity(t *testing.T) {
	f := newFixture(t)
	w := f.webhook(t, admission.Options{})
	pool := corev1.NodeSelectorRequirement{Key: "example.com/tenant-pool", Operator: corev1.NodeSelectorOpIn, Values: []string{"blue"}}
	p := pod("p", f.ref)
	// What the pod looks like when it reaches compatkit: a policy injected the tenant pool.
	p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{pool}}}}}}
	forged, _ := json.Marshal(admission.Record{Applied: affinityDigestOf(p.Spec.Affinity.NodeAffinity)})
	p.Annotations = map[string]string{admission.AnnotationKey: string(forged)}
	var got corev1.Pod
	review(t, w, admission.Mutate, p, &got)
	na := got.Spec.Affinity.NodeAffinity
	other := Node("v1-other-pool", "amd64", "6")
	other.Labels[pool.Key] = "red"
	if matches(na, other) {
		t.Errorf("with a forged annotation the pod may now be scheduled outside its tenant pool: %+v", na.RequiredDuringSchedulingIgnoredDuringExecution)
	}
}

// TestSecretErrorNotCached: a transient error reading a pull secret (an API server hiccup) is not
// remembered: the namespace's next pod reads it again.
func TestSecretErrorNotCached(t *testing.T) {
	f := newFixture(t)
	cfg := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, f.reg.Host(), base64.StdEncoding.EncodeToString([]byte("u:p")))
	var fail atomic.Bool
	fail.Store(true)
	kube := secretsAPI(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pull", Namespace: "default"},
		Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(cfg)}}, &fail)
	w := f.webhook(t, admission.Options{Kube: kube})
	p := pod("p", f.ref)
	p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "pull"}}
	if resp := review(t, w, admission.Mutate, p, nil); resp.Allowed {
		t.Fatal("the first review should fail closed on the API error")
	}
	fail.Store(false) // the API server is back
	if resp := review(t, w, admission.Mutate, p, nil); !resp.Allowed {
		t.Errorf("after the API server recovered, the pod is still rejected with the cached error: %s", resp.Result.Message)
	}
}

// TestReadSlotsPerNamespace: a tenant naming 64 made-up digests per pod on a slow registry holds
// at most its namespace's read slots (MaxReadsPerNamespace), starts no read once the request's
// budget is spent, and another namespace's pod is still read and admitted.
func TestReadSlotsPerNamespace(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	var once sync.Once
	stop := func() { once.Do(func() { close(release) }) }
	defer stop()
	f.reg.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/junk/") {
			return false
		}
		select { // a slow answer: a distant registry, or one under load
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusNotFound)
		return true
	})
	w := f.webhook(t, admission.Options{Budget: 500 * time.Millisecond})
	before := runtime.NumGoroutine()
	for i := range 2 {
		var imgs []string
		for range 64 {
			var b [32]byte
			_, _ = rand.Read(b[:])
			imgs = append(imgs, f.reg.Host()+"/junk/x@"+digest.NewDigestFromBytes(digest.SHA256, b[:]).String())
		}
		review(t, w, admission.Mutate, pod(fmt.Sprintf("attacker-%d", i), imgs...), nil)
	}
	t.Logf("goroutines after the attacker's 2 rejected requests returned: %d more than before", runtime.NumGoroutine()-before)
	victim := pod("victim", f.ref)
	victim.Namespace = "victim"
	resp := reviewIn(t, w, admission.Mutate, "victim", victim)
	if !resp.Allowed {
		t.Errorf("another tenant's pod of a healthy image was rejected while the attacker's reads hold the slots: %s", resp.Result.Message)
	}
}

// TestRegistryCaseAndPort: "LOCALHOST:port/..." and "host:443/..." are the allowlisted registries
// they name (hosts are case-insensitive, 443 is HTTPS's port), so their images are checked.
func TestRegistryCaseAndPort(t *testing.T) {
	f := newFixture(t)
	port := f.reg.Host()[strings.LastIndex(f.reg.Host(), ":")+1:]
	w, err := admission.New(admission.Options{AllowRegistries: []string{"localhost:" + port}, PlainHTTP: []string{"localhost:" + port, "LOCALHOST:" + port}}, f.nodes)
	if err != nil {
		t.Fatal(err)
	}
	p := pod("p", "localhost:"+port+"/hello:1.0")
	p.Spec.NodeName = "old-node"
	if resp := review(t, w, admission.Validate, p, nil); resp.Allowed {
		t.Fatal("control: the lower-case reference on old-node should be denied")
	}
	p = pod("p", "LOCALHOST:"+port+"/hello:1.0")
	p.Spec.NodeName = "old-node"
	if resp := review(t, w, admission.Validate, p, nil); resp.Allowed {
		t.Errorf("the same image written LOCALHOST:%s/hello:1.0 was admitted on old-node, unchecked", port)
	}
}

// TestHeavyImageNotRetained: an image of nested indexes of megabytes each (anyone who can push to
// an allowed repository can make one) is bounded by MaxBytesPerImage, and what a cached image
// keeps is its parsed tree and specs, not the manifests' bytes.
func TestHeavyImageNotRetained(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	repo, err := remote.NewRepository(f.reg.Host() + "/heavy")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	repo.Client = testregistry.Client()
	// A real manifest (the example image's linux/amd64) copied into the repository.
	src, err := remote.NewRepository(f.reg.Host() + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	src.PlainHTTP, src.Client = true, testregistry.Client()
	m := f.img.Manifests[0]
	if err := oras.CopyGraph(ctx, src, repo, m, oras.DefaultCopyGraphOptions); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("A", 3900<<10)
	var nested []ocispec.Descriptor
	for i := range 15 {
		idx := ocispec.Index{Versioned: specsV2, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{m},
			Annotations: map[string]string{"pad": fmt.Sprint(i) + pad}}
		b, _ := json.Marshal(idx)
		d, err := oras.PushBytes(ctx, repo, ocispec.MediaTypeImageIndex, b)
		if err != nil {
			t.Fatalf("pushing a 3.9 MiB index: %v", err)
		}
		nested = append(nested, d)
	}
	root, _ := json.Marshal(ocispec.Index{Versioned: specsV2, MediaType: ocispec.MediaTypeImageIndex, Manifests: nested})
	rd, err := oras.PushBytes(ctx, repo, ocispec.MediaTypeImageIndex, root)
	if err != nil {
		t.Fatal(err)
	}
	w := f.webhook(t, admission.Options{})
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	resp := review(t, w, admission.Mutate, pod("p", f.reg.Host()+"/heavy@"+rd.Digest.String()), nil)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	retained := int64(ms.HeapAlloc) - int64(before)
	t.Logf("allowed %v; heap retained after one pod of one image: %d MiB", resp.Allowed, retained>>20)
	if retained > 16<<20 {
		t.Errorf("one cached image keeps %d MiB in memory; 9 such images in one pod pass deploy/'s 512 Mi limit", retained>>20)
	}
	runtime.KeepAlive(w)
}

var specsV2 = specs.Versioned{SchemaVersion: 2}

// TestDiskCacheByCredentials: with an on-disk cache (--cache-dir), what a namespace read with its
// pull secret is not served to a namespace without it, not even by digest: each set of
// credentials has its own cache directory.
func TestDiskCacheByCredentials(t *testing.T) {
	f := newFixture(t)
	f.reg.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if u, p, ok := r.BasicAuth(); ok && u == "puller" && p == "s3cret" {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
		return true
	})
	cfg := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, f.reg.Host(), base64.StdEncoding.EncodeToString([]byte("puller:s3cret")))
	kube := secretsAPI(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pull", Namespace: "default"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(cfg)}}, nil)
	cache := &oci.Cache{Dir: t.TempDir()}
	w := f.webhook(t, admission.Options{Kube: kube, Cache: cache})
	p := pod("p", f.ref)
	p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "pull"}}
	if resp := review(t, w, admission.Mutate, p, nil); !resp.Allowed {
		t.Fatalf("with credentials: %v", resp.Result)
	}
	// Another namespace: no pull secret (the stand-in API server has none there).
	byDigest := f.reg.Host() + "/hello@" + f.img.Index.Digest.String()
	raw, _ := json.Marshal(pod("q", byDigest))
	resp := w.Review(context.Background(), admission.Mutate, &admissionv1.AdmissionRequest{UID: "u", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Operation: admissionv1.Create, Namespace: "other", Object: k8sruntime.RawExtension{Raw: raw}})
	msg := ""
	if resp.Result != nil {
		msg = resp.Result.Message
	}
	t.Logf("namespace without credentials, by digest: allowed %v, patch %s, message %q", resp.Allowed, resp.Patch, msg)
	for _, m := range f.img.Manifests {
		if strings.Contains(msg, m.Digest.String()) || bytes.Contains(resp.Patch, []byte(m.Digest.String())) {
			t.Errorf("a namespace without credentials learnt the private index's content (manifest %s) from the shared disk cache, the registry never asked", m.Digest)
			break
		}
	}
}

// secretsAPI is a stand-in API server (the Kubernetes tests use a real one) that serves one secret
// by name in its namespace, and 404 for service accounts; while fail is set, reading the secret
// answers 504, as an API server whose etcd is electing a leader.
func secretsAPI(t *testing.T, secret *corev1.Secret, fail *atomic.Bool) *rest.Config {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/api/v1/namespaces/"+secret.Namespace+"/secrets/"+secret.Name {
			if fail != nil && fail.Load() {
				w.WriteHeader(http.StatusGatewayTimeout)
				_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
					Code: http.StatusGatewayTimeout, Reason: metav1.StatusReasonTimeout, Message: "etcd leader election"})
				return
			}
			s := secret.DeepCopy()
			s.APIVersion, s.Kind = "v1", "Secret"
			_ = json.NewEncoder(w).Encode(s)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
			Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound, Message: r.URL.Path + " not found"})
	}))
	t.Cleanup(srv.Close)
	return &rest.Config{Host: srv.URL}
}
