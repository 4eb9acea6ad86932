package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/compatkit/compatkit/internal/testkube"
	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/pkg/host"
)

// exampleNode is a node as NFD labels it: the cpuid flags (NFD's default labels, without its
// attributeBlacklist), the kernel version, os and arch.
func exampleNode(name, arch, major, minor string, flags ...string) *corev1.Node {
	l := map[string]string{"kubernetes.io/os": "linux", "kubernetes.io/arch": arch, "kubernetes.io/hostname": name,
		host.NFDLabelPrefix + "kernel-version.major": major, host.NFDLabelPrefix + "kernel-version.minor": minor}
	for _, f := range flags {
		l[host.NFDLabelPrefix+"cpu-cpuid."+f] = "true"
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestWebhookCommand runs `compat-attach webhook` against a real kube-apiserver and
// kube-scheduler, with the example's compat.cue attached to a 3-platform image: pods are
// scheduled onto the nodes that can run the image, a pod pinned to a node with too old a kernel
// is rejected with the rule, /metrics counts the decisions, and a renewed certificate is served
// without a restart.
func TestWebhookCommand(t *testing.T) {
	// The API server authenticates to the webhook with a client certificate (--client-ca-file).
	authDir := t.TempDir()
	client, err := testkube.NewClientCert(authDir)
	if err != nil {
		t.Fatal(err)
	}
	authFlag, err := testkube.WebhookClientAuth(authDir, client)
	if err != nil {
		t.Fatal(err)
	}
	c := testkube.Start(t, testkube.Options{Scheduler: true, APIServerArgs: []string{authFlag}})
	reg := testregistry.NewOCI(t)
	testregistry.PushImage(t, reg.Host(), "hello", "1.0")
	image := reg.Host() + "/hello:1.0"
	if _, stderr, code := runCLI(t, "attach", "--plain-http", image, "--spec", "../../examples/hello/compat.cue"); code != 0 {
		t.Fatalf("attach: %s", stderr)
	}

	dir := t.TempDir()
	sc, err := testkube.NewServingCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	listen, metrics := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var stderr strings.Builder
	var mu sync.Mutex
	wg.Go(func() {
		cmd := newRootCmd()
		cmd.SetArgs([]string{"webhook", "--kubeconfig", c.Kubeconfig, "--listen", listen, "--metrics-listen", metrics,
			"--tls-cert-file", sc.CertFile, "--tls-key-file", sc.KeyFile,
			"--allow-registry", reg.Host(), "--plain-http-registry", reg.Host(), "--pin-digests", "--client-ca-file", client.CAFile})
		cmd.SetOut(io.Discard)
		var b strings.Builder
		cmd.SetErr(&b)
		err := cmd.ExecuteContext(ctx)
		mu.Lock()
		stderr.WriteString(b.String())
		if err != nil {
			fmt.Fprintf(&stderr, "error: %v\n", err)
		}
		mu.Unlock()
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if t.Failed() {
			t.Logf("compat-attach webhook stderr:\n%s", stderr.String())
		}
	})

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(sc.CA)
	clientPair, err := tls.LoadX509KeyPair(client.CertFile, client.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{clientPair}}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get("https://" + listen + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook is not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Anyone else is refused before a request is read.
	anon := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if resp, err := anon.Post("https://"+listen+"/mutate", "application/json", strings.NewReader("{}")); err == nil {
		resp.Body.Close()
		t.Errorf("a client without a certificate got an answer: %s", resp.Status)
	}
	if err := c.RegisterWebhooks(ctx, "../../deploy/webhook-configurations.yaml", "https://"+listen, sc.CA, "cli"); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTestNamespace(ctx, "apps", "cli"); err != nil {
		t.Fatal(err)
	}
	v1 := []string{"X87", "CMPXCHG8", "FXSR", "SYSCALL", "SYSEE"}
	v3 := append([]string{"LAHF", "AVX", "AVX2", "FMA3", "MOVBE", "OSXSAVE"}, v1...)
	if err := c.CreateReadyNodes(ctx, []*corev1.Node{
		exampleNode("v3", "amd64", "6", "8", v3...),
		exampleNode("v1", "amd64", "6", "8", v1...),
		exampleNode("old-kernel", "amd64", "3", "1", v3...),
	}); err != nil {
		t.Fatal(err)
	}
	// The informer sees the nodes shortly after they are created.
	time.Sleep(time.Second)

	var names []string
	for i := range 6 {
		name := fmt.Sprintf("hello-%d", i)
		_, err := c.Client.CoreV1().Pods("apps").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "hello", Image: image}}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	sctx, scancel := context.WithTimeout(ctx, time.Minute)
	defer scancel()
	placed, err := c.WaitScheduled(sctx, "apps", names)
	if err != nil {
		t.Fatal(err)
	}
	for name, node := range placed {
		if node == "old-kernel" {
			t.Errorf("%s was scheduled on old-kernel (Linux 3.1; the Go runtime needs 3.2)", name)
		}
	}
	_, err = c.Client.CoreV1().Pods("apps").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pinned"},
		Spec: corev1.PodSpec{NodeName: "old-kernel", Containers: []corev1.Container{{Name: "hello", Image: image}}}}, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "kernel new enough for the Go runtime") || !strings.Contains(err.Error(), "old-kernel") {
		t.Errorf("a pod pinned to old-kernel: %v", err)
	}

	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Seven pods were mutated: the six, and the pinned one before the validating webhook denied it.
	for _, want := range []string{`compatkit_admission_requests_total{result="mutated",webhook="mutate"} 7`,
		`compatkit_admission_requests_total{result="denied",webhook="validate"} 1`, "compatkit_admission_nodes 3", "compatkit_admission_feature_sets 3",
		`compatkit_admission_images_total{result="cache_hit"}`, "compatkit_admission_registry_seconds_bucket"} {
		if !strings.Contains(string(body), want) {
			var ours []string
			for _, l := range strings.Split(string(body), "\n") {
				if strings.HasPrefix(l, "compatkit_") && !strings.Contains(l, "_bucket") {
					ours = append(ours, l)
				}
			}
			t.Errorf("/metrics lacks %q:\n%s", want, strings.Join(ours, "\n"))
		}
	}

	// A renewed certificate (another CA) is served without a restart.
	sc2, err := testkube.NewServingCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	pool2 := x509.NewCertPool()
	pool2.AppendCertsFromPEM(sc2.CA)
	hc2 := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool2, Certificates: []tls.Certificate{clientPair}}}}
	deadline = time.Now().Add(10 * time.Second)
	for {
		resp, err := hc2.Get("https://" + listen + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the renewed certificate is not served: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestWebhookUsage: the flags the webhook cannot run without are usage errors that say what to
// give.
func TestWebhookUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"webhook", "--allow-registry", "ghcr.io"}, "--tls-cert-file and --tls-key-file are required"},
		{[]string{"webhook", "--tls-cert-file", "a", "--tls-key-file", "b"}, "--allow-registry is required"},
		{[]string{"webhook", "--tls-cert-file", "a", "--tls-key-file", "b", "--allow-registry", "*", "--require-trusted"}, "--require-trusted needs a trust policy"},
	} {
		_, stderr, code := runCLI(t, c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %s", c.args, code, stderr)
		}
	}
}
