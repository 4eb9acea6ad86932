package testkube

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const avx2Label = "feature.node.kubernetes.io/cpu-cpuid.AVX2"

func TestCluster(t *testing.T) {
	begin := time.Now()
	c := Start(t, Options{Scheduler: true})
	t.Logf("Start (with scheduler): %v", time.Since(begin).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	if b, err := os.ReadFile(c.Kubeconfig); err != nil || !strings.Contains(string(b), c.Config.Host) {
		t.Errorf("kubeconfig %s: %v, want server %s", c.Kubeconfig, err, c.Config.Host)
	}

	nodes := []*corev1.Node{
		node("plain-1", map[string]string{"kubernetes.io/arch": "amd64"}),
		node("avx2", map[string]string{"kubernetes.io/arch": "amd64", avx2Label: "true"}),
		node("plain-2", map[string]string{"kubernetes.io/arch": "amd64"}),
	}
	if err := c.CreateReadyNodes(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	got, err := c.Client.CoreV1().Nodes().Get(ctx, "avx2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Spec.Taints) != 0 || got.Status.Allocatable.Cpu().String() != "8" {
		t.Errorf("node avx2: taints %v, allocatable %v", got.Spec.Taints, got.Status.Allocatable)
	}

	const ns = "affinity"
	if err := c.EnsureNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureNamespace(ctx, ns); err != nil { // idempotent
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "needs-avx2", Namespace: ns},
		Spec: corev1.PodSpec{
			ServiceAccountName: "default",
			Containers:         []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}},
			Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
						Key: avx2Label, Operator: corev1.NodeSelectorOpIn, Values: []string{"true"},
					}}}},
				},
			}},
		},
	}
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bound, err := c.WaitScheduled(ctx, ns, []string{pod.Name})
	if err != nil {
		t.Fatal(err)
	}
	if bound[pod.Name] != "avx2" {
		t.Errorf("pod %s bound to %q, want avx2", pod.Name, bound[pod.Name])
	}

	// A pod no node fits: WaitScheduled reports the scheduler's reason.
	stuck := pod.DeepCopy()
	stuck.Name = "needs-avx512"
	stuck.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0].Key =
		"feature.node.kubernetes.io/cpu-cpuid.AVX512F"
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, stuck, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	_, err = c.WaitScheduled(short, ns, []string{pod.Name, stuck.Name, "absent"})
	cancelShort()
	if err == nil || !strings.Contains(err.Error(), "needs-avx512: PodScheduled=False Unschedulable") ||
		!strings.Contains(err.Error(), "absent: not found") || strings.Contains(err.Error(), "needs-avx2:") {
		t.Errorf("WaitScheduled of an unschedulable pod: %v", err)
	} else {
		t.Logf("unscheduled report: %v", err)
	}

	// RBAC: alice (token user, no groups) may not list nodes.
	alice, err := kubernetes.NewForConfig(c.UserConfig("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("alice lists nodes: %v, want Forbidden", err)
	} else if !strings.Contains(err.Error(), `User "alice"`) {
		t.Errorf("Forbidden for another user: %v", err)
	}
	// An impersonated user in system:masters may.
	root, err := kubernetes.NewForConfig(c.UserConfig("carol", "system:masters"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("carol (system:masters) lists nodes: %v", err)
	}

	if testing.Short() {
		t.Log("skipping 1,000 nodes in -short mode")
		return
	}
	many := make([]*corev1.Node, 1000)
	for i := range many {
		many[i] = node(fmt.Sprintf("bulk-%04d", i), map[string]string{"kubernetes.io/arch": "amd64"})
	}
	begin = time.Now()
	if err := c.CreateReadyNodes(ctx, many); err != nil {
		t.Fatal(err)
	}
	t.Logf("CreateReadyNodes(1,000 nodes): %v", time.Since(begin).Round(time.Millisecond))
	list, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ready := 0
	for _, n := range list.Items {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue && len(n.Spec.Taints) == 0 {
				ready++
			}
		}
	}
	if ready != 1003 {
		t.Errorf("%d ready untainted nodes, want 1003", ready)
	}
	// Creating one again names the node.
	if err := c.CreateReadyNodes(ctx, many[:1]); err == nil || !strings.Contains(err.Error(), "bulk-0000") {
		t.Errorf("duplicate node: %v", err)
	}
}

func node(name string, labels map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}
