package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxReviewBytes bounds the AdmissionReview a request may carry (the API server's own limit on
// a request body is 3 MiB).
const MaxReviewBytes = 8 << 20

// The webhooks a Webhook serves (the paths of Handler).
const (
	Mutate   = "mutate"
	Validate = "validate"
)

// templateObject is the part of a workload that holds a pod template: spec.template
// (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job) or spec.jobTemplate.spec.template
// (CronJob).
type templateObject struct {
	Spec struct {
		Template    *corev1.PodTemplateSpec `json:"template"`
		JobTemplate *struct {
			Spec struct {
				Template *corev1.PodTemplateSpec `json:"template"`
			} `json:"spec"`
		} `json:"jobTemplate"`
	} `json:"spec"`
}

// podOf returns the pod spec and metadata an admission request's object holds, and the JSON
// Pointer prefix under which the spec's "spec" and "metadata" are: "" for a Pod,
// "/spec/template" for a template, "/spec/jobTemplate/spec/template" for a CronJob. ok is false
// for objects without one.
func podOf(req *admissionv1.AdmissionRequest) (meta *metav1.ObjectMeta, spec *corev1.PodSpec, prefix string, ok bool, err error) {
	raw := req.Object.Raw
	switch req.Kind.Kind {
	case "Pod":
		var p corev1.Pod
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, nil, "", false, fmt.Errorf("decoding the Pod: %w", err)
		}
		return &p.ObjectMeta, &p.Spec, "", true, nil
	case "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController":
		var o templateObject
		if err := json.Unmarshal(raw, &o); err != nil {
			return nil, nil, "", false, fmt.Errorf("decoding the %s: %w", req.Kind.Kind, err)
		}
		if t := o.Spec.Template; t != nil {
			return &t.ObjectMeta, &t.Spec, "/spec/template", true, nil
		}
		if o.Spec.JobTemplate != nil && o.Spec.JobTemplate.Spec.Template != nil {
			t := o.Spec.JobTemplate.Spec.Template
			return &t.ObjectMeta, &t.Spec, "/spec/jobTemplate/spec/template", true, nil
		}
	}
	return nil, nil, "", false, nil
}

// Review answers one admission request for webhook (Mutate or Validate) within the time budget.
// It never returns nil.
func (w *Webhook) Review(ctx context.Context, webhook string, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, w.opts.Budget)
	defer cancel()
	resp, result := w.review(ctx, webhook, req)
	resp.UID = req.UID
	w.metrics.requests.WithLabelValues(webhook, result).Inc()
	w.metrics.latency.WithLabelValues(webhook).Observe(time.Since(start).Seconds())
	return resp
}

func deny(code int32, msg string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: metav1.StatusReasonForbidden, Message: "compatkit: " + msg}}
}

// decided turns an error of a check into the response the failure policy gives.
func (w *Webhook) decided(err error) (*admissionv1.AdmissionResponse, string) {
	var f *failure
	if errors.As(err, &f) && w.opts.FailOpen {
		return &admissionv1.AdmissionResponse{Allowed: true, Warnings: []string{"compatkit: not checked (failure policy: open): " + f.Error()}}, "error"
	}
	return deny(http.StatusInternalServerError, err.Error()+" (failure policy: closed; the webhook's --fail-open admits such pods)"), "error"
}

func (w *Webhook) review(ctx context.Context, webhook string, req *admissionv1.AdmissionRequest) (*admissionv1.AdmissionResponse, string) {
	allow := &admissionv1.AdmissionResponse{Allowed: true}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return allow, "allowed"
	}
	// The scheduler's pods/binding, and the older bindings resource, which binds just the same.
	if webhook == Validate && req.Kind.Kind == "Binding" && (req.SubResource == "binding" || req.Resource.Resource == "bindings") {
		return w.reviewBinding(ctx, req)
	}
	meta, spec, prefix, ok, err := podOf(req)
	if err != nil {
		return deny(http.StatusBadRequest, err.Error()), "error"
	}
	if !ok {
		return allow, "allowed"
	}
	ns := req.Namespace
	var oldSpec *corev1.PodSpec
	if req.Operation == admissionv1.Update {
		old := *req
		old.Object = req.OldObject
		if _, oldSpec, _, ok, err = podOf(&old); err != nil || !ok {
			oldSpec = nil
		}
	}
	switch webhook {
	case Mutate:
		// An update whose pod template keeps its images and its own affinity is left alone: a
		// label edit must not become a rollout because a spec changed in the registry, and a Job's
		// template cannot change at all.
		if req.Operation == admissionv1.Update && (req.Kind.Kind == "Job" || oldSpec != nil && sameImages(spec, oldSpec) && sameNodeAffinity(spec, oldSpec)) {
			return allow, "allowed"
		}
		m, err := w.mutateSpec(ctx, ns, meta, spec, prefix)
		if err != nil {
			return w.decided(err)
		}
		resp := &admissionv1.AdmissionResponse{Allowed: true, Warnings: m.warnings}
		if len(m.patch) == 0 {
			return resp, "allowed"
		}
		b, err := json.Marshal(m.patch)
		if err != nil {
			return w.decided(err)
		}
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = b, &pt
		return resp, "mutated"
	case Validate:
		if req.Kind.Kind == "Pod" && req.SubResource == "" {
			w.pending.put(meta.UID, spec) // what the binding check reads (by the pod's UID)
		}
		// An update that keeps the images has nothing new to check (labels, status, finalizers:
		// never blocked by a registry).
		if oldSpec != nil && sameImages(spec, oldSpec) {
			return allow, "allowed"
		}
		if why, err := w.checkTrust(ctx, ns, spec); err != nil {
			return w.decided(err)
		} else if why != "" {
			return deny(http.StatusForbidden, why), "denied"
		}
		if req.Kind.Kind != "Pod" {
			return allow, "allowed"
		}
		// A pod bound to a node: at creation (nodeName, a hostname selector, a DaemonSet pod), or
		// a running pod whose images change (an image edit, an ephemeral container).
		node := boundNode(spec)
		if node == "" {
			return allow, "allowed"
		}
		why, err := w.checkNode(ctx, ns, spec, node)
		if err != nil {
			return w.decided(err)
		}
		if why != "" {
			return deny(http.StatusForbidden, why), "denied"
		}
		return allow, "allowed"
	}
	return deny(http.StatusNotFound, "unknown webhook "+webhook), "error"
}

// sameImages reports whether two pod specs run the same images (containers, init and ephemeral
// containers).
func sameImages(a, b *corev1.PodSpec) bool {
	return slices.Equal(specImages(a), specImages(b))
}

// specImages lists the images of every container of spec, in order.
func specImages(spec *corev1.PodSpec) []string {
	var out []string
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		out = append(out, c.Image)
	}
	for _, c := range spec.EphemeralContainers {
		out = append(out, c.Image)
	}
	return out
}

// sameNodeAffinity reports whether two pod specs ask for the same node affinity.
func sameNodeAffinity(a, b *corev1.PodSpec) bool {
	na := func(s *corev1.PodSpec) *corev1.NodeAffinity {
		if s.Affinity == nil {
			return nil
		}
		return s.Affinity.NodeAffinity
	}
	return affinityDigest(na(a)) == affinityDigest(na(b))
}

// reviewBinding checks the node a scheduler binds a pod to (pods/binding): the last point
// before the pod runs, which also covers what the affinity could not express.
func (w *Webhook) reviewBinding(ctx context.Context, req *admissionv1.AdmissionRequest) (*admissionv1.AdmissionResponse, string) {
	var b corev1.Binding
	if err := json.Unmarshal(req.Object.Raw, &b); err != nil {
		return deny(http.StatusBadRequest, "decoding the Binding: "+err.Error()), "error"
	}
	if w.kube == nil || b.Target.Kind != "" && b.Target.Kind != "Node" {
		return &admissionv1.AdmissionResponse{Allowed: true}, "allowed"
	}
	name := req.Name
	if name == "" {
		name = b.Name
	}
	// The pod's spec as this webhook validated its creation (the scheduler's Binding carries the
	// pod's UID), else from the API server.
	spec, ok := w.pending.take(b.UID)
	if !ok {
		pod, err := w.kube.pod(ctx, req.Namespace, name)
		if err != nil {
			return w.decided(&failure{fmt.Errorf("pod %s/%s: %w", req.Namespace, name, err)})
		}
		if b.UID != "" && pod.UID != b.UID {
			return w.decided(&failure{fmt.Errorf("pod %s/%s: the Binding names UID %s, the pod is %s", req.Namespace, name, b.UID, pod.UID)})
		}
		spec = &pod.Spec
	}
	why, err := w.checkNode(ctx, req.Namespace, spec, b.Target.Name)
	if err != nil {
		return w.decided(err)
	}
	if why != "" {
		return deny(http.StatusForbidden, why), "denied"
	}
	return &admissionv1.AdmissionResponse{Allowed: true}, "allowed"
}

// Handler serves the webhooks over HTTP: POST /mutate and /validate take an AdmissionReview
// (admission.k8s.io/v1) and answer one; GET /healthz answers once the process runs, /readyz once
// the nodes are listed (Nodes.Synced).
func (w *Webhook) Handler() http.Handler {
	mux := http.NewServeMux()
	serve := func(webhook string) http.HandlerFunc {
		return func(rw http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				http.Error(rw, "POST an AdmissionReview", http.StatusMethodNotAllowed)
				return
			}
			body, err := io.ReadAll(io.LimitReader(r.Body, MaxReviewBytes+1))
			if err != nil {
				http.Error(rw, "reading the request: "+err.Error(), http.StatusBadRequest)
				return
			}
			if len(body) > MaxReviewBytes {
				http.Error(rw, fmt.Sprintf("AdmissionReview larger than %d bytes", MaxReviewBytes), http.StatusRequestEntityTooLarge)
				return
			}
			var review admissionv1.AdmissionReview
			if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
				http.Error(rw, fmt.Sprintf("not an admission.k8s.io/v1 AdmissionReview with a request: %v", err), http.StatusBadRequest)
				return
			}
			out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: w.Review(r.Context(), webhook, review.Request)}
			rw.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(rw).Encode(out)
		}
	}
	mux.Handle("/"+Mutate, serve(Mutate))
	mux.Handle("/"+Validate, serve(Validate))
	mux.HandleFunc("/healthz", func(rw http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(rw, "ok\n") })
	mux.HandleFunc("/readyz", func(rw http.ResponseWriter, r *http.Request) {
		if !w.nodes.Synced() {
			http.Error(rw, "nodes not listed yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(rw, "ok\n")
	})
	return mux
}
