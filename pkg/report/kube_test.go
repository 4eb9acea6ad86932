package report_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/compatkit/compatkit/internal/testkube"
	"github.com/compatkit/compatkit/pkg/report"
)

// kubeList is the JSON `kubectl get KIND -o json` prints for items: a List of them, each with its
// kind and apiVersion.
func kubeList(t *testing.T, apiVersion, kind string, items any) []byte {
	t.Helper()
	raw, err := json.Marshal(items)
	if err != nil {
		t.Fatal(err)
	}
	var objs []map[string]any
	if err := json.Unmarshal(raw, &objs); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		o["apiVersion"], o["kind"] = apiVersion, kind
	}
	out, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": objs})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// counting returns a copy of cfg, not rate limited (client-go's default is 5 requests a second),
// that counts the GET requests whose URL path is countPath (and those with a continue token).
func counting(cfg *rest.Config, countPath string, count *atomic.Int64, continued *atomic.Int64) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 1000, 2000
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Path == countPath && r.Method == http.MethodGet {
				count.Add(1)
				if r.URL.Query().Get("continue") != "" {
					continued.Add(1)
				}
			}
			return rt.RoundTrip(r)
		})
	})
	return cfg
}

// fastClient is a clientset of cfg that is not rate limited, for creating objects.
func fastClient(t *testing.T, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	var none atomic.Int64
	c, err := kubernetes.NewForConfig(counting(cfg, "", &none, &none))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// countingCluster is the report.Cluster of cfg, counting as counting does.
func countingCluster(t *testing.T, cfg *rest.Config, countPath string, count *atomic.Int64, continued *atomic.Int64) *report.Cluster {
	t.Helper()
	c, _, err := report.ConnectCluster(counting(cfg, countPath, count, continued))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func pod(ns, name string, labels map[string]string, init []string, containers ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
	for i, img := range init {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: fmt.Sprintf("init%d", i), Image: img})
	}
	for i, img := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: img})
	}
	return p
}

// TestKubeClusterImages reads the pods of a real API server, over more than one page, and checks
// that ClusterImages takes from them what ReadImages takes from `kubectl get pods -A -o json`.
func TestKubeClusterImages(t *testing.T) {
	c := testkube.Start(t, testkube.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, ns := range []string{"shop", "batch"} {
		if err := c.EnsureNamespace(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	var pods []*corev1.Pod
	// shop: web pods share an image; one pod uses the same image twice and has an init container.
	pods = append(pods,
		pod("shop", "web-0", map[string]string{"tier": "web"}, []string{"example.com/migrate:1"}, "example.com/web:2", "example.com/sidecar:1"),
		pod("shop", "web-1", map[string]string{"tier": "web"}, nil, "example.com/web:2", "example.com/web:2"),
		pod("shop", "cache-0", map[string]string{"tier": "cache"}, nil, "redis:7"),
	)
	// batch: more pods than one page holds (ClusterPageSize), over a few images.
	const batch = report.ClusterPageSize + 40
	for i := range batch {
		pods = append(pods, pod("batch", fmt.Sprintf("job-%04d", i), map[string]string{"job": "x"}, nil, fmt.Sprintf("example.com/job:%d", i%7), "example.com/sidecar:1"))
	}
	var lists, continued atomic.Int64
	client := fastClient(t, c.Config)
	cluster := countingCluster(t, c.Config, "/api/v1/pods", &lists, &continued)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for _, p := range pods {
		g.Go(func() error {
			_, err := client.CoreV1().Pods(p.Namespace).Create(gctx, p, metav1.CreateOptions{})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("creating %d pods: %v", len(pods), err)
	}

	// What the file path reads from `kubectl get pods -A -o json` of the same pods.
	all, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Items) != len(pods) {
		t.Fatalf("the cluster has %d pods, want %d", len(all.Items), len(pods))
	}
	want, err := report.ParseImages(kubeList(t, "v1", "Pod", all.Items), "pods.json")
	if err != nil {
		t.Fatal(err)
	}
	lists.Store(0)
	got, err := report.ClusterImages(ctx, cluster, report.ClusterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ClusterImages:\n%v\nthe file path:\n%v", summary(got), summary(want))
	}
	if n, cont := lists.Load(), continued.Load(); n != 2 || cont != 1 {
		t.Errorf("%d list requests (%d with a continue token) for %d pods, want 2 (1)", n, cont, len(pods))
	}
	// The web image lists each of its pods once, the sidecar every pod that uses it.
	byRef := map[string]report.Image{}
	for _, im := range got {
		byRef[im.Ref] = im
	}
	if w := byRef["example.com/web:2"].Pods; !reflect.DeepEqual(w, []string{"shop/web-0", "shop/web-1"}) {
		t.Errorf("web:2 pods %v", w)
	}
	if n := len(byRef["example.com/sidecar:1"].Pods); n != batch+1 {
		t.Errorf("sidecar:1 has %d pods, want %d", n, batch+1)
	}
	if len(got) != 7+4 {
		t.Errorf("%d images, want 11", len(got))
	}

	// One namespace, a selector.
	got, err = report.ClusterImages(ctx, cluster, report.ClusterOptions{Namespace: "shop", Selector: "tier=web"})
	if err != nil {
		t.Fatal(err)
	}
	if s := summary(got); s != "example.com/migrate:1[shop/web-0] example.com/web:2[shop/web-0 shop/web-1] example.com/sidecar:1[shop/web-0]" {
		t.Errorf("shop, tier=web: %s", s)
	}

	// Errors name the cluster (taken from the client when not given) and what was listed.
	_, err = report.ClusterImages(ctx, cluster, report.ClusterOptions{Namespace: "empty"})
	if err == nil || !strings.Contains(err.Error(), c.Config.Host) || !strings.Contains(err.Error(), `namespace "empty"`) {
		t.Errorf("no pod: %v (want the server %s and the namespace)", err, c.Config.Host)
	}
	_, err = report.ClusterImages(ctx, cluster, report.ClusterOptions{Selector: "tier in (", Server: "https://prod.example"})
	if err == nil || !strings.HasPrefix(err.Error(), "cluster https://prod.example: listing pods matching") {
		t.Errorf("a bad selector: %v", err)
	}
}

func summary(images []report.Image) string {
	var parts []string
	for _, im := range images {
		parts = append(parts, fmt.Sprintf("%s%v", im.Ref, im.Pods))
	}
	return strings.Join(parts, " ")
}

// nfdNode is a Node with NFD's labels and the kubelet's platform labels.
func nfdNode(name, arch string, labels ...string) *corev1.Node {
	l := map[string]string{"kubernetes.io/os": "linux", "kubernetes.io/arch": arch, "kubernetes.io/hostname": name}
	for _, kv := range labels {
		k, v, _ := strings.Cut(kv, "=")
		l["feature.node.kubernetes.io/"+k] = v
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
}

// TestKubeClusterNodes reads the nodes of a real API server, first without NFD's CRD (features from
// the labels, as ReadNodes reads `kubectl get nodes -o json`), then with NodeFeature objects (their
// features, as ReadNodes reads `kubectl get nodefeatures -A -o json`, the platform from the labels).
func TestKubeClusterNodes(t *testing.T) {
	c := testkube.Start(t, testkube.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.CreateReadyNodes(ctx, []*corev1.Node{
		nfdNode("amd-v3", "amd64", "cpu-cpuid.AVX2=true", "cpu-cpuid.FMA3=true", "cpu-cpuid.X86_64_V3=true", "cpu-model.vendor_id=Intel", "kernel-version.full=6.1.0", "pci-0300_10de.present=true"),
		nfdNode("arm", "arm64", "cpu-cpuid.ASIMD=true", "kernel-version.full=5.15.0"),
		nfdNode("bare", "amd64"),
	}); err != nil {
		t.Fatal(err)
	}
	var lists, continued atomic.Int64
	client := fastClient(t, c.Config)
	cluster := countingCluster(t, c.Config, "/api/v1/nodes", &lists, &continued)
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	opts := report.ClusterOptions{NodeFeatures: true}

	all, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := report.ParseNodes(kubeList(t, "v1", "Node", all.Items), "nodes.json")
	if err != nil {
		t.Fatal(err)
	}
	lists.Store(0)
	got, err := report.ClusterNodes(ctx, cluster, opts) // no CRD: not an error
	if err != nil {
		t.Fatal(err)
	}
	sameNodes(t, "without NodeFeatures", got, want)
	if s := nodeSummary(got); s != "amd-v3 linux/amd64/v3 labels, arm linux/arm64/v8 labels, bare linux/amd64/v1 labels" {
		t.Errorf("nodes: %s", s)
	}
	if n := lists.Load(); n != 1 {
		t.Errorf("%d node list requests, want 1", n)
	}

	// NFD's CRD and NodeFeature objects: two of amd-v3 (merged), a stale one of a node that is
	// gone, one of arm that only requests labels (no features).
	if err := c.InstallNodeFeatureCRD(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureNamespace(ctx, "node-feature-discovery"); err != nil {
		t.Fatal(err)
	}
	nfs := []*unstructured.Unstructured{
		testkube.NodeFeature("node-feature-discovery", "amd-v3", "amd-v3", `{"flags": {"cpu.cpuid": {"elements": {"AVX": {}, "AVX2": {}, "BMI1": {}, "BMI2": {}, "F16C": {}, "FMA3": {}, "LZCNT": {}, "MOVBE": {}, "OSXSAVE": {},
		   "CX16": {}, "LAHF": {}, "POPCNT": {}, "SSE3": {}, "SSE4": {}, "SSE42": {}, "SSSE3": {}}}},
		 "attributes": {"kernel.version": {"elements": {"full": "6.1.0", "major": "6", "minor": "1"}}, "cpu.model": {"elements": {"vendor_id": "Intel"}}},
		 "instances": {"pci.device": {"elements": [{"attributes": {"class": "0300", "vendor": "10de", "device": "2236"}}]}}}`),
		testkube.NodeFeature("node-feature-discovery", "amd-v3-extra", "amd-v3", `{"attributes": {"system.osrelease": {"elements": {"ID": "ubuntu"}}}}`),
		testkube.NodeFeature("node-feature-discovery", "gone", "gone", `{"flags": {"cpu.cpuid": {"elements": {"AVX512F": {}}}}}`),
		testkube.NodeFeature("vendor", "arm-labels", "arm", `{}`),
	}
	if err := c.EnsureNamespace(ctx, "vendor"); err != nil {
		t.Fatal(err)
	}
	for _, o := range nfs {
		if _, err := dyn.Resource(report.NodeFeatureResource).Namespace(o.GetNamespace()).Create(ctx, o, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating NodeFeature %s: %v", o.GetName(), err)
		}
	}
	nfList, err := dyn.Resource(report.NodeFeatureResource).Namespace("node-feature-discovery").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := report.ParseNodes(kubeList(t, "nfd.k8s-sigs.io/v1alpha1", "NodeFeature", nfList.Items), "nodefeatures.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err = report.ClusterNodes(ctx, cluster, opts)
	if err != nil {
		t.Fatal(err)
	}
	if s := nodeSummary(got); s != "amd-v3 linux/amd64/v3 nodefeature, arm linux/arm64/v8 labels, bare linux/amd64/v1 labels" {
		t.Errorf("nodes with NodeFeatures: %s", s)
	}
	if fromFile[0].Name != "amd-v3" || !reflect.DeepEqual(got[0].Features, fromFile[0].Features) {
		t.Errorf("amd-v3: the features of its NodeFeatures differ from the file path's:\n%+v\n%+v", got[0].Features, fromFile[0].Features)
	}
	if _, ok := got[0].Features.Attributes["system.osrelease"]; !ok {
		t.Errorf("amd-v3: the second NodeFeature is not merged: %+v", got[0].Features.Attributes)
	}
	sameNodes(t, "nodes without NodeFeatures", got[1:], want[1:])
	// Without ClusterOptions.NodeFeatures, NodeFeatures are not read.
	got, err = report.ClusterNodes(ctx, cluster, report.ClusterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameNodes(t, "without NodeFeatures", got, want)

	// Errors name the cluster and what was listed.
	down := rest.CopyConfig(c.Config)
	down.Host = "https://127.0.0.1:1"
	downCluster, _, err := report.ConnectCluster(down)
	if err != nil {
		t.Fatal(err)
	}
	_, err = report.ClusterNodes(ctx, downCluster, report.ClusterOptions{})
	if err == nil || !strings.HasPrefix(err.Error(), "cluster https://127.0.0.1:1: listing nodes: ") {
		t.Errorf("an unreachable cluster: %v", err)
	}
}

func sameNodes(t *testing.T, what string, got, want []report.Node) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d nodes, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Platform != w.Platform || g.FromLabels != w.FromLabels || !reflect.DeepEqual(g.Features, w.Features) {
			t.Errorf("%s: node %d: %s %s %v %+v\nthe file path: %s %s %v %+v", what, i, g.Name, g.Platform, g.FromLabels, g.Features, w.Name, w.Platform, w.FromLabels, w.Features)
		}
	}
}

func nodeSummary(nodes []report.Node) string {
	var parts []string
	for _, n := range nodes {
		from := "nodefeature"
		if n.FromLabels {
			from = "labels"
		}
		parts = append(parts, n.Name+" "+n.Platform+" "+from)
	}
	return strings.Join(parts, ", ")
}
