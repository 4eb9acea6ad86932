package admission_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/pkg/admission"
	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/host"
	"github.com/compatkit/compatkit/pkg/match"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/signing"
	"github.com/compatkit/compatkit/pkg/spec"
)

// kernelAndFlags requires kernel major > 4 and the cpuid flags, with weight.
func kernelAndFlags(weight int, tag string, flags ...string) *spec.Spec {
	return kernelAboveAndFlags(weight, tag, "4", flags...)
}

// kernelAboveAndFlags requires kernel major > kernel and the cpuid flags, with weight.
func kernelAboveAndFlags(weight int, tag, kernel string, flags ...string) *spec.Spec {
	terms := []spec.FeatureMatcherTerm{{Feature: "kernel.version",
		MatchExpressions: map[string]*spec.MatchExpression{"major": {Op: spec.OpGt, Value: []string{kernel}}}}}
	if len(flags) > 0 {
		exprs := map[string]*spec.MatchExpression{}
		for _, f := range flags {
			exprs[f] = &spec.MatchExpression{Op: spec.OpExists}
		}
		terms = append(terms, spec.FeatureMatcherTerm{Feature: "cpu.cpuid", MatchExpressions: exprs})
	}
	return &spec.Spec{Version: spec.Version, Compatibilities: []spec.Compatibility{{Weight: weight, Tag: tag,
		Rules: []spec.Rule{{Name: "needs " + tag, MatchFeatures: terms}}}}}
}

// V3Flags are the labelled cpuid flags of x86-64-v3 (what a v3 node has).
var V3Flags = func() []string {
	var out []string
	reqs, _ := match.X86LevelRequirements(3)
	for _, r := range reqs {
		out = append(out, strings.TrimPrefix(r.Key, host.NFDLabelPrefix+"cpu-cpuid."))
	}
	return out
}()

// Node returns a node with NFD labels: amd64 unless arch says otherwise, the kernel major
// version, and the cpuid flags.
func Node(name, arch, kernel string, flags ...string) *corev1.Node {
	l := map[string]string{"kubernetes.io/os": "linux", "kubernetes.io/arch": arch, "kubernetes.io/hostname": name,
		host.NFDLabelPrefix + "kernel-version.major": kernel}
	for _, f := range flags {
		l[host.NFDLabelPrefix+"cpu-cpuid."+f] = "true"
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
}

// fixture is a registry with the example image (linux/amd64, linux/amd64/v3, linux/arm64/v8),
// each manifest with a spec: v1 and arm64 need kernel > 4, v3 needs AVX2 too; and an image with
// only a v3 entry.
type fixture struct {
	reg     *testregistry.Registry
	img     testregistry.Image
	ref     string // hello:1.0
	v3only  string // v3only:1.0
	nodes   *admission.Nodes
	specRef map[string]ocispec.Descriptor // platform → spec referrer
}

func newFixture(t *testing.T) *fixture { return newFixtureB(t) }

func newFixtureB(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{reg: testregistry.NewOCI(t), nodes: admission.NewNodes(), specRef: map[string]ocispec.Descriptor{}}
	f.img = testregistry.PushImage(t, f.reg.Host(), "hello", "1.0")
	f.ref = f.reg.Host() + "/hello:1.0"
	tg, err := oci.Open(ctx, f.ref, oci.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range f.img.Manifests {
		p := oci.FormatPlatform(m.Platform)
		s := kernelAndFlags(50, "v1")
		if m.Platform.Variant == "v3" {
			s = kernelAndFlags(90, "v3", "AVX2")
		}
		d, err := tg.PushSpec(ctx, m, s, nil, time.Now().Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		f.specRef[p] = d
	}
	v3 := testregistry.PushShape(t, f.reg.Host(), "v3only", "1.0", testregistry.Shape{Platforms: []ocispec.Platform{testregistry.Platforms[1]}})
	f.v3only = f.reg.Host() + "/v3only:1.0"
	tg3, err := oci.Open(ctx, f.v3only, oci.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg3.PushSpec(ctx, v3.Manifests[0], kernelAndFlags(90, "v3", "AVX2"), nil, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	f.nodes.Upsert(Node("v3-node", "amd64", "6", V3Flags...))
	f.nodes.Upsert(Node("v1-node", "amd64", "6"))
	f.nodes.Upsert(Node("old-node", "amd64", "4"))
	f.nodes.Upsert(Node("arm-node", "arm64", "6"))
	return f
}

func (f *fixture) webhook(t *testing.T, opts admission.Options) *admission.Webhook {
	t.Helper()
	if opts.AllowRegistries == nil {
		opts.AllowRegistries = []string{f.reg.Host()}
	}
	opts.PlainHTTP = append(opts.PlainHTTP, f.reg.Host())
	w, err := admission.New(opts, f.nodes)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func pod(name string, images ...string) *corev1.Pod {
	p := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
	for i, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: img})
	}
	return p
}

// review sends obj to webhook w as a CREATE and returns the response and, for a patch, the object
// patched into out.
func review(t *testing.T, w *admission.Webhook, webhook string, obj runtime.Object, out any) *admissionv1.AdmissionResponse {
	t.Helper()
	return reviewNS(t, w, webhook, "default", obj, out)
}

// reviewIn is review of a request from namespace ns, without the patched object.
func reviewIn(t *testing.T, w *admission.Webhook, webhook, ns string, obj runtime.Object) *admissionv1.AdmissionResponse {
	t.Helper()
	return reviewNS(t, w, webhook, ns, obj, nil)
}

func reviewNS(t *testing.T, w *admission.Webhook, webhook, ns string, obj runtime.Object, out any) *admissionv1.AdmissionResponse {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	req := &admissionv1.AdmissionRequest{UID: types.UID("uid-1"), Kind: metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
		Operation: admissionv1.Create, Namespace: ns, Object: runtime.RawExtension{Raw: raw}}
	resp := w.Review(context.Background(), webhook, req)
	if resp.UID != "uid-1" {
		t.Errorf("response UID %q, want the request's", resp.UID)
	}
	if out != nil {
		patched := raw
		if len(resp.Patch) > 0 {
			p, err := jsonpatch.DecodePatch(resp.Patch)
			if err != nil {
				t.Fatalf("the patch is not RFC 6902: %v\n%s", err, resp.Patch)
			}
			if patched, err = p.Apply(raw); err != nil {
				t.Fatalf("the patch does not apply: %v\n%s", err, resp.Patch)
			}
		}
		if err := json.Unmarshal(patched, out); err != nil {
			t.Fatal(err)
		}
	}
	return resp
}

// matches reports whether a node's labels satisfy the required node affinity, as the scheduler
// evaluates it (In, NotIn, Exists, DoesNotExist, Gt, Lt; matchFields on metadata.name).
func matches(na *corev1.NodeAffinity, n *corev1.Node) bool {
	if na == nil || na.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return true
	}
	for _, term := range na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		if len(term.MatchExpressions)+len(term.MatchFields) == 0 {
			continue
		}
		ok := true
		for _, r := range term.MatchExpressions {
			v, has := n.Labels[r.Key]
			switch r.Operator {
			case corev1.NodeSelectorOpIn:
				ok = ok && has && slices.Contains(r.Values, v)
			case corev1.NodeSelectorOpNotIn:
				ok = ok && !(has && slices.Contains(r.Values, v))
			case corev1.NodeSelectorOpExists:
				ok = ok && has
			case corev1.NodeSelectorOpDoesNotExist:
				ok = ok && !has
			case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
				var a, b int
				_, e1 := fmt.Sscan(v, &a)
				_, e2 := fmt.Sscan(r.Values[0], &b)
				ok = ok && has && e1 == nil && e2 == nil && ((r.Operator == corev1.NodeSelectorOpGt && a > b) || (r.Operator == corev1.NodeSelectorOpLt && a < b))
			}
		}
		for _, r := range term.MatchFields {
			ok = ok && r.Key == "metadata.name" && slices.Contains(r.Values, n.Name)
		}
		if ok {
			return true
		}
	}
	return false
}

func record(t *testing.T, meta metav1.ObjectMeta) admission.Record {
	t.Helper()
	var r admission.Record
	if err := json.Unmarshal([]byte(meta.Annotations[admission.AnnotationKey]), &r); err != nil {
		t.Fatalf("annotation %s: %v (%q)", admission.AnnotationKey, err, meta.Annotations[admission.AnnotationKey])
	}
	return r
}

func TestMutatePod(t *testing.T) {
	f := newFixture(t)
	w := f.webhook(t, admission.Options{PinDigests: true})
	var got corev1.Pod
	resp := review(t, w, admission.Mutate, pod("p", f.ref), &got)
	if !resp.Allowed {
		t.Fatalf("denied: %v", resp.Result)
	}
	na := got.Spec.Affinity.NodeAffinity
	for node, want := range map[string]bool{"v3-node": true, "v1-node": true, "old-node": false, "arm-node": true} {
		n := Node(node, "amd64", "6", V3Flags...)
		switch node {
		case "v1-node":
			n = Node(node, "amd64", "6")
		case "old-node":
			n = Node(node, "amd64", "4")
		case "arm-node":
			n = Node(node, "arm64", "6")
		}
		if matches(na, n) != want {
			t.Errorf("%s: affinity matches = %v, want %v\n%+v", node, !want, want, na.RequiredDuringSchedulingIgnoredDuringExecution)
		}
	}
	// The tag is pinned to the digest that was checked.
	if want := f.ref + "@" + f.img.Index.Digest.String(); got.Spec.Containers[0].Image != want {
		t.Errorf("image %q, want %q", got.Spec.Containers[0].Image, want)
	}
	rec := record(t, got.ObjectMeta)
	if len(rec.Images) != 1 || rec.Images[0].Digest != f.img.Index.Digest.String() || len(rec.Images[0].Specs) != 3 || rec.Images[0].Verified {
		t.Errorf("record: %+v", rec)
	}

	// Idempotent: the mutated pod (a pod of a mutated template) comes back unchanged.
	resp = review(t, w, admission.Mutate, &got, nil)
	if len(resp.Patch) != 0 {
		t.Errorf("second review patched again: %s", resp.Patch)
	}
}

func TestMutateKeepsPodAffinity(t *testing.T) {
	f := newFixture(t)
	w := f.webhook(t, admission.Options{})
	p := pod("p", f.ref)
	zone := corev1.NodeSelectorRequirement{Key: "topology.kubernetes.io/zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}
	p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{zone}}}}},
		PodAntiAffinity: &corev1.PodAntiAffinity{}}
	var got corev1.Pod
	review(t, w, admission.Mutate, p, &got)
	if got.Spec.Affinity.PodAntiAffinity == nil {
		t.Error("pod anti-affinity dropped")
	}
	terms := got.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) == 0 {
		t.Fatal("no terms")
	}
	for _, term := range terms {
		if !slices.ContainsFunc(term.MatchExpressions, func(r corev1.NodeSelectorRequirement) bool { return r.Key == zone.Key }) {
			t.Errorf("a term lost the pod's zone requirement (loosened): %+v", term)
		}
	}
	rec := record(t, got.ObjectMeta)
	if rec.Original == nil || rec.Original.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		t.Errorf("the original affinity is not recorded: %+v", rec)
	}

	// The user edits the image (the template of a Deployment): compatkit's old terms are
	// replaced, not stacked, and the zone stays.
	got.Spec.Containers[0].Image = f.v3only
	var again corev1.Pod
	review(t, w, admission.Mutate, &got, &again)
	v1 := Node("v1-node", "amd64", "6")
	v1.Labels[zone.Key] = "a"
	v3 := Node("v3-node", "amd64", "6", V3Flags...)
	v3.Labels[zone.Key] = "a"
	v3b := Node("v3-node-b", "amd64", "6", V3Flags...)
	v3b.Labels[zone.Key] = "b"
	na := again.Spec.Affinity.NodeAffinity
	if matches(na, v1) || !matches(na, v3) || matches(na, v3b) {
		t.Errorf("after the image change: v1 %v (want false), v3 zone a %v (want true), v3 zone b %v (want false)\n%+v",
			matches(na, v1), matches(na, v3), matches(na, v3b), na.RequiredDuringSchedulingIgnoredDuringExecution)
	}
}

func TestMutateTemplates(t *testing.T) {
	f := newFixture(t)
	w := f.webhook(t, admission.Options{})
	cj := &batchv1.CronJob{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"}, ObjectMeta: metav1.ObjectMeta{Name: "cj", Namespace: "default"}}
	cj.Spec.Schedule = "* * * * *"
	cj.Spec.JobTemplate.Spec.Template.Spec.Containers = []corev1.Container{{Name: "c", Image: f.v3only}}
	var got batchv1.CronJob
	resp := review(t, w, admission.Mutate, cj, &got)
	if !resp.Allowed || len(resp.Patch) == 0 {
		t.Fatalf("allowed %v, patch %s", resp.Allowed, resp.Patch)
	}
	tmpl := got.Spec.JobTemplate.Spec.Template
	if !matches(tmpl.Spec.Affinity.NodeAffinity, Node("v3-node", "amd64", "6", V3Flags...)) || matches(tmpl.Spec.Affinity.NodeAffinity, Node("v1-node", "amd64", "6")) {
		t.Errorf("CronJob template affinity: %+v", tmpl.Spec.Affinity.NodeAffinity)
	}
	if tmpl.Annotations[admission.AnnotationKey] == "" {
		t.Error("no record on the template (the pods would not carry it)")
	}
}

func TestValidateBoundNode(t *testing.T) {
	f := newFixture(t)
	w := f.webhook(t, admission.Options{})
	for _, c := range []struct {
		image, node string
		allowed     bool
		why         string
	}{
		{f.ref, "v1-node", true, ""},
		{f.ref, "v3-node", true, ""},
		{f.ref, "old-node", false, "needs v1"},
		{f.v3only, "v1-node", false, "needs an x86-64-v3 CPU"},
		{f.v3only, "v3-node", true, ""},
		{f.ref, "unknown-node", false, "not known"},
	} {
		p := pod("p", c.image)
		p.Spec.NodeName = c.node
		resp := review(t, w, admission.Validate, p, nil)
		if resp.Allowed != c.allowed {
			t.Errorf("%s on %s: allowed %v, want %v (%v)", c.image, c.node, resp.Allowed, c.allowed, resp.Result)
			continue
		}
		if !c.allowed {
			msg := resp.Result.Message
			if !strings.Contains(msg, c.why) || !strings.Contains(msg, c.node) || (c.node != "unknown-node" && !strings.Contains(msg, c.image)) {
				t.Errorf("%s on %s: message %q should name the image, the node and %q", c.image, c.node, msg, c.why)
			}
		}
	}
	// A DaemonSet pod (bound through matchFields) and a hostname selector are bound too.
	p := pod("ds", f.ref)
	p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"old-node"}}}}}}}}
	if resp := review(t, w, admission.Validate, p, nil); resp.Allowed {
		t.Error("a DaemonSet pod for old-node was admitted")
	}
	p = pod("sel", f.ref)
	p.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": "old-node"}
	if resp := review(t, w, admission.Validate, p, nil); resp.Allowed {
		t.Error("a pod selecting old-node by hostname was admitted")
	}
}

func TestAllowlistAndFailurePolicy(t *testing.T) {
	f := newFixture(t)
	bad := testregistry.NewFailing(t, http.StatusInternalServerError)
	other := "other.invalid:5000/app:1"

	// Not on the allowlist: never contacted, recorded as not checked.
	w := f.webhook(t, admission.Options{})
	var got corev1.Pod
	resp := review(t, w, admission.Mutate, pod("p", other), &got)
	if !resp.Allowed {
		t.Fatalf("denied: %v", resp.Result)
	}
	if rec := record(t, got.ObjectMeta); !strings.Contains(rec.Images[0].Note, "allowlist") {
		t.Errorf("record %+v should say the registry is not allowed", rec)
	}

	// A pod naming more distinct images than the webhook reads for one pod: the failure policy.
	var many []string
	for i := range 65 {
		many = append(many, fmt.Sprintf("%s/app%d:1", f.reg.Host(), i))
	}
	if resp := review(t, w, admission.Mutate, pod("many", many...), nil); resp.Allowed || !strings.Contains(resp.Result.Message, "65 distinct images") {
		t.Errorf("65 images: allowed %v, %v", resp.Allowed, resp.Result)
	}

	// A registry that fails: closed rejects with the reason, open admits with a warning.
	img := bad.Host() + "/app:1"
	closed := f.webhook(t, admission.Options{AllowRegistries: []string{f.reg.Host(), bad.Host()}, PlainHTTP: []string{bad.Host()}})
	resp = review(t, closed, admission.Mutate, pod("p", img), nil)
	if resp.Allowed || !strings.Contains(resp.Result.Message, img) || !strings.Contains(resp.Result.Message, "fail-open") {
		t.Errorf("closed: allowed %v, %v", resp.Allowed, resp.Result)
	}
	open := f.webhook(t, admission.Options{AllowRegistries: []string{f.reg.Host(), bad.Host()}, PlainHTTP: []string{bad.Host()}, FailOpen: true, Budget: 3 * time.Second})
	resp = review(t, open, admission.Mutate, pod("p", img), nil)
	if !resp.Allowed || len(resp.Warnings) == 0 {
		t.Errorf("open: allowed %v, warnings %v", resp.Allowed, resp.Warnings)
	}
}

func TestWarmCacheRequests(t *testing.T) {
	f := newFixture(t)
	w := f.webhook(t, admission.Options{})
	f.reg.Reset()
	review(t, w, admission.Mutate, pod("p1", f.ref), nil)
	cold := len(f.reg.Requests())
	f.reg.Reset()
	for i := range 20 {
		review(t, w, admission.Mutate, pod(fmt.Sprintf("p%d", i), f.ref), nil)
		p := pod("v", f.ref)
		p.Spec.NodeName = "v1-node"
		review(t, w, admission.Validate, p, nil)
	}
	if n := len(f.reg.Requests()); n != 0 {
		t.Errorf("20 pods of a cached image made %d registry requests, want 0:\n%v", n, f.reg.Requests())
	}
	t.Logf("cold: %d requests (%d round trips) for an index of 3 platforms with a spec each", cold, testregistry.Rounds(f.reg.Requests()))
}

func TestParseImageRef(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":         "docker.io/library/nginx:latest",
		"ghcr.io/a/b:1": "ghcr.io/a/b:1",
		"localhost:5000/x@sha256:" + strings.Repeat("a", 64): "localhost:5000/x@sha256:" + strings.Repeat("a", 64),
	} {
		r, err := admission.ParseImageRef(in)
		if err != nil || r.String() != want {
			t.Errorf("ParseImageRef(%q) = %q, %v; want %q", in, r.String(), err, want)
		}
	}
	if _, err := admission.ParseImageRef("bad ref!"); err == nil || !strings.Contains(err.Error(), "bad ref!") {
		t.Errorf("bad reference: %v", err)
	}
}

// signV1 signs the spec of the linux/amd64 manifest of f.ref with a fresh key and returns the
// trust policy of that key.
func (f *fixture) signV1(t *testing.T) *decide.Trust {
	t.Helper()
	ctx := context.Background()
	privPEM, pubPEM, err := signing.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := signing.ParsePrivateKey(privPEM, "test key", func(bool) ([]byte, error) { return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signing.KeySigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := oci.Open(ctx, f.ref, oci.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signing.Sign(ctx, tg, f.img.Manifests[0], f.specRef["linux/amd64"], nil, signer, signing.SignOptions{}); err != nil {
		t.Fatal(err)
	}
	v, err := (&signing.Policy{Keys: []signing.PolicyKey{{PEM: string(pubPEM)}}}).Compile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &decide.Trust{Verifier: v}
}

func TestRequireTrusted(t *testing.T) {
	f := newFixture(t)
	w := f.webhook(t, admission.Options{Trust: f.signV1(t), RequireTrusted: true})
	if resp := review(t, w, admission.Validate, pod("p", f.v3only), nil); resp.Allowed || !strings.Contains(resp.Result.Message, "no trusted compatibility spec") {
		t.Errorf("unsigned image: allowed %v, %v", resp.Allowed, resp.Result)
	}
	if resp := review(t, w, admission.Validate, pod("p", "elsewhere.invalid/app:1"), nil); resp.Allowed || !strings.Contains(resp.Result.Message, "allowlist") {
		t.Errorf("image outside the allowlist: allowed %v, %v", resp.Allowed, resp.Result)
	}
	var got corev1.Pod
	if resp := review(t, w, admission.Mutate, pod("p", f.ref), &got); !resp.Allowed {
		t.Fatalf("signed image: %v", resp.Result)
	}
	na := got.Spec.Affinity.NodeAffinity
	// Only the signed linux/amd64 entry counts: arm64 nodes are out, v1 and v3 nodes in.
	if !matches(na, Node("v1", "amd64", "6")) || matches(na, Node("arm", "arm64", "6")) || matches(na, Node("old", "amd64", "4")) {
		t.Errorf("affinity under the policy: %+v", na.RequiredDuringSchedulingIgnoredDuringExecution)
	}
	p := pod("p", f.ref)
	p.Spec.NodeName = "v3-node"
	if resp := review(t, w, admission.Validate, p, nil); !resp.Allowed {
		t.Errorf("the signed v1 build on a v3 node: %v", resp.Result)
	}
}

// TestRefusedAddresses: a registry on the allowlist that redirects to a cloud metadata endpoint
// does not get the webhook to connect there.
func TestRefusedAddresses(t *testing.T) {
	f := newFixture(t)
	f.reg.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/manifests/") {
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusTemporaryRedirect)
			return true
		}
		return false
	})
	w := f.webhook(t, admission.Options{Budget: 3 * time.Second})
	resp := review(t, w, admission.Mutate, pod("p", f.ref), nil)
	if resp.Allowed || !strings.Contains(resp.Result.Message, "169.254.169.254:80 is not allowed") {
		t.Errorf("redirect to the metadata endpoint: allowed %v, %v", resp.Allowed, resp.Result)
	}
}
