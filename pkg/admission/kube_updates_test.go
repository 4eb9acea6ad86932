package admission_test

// Review findings on a real kube-apiserver (internal/testkube; no scheduler, no controller
// manager). Each check asserts what the webhook should guarantee and fails on the current code.

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/compatkit/compatkit/internal/testkube"
	"github.com/compatkit/compatkit/pkg/admission"
	"github.com/compatkit/compatkit/pkg/oci"
)

// TestKubernetesUpdates, on a real API server: a binding through the older bindings resource is
// checked like pods/binding; a running pod whose image is changed to one its node cannot run is
// refused; and workload updates that keep their images (a label edit, a Job's metadata, a
// ReplicaSet scaled) are not mutated again, even when a newer spec was attached in between.
func TestKubernetesUpdates(t *testing.T) {
	c := testkube.Start(t, testkube.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFixture(t)
	nodes := admission.NewNodes()
	w, err := admission.New(admission.Options{AllowRegistries: []string{f.reg.Host()}, PlainHTTP: []string{f.reg.Host()},
		PinDigests: true, Kube: c.Config, SpecTTL: time.Second, TagTTL: time.Second}, nodes)
	if err != nil {
		t.Fatal(err)
	}
	if err := admission.WatchNodes(ctx, c.Config, nodes); err != nil {
		t.Fatal(err)
	}
	s := serveWebhook(t, w)
	register(t, c, s, "updates")
	namespace(t, c, "updates", "updates")
	if err := c.CreateReadyNodes(ctx, []*corev1.Node{Node("v3-a", "amd64", "6", V3Flags...), Node("v1-a", "amd64", "6"), Node("old-a", "amd64", "4")}); err != nil {
		t.Fatal(err)
	}
	waitNodes(t, nodes, 3)
	const ns = "updates"

	// A binding through the older "bindings" resource (POST /api/v1/namespaces/NS/bindings) to a
	// node that cannot run the image is refused, as through pods/binding.
	if err := createPod(c, ns, pod("via-bindings", f.ref)); err != nil {
		t.Fatal(err)
	}
	ctl := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "pending", Namespace: ns}, Target: corev1.ObjectReference{Kind: "Node", Name: "old-a"}}
	if err := c.Client.CoreV1().Pods(ns).Bind(ctx, ctl, metav1.CreateOptions{}); err == nil {
		t.Error("control: pods/binding to old-a was admitted")
	}
	b := &corev1.Binding{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Binding"}, ObjectMeta: metav1.ObjectMeta{Name: "via-bindings", Namespace: ns},
		Target: corev1.ObjectReference{Kind: "Node", Name: "old-a"}}
	if err := c.Client.CoreV1().RESTClient().Post().Namespace(ns).Resource("bindings").Body(b).Do(ctx).Error(); err == nil {
		got, _ := c.Client.CoreV1().Pods(ns).Get(ctx, "via-bindings", metav1.GetOptions{})
		t.Errorf("POST .../bindings put the pod on %q, a node that cannot run %s, without the webhook", got.Spec.NodeName, f.ref)
	}

	// A pod's container image is mutable: a pod admitted on v1-a switched to the v3-only image,
	// which v1-a cannot run, is refused.
	up := pod("update-image", f.ref)
	up.Spec.NodeName = "v1-a"
	if err := createPod(c, ns, up); err != nil {
		t.Fatal(err)
	}
	got, err := c.Client.CoreV1().Pods(ns).Get(ctx, "update-image", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got.Spec.Containers[0].Image = f.v3only
	if _, err := c.Client.CoreV1().Pods(ns).Update(ctx, got, metav1.UpdateOptions{}); err == nil {
		t.Errorf("a bound pod's image was changed to %s on v1-a (which cannot run it) without the webhook", f.v3only)
	}

	// Workloads created now; then a newer spec is attached to the image (anyone with push rights
	// can); then metadata-only updates, as users, GitOps tools and the garbage collector
	// (finalizers, ownerReferences) make them: none is mutated again.
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: f.ref}}}}
	d, err := c.Client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Template: tmpl}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The ReplicaSet the Deployment controller would create: the Deployment's (mutated) template.
	rsT := *d.Spec.Template.DeepCopy()
	rsT.Labels["pod-template-hash"] = "abc"
	rs, err := c.Client.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-abc"}, Spec: appsv1.ReplicaSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "pod-template-hash": "abc"}}, Template: rsT}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	jt := *tmpl.DeepCopy()
	jt.Spec.RestartPolicy = corev1.RestartPolicyNever
	job, err := c.Client.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "batch"}, Spec: batchv1.JobSpec{Template: jt}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tg, err := oci.Open(ctx, f.ref, oci.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.PushSpec(ctx, f.img.Manifests[0], kernelAndFlags(50, "v1"), nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // SpecTTL

	// A Job's spec.template is immutable: an update must not try to change it.
	job.Labels = map[string]string{"team": "x"}
	if _, err := c.Client.BatchV1().Jobs(ns).Update(ctx, job, metav1.UpdateOptions{}); err != nil {
		t.Errorf("labelling a Job fails once its image's specs changed (so would the GC's finalizer removal): %v", err)
	}
	// A Deployment's label edit must not change its template (a rollout nobody asked for).
	d.Labels = map[string]string{"team": "x"}
	d2, err := c.Client.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(d.Spec.Template, d2.Spec.Template) {
		t.Errorf("a metadata-only update of the Deployment changed its pod template (a new ReplicaSet, every pod replaced):\nbefore %s\nafter  %s",
			d.Spec.Template.Annotations[admission.AnnotationKey], d2.Spec.Template.Annotations[admission.AnnotationKey])
	}
	// A ReplicaSet scaled by the Deployment controller keeps the Deployment's template
	// (EqualIgnoreHash), or another ReplicaSet would be created again and again.
	two := int32(2)
	rs.Spec.Replicas = &two
	rs2, err := c.Client.AppsV1().ReplicaSets(ns).Update(ctx, rs, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(rs.Spec.Template.Annotations, rs2.Spec.Template.Annotations) || !equality.Semantic.DeepEqual(rs.Spec.Template.Spec.Affinity, rs2.Spec.Template.Spec.Affinity) {
		t.Errorf("scaling a ReplicaSet rewrote its pod template; the Deployment controller no longer recognises it as the Deployment's")
	}
}
