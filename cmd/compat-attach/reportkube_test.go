package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/compatkit/compatkit/internal/testkube"
	"github.com/compatkit/compatkit/pkg/report"
)

// kubeNode is a Node as the kubelet and NFD label it (labels are NFD's, without their prefix).
func kubeNode(name, arch string, labels ...string) *corev1.Node {
	l := map[string]string{"kubernetes.io/os": "linux", "kubernetes.io/arch": arch}
	for _, kv := range labels {
		k, v, _ := strings.Cut(kv, "=")
		l["feature.node.kubernetes.io/"+k] = v
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
}

// TestReportKubeconfig runs report --kubeconfig against a real API server: the images of its pods,
// pushed to a test registry with a spec attached, on its nodes (NFD's labels), and the same
// images on planned nodes (--nodes).
func TestReportKubeconfig(t *testing.T) {
	c := testkube.Start(t, testkube.Options{})
	reg, tmp := reportImages(t)
	hello, plain := reg.Host()+"/hello:1.0", reg.Host()+"/plain:1.0"

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.CreateReadyNodes(ctx, []*corev1.Node{
		kubeNode("graviton", "arm64", "cpu-cpuid.ASIMD=true", "kernel-version.full=6.1.0"),
		kubeNode("new-v3", "amd64", "cpu-cpuid.X86_64_V3=true", "cpu-cpuid.AVX2=true", "cpu-cpuid.FMA3=true", "kernel-version.full=6.1.0"),
		kubeNode("old-arm", "arm64", "cpu-cpuid.FP=true", "kernel-version.full=6.1.0"),
	}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "front", Labels: map[string]string{"app": "front"}},
			Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "init", Image: plain}}, Containers: []corev1.Container{{Name: "app", Image: hello}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "batch", Name: "job", Labels: map[string]string{"app": "job"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "job", Image: plain}}}},
	} {
		if err := c.EnsureNamespace(ctx, p.Namespace); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	jsonReport := func(t *testing.T, args ...string) *report.Report {
		t.Helper()
		out, stderr, code := runCLI(t, append([]string{"report", "--plain-http-registry", reg.Host(), "-o", "json"}, args...)...)
		if code != 0 {
			t.Fatalf("report %s: exit %d: %s", strings.Join(args, " "), code, stderr)
		}
		var rep report.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return &rep
	}
	images := func(rep *report.Report) string {
		var parts []string
		for _, im := range rep.Images {
			parts = append(parts, strings.TrimPrefix(im.Ref, reg.Host()+"/")+strings.Join(im.Pods, ","))
		}
		return strings.Join(parts, " ")
	}
	cells := func(rep *report.Report, image int) string {
		var parts []string
		for j, n := range rep.Nodes {
			c := rep.Cell(image, j)
			parts = append(parts, n.Name+"="+string(c.Status)+":"+c.Platform)
		}
		return strings.Join(parts, " ")
	}

	// The pods of every namespace on the cluster's nodes, with --kubeconfig FILE.
	rep := jsonReport(t, "--kubeconfig", c.Kubeconfig)
	// Pods in list order (batch/job, web/front), the init container's image first.
	if s := images(rep); s != "plain:1.0batch/job,web/front hello:1.0web/front" {
		t.Errorf("images: %s", s)
	}
	if s := cells(rep, 1); s != "graviton=compatible:linux/arm64/v8 new-v3=compatible:linux/amd64/v3 old-arm=incompatible:linux/arm64/v8" {
		t.Errorf("hello: %s", s)
	}
	for _, n := range rep.Nodes {
		if !n.FromLabels {
			t.Errorf("node %s: features not from labels", n.Name)
		}
	}

	// One namespace, a selector; --kubeconfig=FILE.
	rep = jsonReport(t, "--kubeconfig="+c.Kubeconfig, "-n", "web", "-l", "app=front")
	if s := images(rep); s != "plain:1.0web/front hello:1.0web/front" {
		t.Errorf("-n web -l app=front: %s", s)
	}

	// The running images on planned nodes: --nodes replaces the cluster's.
	planned := writeFile(t, tmp, "planned.json", profile("linux/amd64", cpuidV2, "6.1.0"))
	rep = jsonReport(t, "--kubeconfig", c.Kubeconfig, "--nodes", planned)
	if len(rep.Nodes) != 1 || rep.Nodes[0].Name != "planned" || len(rep.Images) != 2 {
		t.Errorf("--nodes planned.json: nodes %+v, %d images", rep.Nodes, len(rep.Images))
	}
	if s := cells(rep, 1); s != "planned=nospec:linux/amd64" {
		t.Errorf("hello on planned: %s", s)
	}

	// Given images on the cluster's nodes; $KUBECONFIG with --kubeconfig alone.
	t.Setenv("KUBECONFIG", c.Kubeconfig)
	imagesFile := writeFile(t, tmp, "images.txt", hello+"\n")
	rep = jsonReport(t, "--images", imagesFile, "--kubeconfig")
	if s := cells(rep, 0); len(rep.Images) != 1 || s != "graviton=compatible:linux/arm64/v8 new-v3=compatible:linux/amd64/v3 old-arm=incompatible:linux/arm64/v8" {
		t.Errorf("--images on the cluster's nodes: %s", s)
	}

	// The table names the nodes and the failure.
	out, stderr, code := runCLI(t, "report", "--plain-http-registry", reg.Host(), "--kubeconfig", "-n", "web")
	if code != 0 || !strings.Contains(out, "hello:1.0 on old-arm:") || !strings.Contains(out, "rule ASIMD") {
		t.Errorf("table: exit %d %s\n%s", code, stderr, out)
	}

	// Errors.
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--kubeconfig", "-n", "nowhere"}, exitFailure, `no container image in the pods in namespace "nowhere"`},
		{[]string{"--kubeconfig", filepath.Join(tmp, "missing.yaml")}, exitFailure, "missing.yaml"},
		{[]string{"--kubeconfig", "--context", "nope"}, exitFailure, `"nope"`},
		{[]string{"--images", imagesFile, "-n", "web", "--nodes", planned}, exitUsage, "--namespace and --selector choose the pods read with --kubeconfig"},
		{[]string{"--kubeconfig", "--images", imagesFile, "--nodes", planned}, exitUsage, "--kubeconfig reads nothing"},
		{[]string{"--kubeconfig", "--images", imagesFile, "-l", "app=web"}, exitUsage, "--images (or --spec) replaces them"},
		{[]string{"--kubeconfig", c.Kubeconfig, "stray"}, exitUsage, "unknown command"},
	} {
		_, stderr, code := runCLI(t, append([]string{"report"}, tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("report %s: exit %d %q, want %d and %q", strings.Join(tc.args, " "), code, stderr, tc.code, tc.want)
		}
	}
	if _, stderr, code := runCLI(t, "report", "--kubeconfig", "-n", "nowhere"); !strings.Contains(stderr, c.Config.Host) {
		t.Errorf("the error does not name the cluster %s: %d %s", c.Config.Host, code, stderr)
	}

	// No kubeconfig at all (and not in a pod).
	t.Setenv("KUBECONFIG", filepath.Join(tmp, "none"))
	t.Setenv("HOME", tmp)
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if _, stderr, code := runCLI(t, "report", "--kubeconfig"); code != exitFailure || !strings.Contains(stderr, "no kubeconfig found") {
		t.Errorf("no kubeconfig: exit %d %s", code, stderr)
	}
}
