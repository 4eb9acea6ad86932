package testkube

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// nodeConcurrency bounds the nodes CreateReadyNodes makes at once.
const nodeConcurrency = 32

// Defaults CreateReadyNodes gives a node's status.capacity (and status.allocatable) for each
// resource the node does not set.
var defaultNodeResources = corev1.ResourceList{
	corev1.ResourceCPU:    resource.MustParse("8"),
	corev1.ResourceMemory: resource.MustParse("32Gi"),
	corev1.ResourcePods:   resource.MustParse("110"),
}

// EnsureNamespace creates namespace name and its "default" ServiceAccount (which the
// ServiceAccount admission plugin requires of pods, and which no controller manager creates
// here). Either already existing is fine; other API errors are returned.
func (c *Cluster) EnsureNamespace(ctx context.Context, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("testkube: create namespace %s: %w", name, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: name}}
	if _, err := c.Client.CoreV1().ServiceAccounts(name).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("testkube: create service account %s/default: %w", name, err)
	}
	return nil
}

// CreateReadyNodes makes each node (copied; the arguments are not modified) a schedulable Node
// as a kubelet would: it creates the node, sets through the status subresource condition
// Ready=True and status.capacity and status.allocatable (cpu 8, memory 32Gi, pods 110 for each
// resource the node leaves unset; allocatable defaults to capacity), then removes the
// node.kubernetes.io/not-ready taint that the TaintNodesByCondition admission plugin adds on
// create, keeping the node's own taints. Up to 32 nodes are made at once; 1,000 nodes take a few
// seconds. It returns the first error, naming its node, and then stops starting new nodes.
func (c *Cluster) CreateReadyNodes(ctx context.Context, nodes []*corev1.Node) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(nodeConcurrency)
	for _, n := range nodes {
		if ctx.Err() != nil {
			break
		}
		n := n.DeepCopy()
		g.Go(func() error {
			if err := c.createReadyNode(ctx, n); err != nil {
				return fmt.Errorf("testkube: node %s: %w", n.Name, err)
			}
			return nil
		})
	}
	return g.Wait()
}

func (c *Cluster) createReadyNode(ctx context.Context, n *corev1.Node) error {
	nodes := c.Client.CoreV1().Nodes()
	status := readyStatus(n.Status)
	n.ResourceVersion = ""
	created, err := nodes.Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	created.Status = status
	updated, err := nodes.UpdateStatus(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	taints := slices.DeleteFunc(slices.Clone(updated.Spec.Taints), func(t corev1.Taint) bool {
		return t.Key == corev1.TaintNodeNotReady
	})
	if len(taints) == len(updated.Spec.Taints) {
		return nil
	}
	updated.Spec.Taints = taints
	if _, err := nodes.Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("remove taint %s: %w", corev1.TaintNodeNotReady, err)
	}
	return nil
}

// readyStatus returns st with condition Ready=True (replacing any Ready condition) and the
// default capacity and allocatable filled in.
func readyStatus(st corev1.NodeStatus) corev1.NodeStatus {
	st = *st.DeepCopy()
	if st.Capacity == nil {
		st.Capacity = corev1.ResourceList{}
	}
	for k, v := range defaultNodeResources {
		if _, ok := st.Capacity[k]; !ok {
			st.Capacity[k] = v.DeepCopy()
		}
	}
	if st.Allocatable == nil {
		st.Allocatable = corev1.ResourceList{}
	}
	for k, v := range st.Capacity {
		if _, ok := st.Allocatable[k]; !ok {
			st.Allocatable[k] = v.DeepCopy()
		}
	}
	now := metav1.NewTime(time.Now())
	st.Conditions = slices.DeleteFunc(st.Conditions, func(c corev1.NodeCondition) bool { return c.Type == corev1.NodeReady })
	st.Conditions = append(st.Conditions, corev1.NodeCondition{
		Type:               corev1.NodeReady,
		Status:             corev1.ConditionTrue,
		Reason:             "KubeletReady",
		Message:            "testkube: ready (no kubelet runs)",
		LastHeartbeatTime:  now,
		LastTransitionTime: now,
	})
	return st
}

// WaitScheduled polls (every 200 ms) the pods names of namespace until every one has
// spec.nodeName, and returns pod name -> node name. When ctx ends first it returns an error
// listing each pod not yet scheduled with the message of its PodScheduled condition (or "not
// found"). No names returns an empty map at once.
func (c *Cluster) WaitScheduled(ctx context.Context, namespace string, names []string) (map[string]string, error) {
	bound := map[string]string{}
	if len(names) == 0 {
		return bound, nil
	}
	var pods map[string]*corev1.Pod
	var listErr error
	list := func(ctx context.Context) {
		l, err := c.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			listErr = err
			return
		}
		listErr = nil
		pods = make(map[string]*corev1.Pod, len(l.Items))
		for i := range l.Items {
			pods[l.Items[i].Name] = &l.Items[i]
		}
	}
	for {
		list(ctx)
		if listErr == nil {
			missing := false
			for _, name := range names {
				if p := pods[name]; p != nil && p.Spec.NodeName != "" {
					bound[name] = p.Spec.NodeName
				} else {
					missing = true
				}
			}
			if !missing {
				return bound, nil
			}
		}
		select {
		case <-ctx.Done():
			// One last look, outside the ended context, for the report.
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			list(final)
			cancel()
			return nil, unscheduledError(ctx.Err(), namespace, names, pods, listErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func unscheduledError(cause error, namespace string, names []string, pods map[string]*corev1.Pod, listErr error) error {
	var lines []string
	for _, name := range names {
		p, ok := pods[name]
		switch {
		case pods == nil:
			lines = append(lines, name+": unknown (list failed)")
		case !ok:
			lines = append(lines, name+": not found")
		case p.Spec.NodeName == "":
			msg := "no PodScheduled condition"
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodScheduled {
					msg = fmt.Sprintf("PodScheduled=%s %s: %s", cond.Status, cond.Reason, cond.Message)
				}
			}
			lines = append(lines, name+": "+msg)
		}
	}
	err := fmt.Errorf("testkube: %d of %d pods in namespace %s not scheduled (%w):\n  %s",
		len(lines), len(names), namespace, cause, strings.Join(lines, "\n  "))
	if listErr != nil {
		err = fmt.Errorf("%w\n  (last list: %v)", err, listErr)
	}
	return err
}
