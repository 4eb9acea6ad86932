package admission

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/match"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/signing"
)

// AnnotationKey is the annotation in which the webhook records what it did to a pod or pod
// template (a JSON Record).
const AnnotationKey = "compatkit.dev/admission"

// Options configure a Webhook. The zero value of a field means its default.
type Options struct {
	// Trust is the trust policy (nil: none; the newest spec of each subject counts, as NFD reads
	// it). Under a policy only verified specs make the affinity and the decisions.
	Trust *decide.Trust
	// RequireTrusted rejects, in the validating webhook, a pod with an image that no trusted spec
	// covers (decide.Options.RequireTrusted), and leaves the entries without one out of the
	// affinity. It needs Trust.
	RequireTrusted bool
	// AllowRegistries lists the registries the webhook may contact (the SSRF guard): a host[:port]
	// ("ghcr.io", "registry.internal:5000"), a shell pattern of hosts ("*.example.com"), a
	// repository prefix ending in "/" ("ghcr.io/acme/"), or "*" for any. An image elsewhere is
	// not read: it gets no affinity, is recorded as not checked, and under RequireTrusted is
	// rejected. Empty: no registry is contacted.
	AllowRegistries []string
	// PlainHTTP lists registries (host[:port]) spoken to over HTTP (registries inside the cluster,
	// tests).
	PlainHTTP []string
	// PinDigests replaces each container image tag of a Pod by tag@digest, the digest that was
	// checked, so that what runs is what was checked. Pod templates are not pinned (their pods are,
	// when created), so that a rollout of the same tag still runs a newer push.
	PinDigests bool
	// FailOpen admits a pod when its images cannot be read within the time budget (registry down,
	// timeout, unreadable spec), without their constraint and with a warning; the default,
	// fail closed, rejects it with the reason. It is the webhook's own policy for what it cannot
	// decide; the webhook configurations' failurePolicy is Kubernetes' for when the webhook cannot
	// be reached (deploy/ sets Fail; set Ignore with FailOpen).
	FailOpen bool
	// Budget bounds the time spent on one admission request (default 5s; keep it under the
	// configurations' timeoutSeconds, 10 in deploy/). A read that outlives it continues in the
	// background and serves the next request.
	Budget time.Duration
	// TagTTL is how long a tag's resolution is reused (default 30s); SpecTTL how long an image
	// read by digest (tree, specs, affinity) is reused before its referrers are listed again
	// (default 5m); ErrorTTL how long a failed read is remembered (default 5s).
	TagTTL, SpecTTL, ErrorTTL time.Duration
	// ReadTimeout bounds one image read (default 30s); RequestTimeout each registry answer
	// (default 10s, oci.Session.Timeout).
	ReadTimeout, RequestTimeout time.Duration
	// MaxBytesPerImage bounds what one image read takes from the registry (default 8 MiB);
	// MaxManifestsPerImage the manifests of its index (default 256).
	MaxBytesPerImage     int64
	MaxManifestsPerImage int
	// MaxCachedImages bounds the images kept (default 4096), MaxCacheBytes what they were read from
	// (default 256 MiB; the manifests' bytes are dropped once parsed, so they hold less).
	MaxCachedImages int
	MaxCacheBytes   int64
	// MaxConcurrentReads bounds the registry reads in flight for all requests together (default
	// 64), MaxReadsPerNamespace those for the pods of one namespace (default 8: one namespace
	// cannot starve the others); MaxImagesPerPod the distinct images of one pod that are read
	// (default 64; a pod with more is decided by the failure policy).
	MaxConcurrentReads, MaxReadsPerNamespace, MaxImagesPerPod int
	// Cache is an on-disk content cache shared by the reads (nil: none).
	Cache *oci.Cache
	// HTTPClient sends registry requests (nil: oci.NewGuardedHTTPClient(RequestTimeout), refusing
	// link-local, multicast and unspecified addresses: a registry's redirect or DNS answer never
	// reaches a cloud metadata endpoint such as 169.254.169.254).
	HTTPClient *http.Client
	// Kube is the API server's client configuration: image pull secrets and service accounts are
	// read with it, and the pod of a Binding (nil: anonymous registry access, bindings not
	// checked).
	Kube *rest.Config
	// SecretTTL is how long a pull secret or service account is reused (default 1m).
	SecretTTL time.Duration
	// Registerer receives the Prometheus metrics (nil: not registered).
	Registerer prometheus.Registerer
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Budget, 5*time.Second)
	def(&o.TagTTL, 30*time.Second)
	def(&o.SpecTTL, 5*time.Minute)
	def(&o.ErrorTTL, 5*time.Second)
	def(&o.ReadTimeout, 30*time.Second)
	def(&o.RequestTimeout, 10*time.Second)
	def(&o.SecretTTL, time.Minute)
	if o.MaxBytesPerImage <= 0 {
		o.MaxBytesPerImage = 8 << 20
	}
	if o.MaxManifestsPerImage <= 0 {
		o.MaxManifestsPerImage = 256
	}
	if o.MaxCacheBytes <= 0 {
		o.MaxCacheBytes = 256 << 20
	}
	if o.MaxCachedImages <= 0 {
		o.MaxCachedImages = 4096
	}
	if o.MaxConcurrentReads <= 0 {
		o.MaxConcurrentReads = 64
	}
	if o.MaxReadsPerNamespace <= 0 {
		o.MaxReadsPerNamespace = 8
	}
	if o.MaxImagesPerPod <= 0 {
		o.MaxImagesPerPod = 64
	}
}

func (o *Options) plainHTTP(registry string) bool { return slices.Contains(o.PlainHTTP, registry) }

// Webhook answers Kubernetes admission reviews (admission.k8s.io/v1) for pods and pod templates.
// Mutate adds to each pod (and to the pod template of Deployments, ReplicaSets, StatefulSets,
// DaemonSets, Jobs and CronJobs) the node affinity its images' specs require, ANDed with what it
// already asks for; Validate rejects a pod bound to a node that one of its images cannot run
// on, and under RequireTrusted an image without a trusted spec. It is safe for concurrent use.
type Webhook struct {
	opts    Options
	kube    *kubeClient
	pending pendingPods
	nodes   *Nodes
	images  *images
	secrets *pullSecrets
	metrics *metrics
}

// New returns a Webhook deciding on nodes (fed by WatchNodes, or by the caller).
func New(opts Options, nodes *Nodes) (*Webhook, error) {
	opts.defaults()
	if opts.RequireTrusted && opts.Trust == nil {
		return nil, errors.New("admission: RequireTrusted needs a trust policy (Trust)")
	}
	if nodes == nil {
		nodes = NewNodes()
	}
	m := newMetrics(opts.Registerer, nodes)
	hc := opts.HTTPClient
	if hc == nil {
		hc = oci.NewGuardedHTTPClient(opts.RequestTimeout, refusedAddress)
	}
	w := &Webhook{opts: opts, nodes: nodes, metrics: m}
	w.images = &images{opts: &w.opts, metrics: m, hc: hc, reads: make(chan struct{}, w.opts.MaxConcurrentReads), nsReads: map[string]chan struct{}{},
		tags: map[string]tagEntry{}, byD: map[string]*imageEntry{}}
	if opts.Kube != nil {
		k, err := newKubeClient(opts.Kube)
		if err != nil {
			return nil, err
		}
		w.kube = k
		w.secrets = &pullSecrets{client: k, ttl: opts.SecretTTL}
	}
	return w, nil
}

// Nodes returns the node feature sets the webhook decides on.
func (w *Webhook) Nodes() *Nodes { return w.nodes }

// Record is what the webhook did to a pod or pod template, kept in its AnnotationKey annotation.
type Record struct {
	// Images are the containers' images, each once.
	Images []ImageRecord `json:"images"`
	// Original is the node affinity the object had before the webhook added to it; Applied is a
	// digest of the node affinity the webhook set. When an object comes back with the node
	// affinity still Applied (a pod of a template the webhook mutated, a Deployment updated), the
	// webhook starts again from Original, so that its terms are never stacked or left stale.
	Original *corev1.NodeAffinity `json:"original,omitempty"`
	Applied  string               `json:"applied,omitempty"`
}

// ImageRecord is what the webhook found for one image.
type ImageRecord struct {
	// Image is the reference as the pod gives it (pinned with Options.PinDigests); Digest what it
	// resolved to.
	Image  string `json:"image"`
	Digest string `json:"digest,omitempty"`
	// Specs are the referrers of the specs the affinity was derived from; Verified is true when
	// a trust policy verified every one of them.
	Specs    []string `json:"specs,omitempty"`
	Verified bool     `json:"verified,omitempty"`
	// Omitted counts the expressions the affinity could not express (the validating webhook
	// and the node still decide them).
	Omitted int `json:"omitted,omitempty"`
	// Excluded lists the platforms left out for want of a trusted spec.
	Excluded []string `json:"excluded,omitempty"`
	// Note says why the image adds no constraint ("not checked: ...") when it adds none.
	Note string `json:"note,omitempty"`
}

// looked is one image of a pod as the webhook read it.
type looked struct {
	ref  ImageRef
	info *ImageInfo
	err  error
}

// lookImages reads the distinct images of spec concurrently.
func (w *Webhook) lookImages(ctx context.Context, ns string, spec *corev1.PodSpec) ([]looked, error) {
	var creds credentials.Store
	if w.secrets != nil {
		var err error
		if creds, err = w.secrets.store(ctx, ns, spec); err != nil {
			return nil, err
		}
	}
	var refs []string
	for _, img := range specImages(spec) {
		if !slices.Contains(refs, img) {
			refs = append(refs, img)
		}
	}
	if len(refs) > w.opts.MaxImagesPerPod {
		return nil, fmt.Errorf("the pod names %d distinct images, more than the %d the webhook reads for one pod", len(refs), w.opts.MaxImagesPerPod)
	}
	out := make([]looked, len(refs))
	var wg sync.WaitGroup
	for i, s := range refs {
		r, err := ParseImageRef(s)
		if err != nil {
			out[i] = looked{ref: ImageRef{Given: s}, err: err}
			continue
		}
		wg.Go(func() {
			info, hit, err := w.images.get(ctx, ns, r, creds)
			switch {
			case errors.Is(err, ErrNotAllowed):
				w.metrics.images.WithLabelValues("not_allowed").Inc()
			case err != nil:
				w.metrics.images.WithLabelValues("error").Inc()
			case hit:
				w.metrics.images.WithLabelValues("cache_hit").Inc()
			default:
				w.metrics.images.WithLabelValues("cache_miss").Inc()
			}
			out[i] = looked{ref: r, info: info, err: err}
		})
	}
	wg.Wait()
	return out, nil
}

// failure is an error that the failure policy decides about: the pod is admitted with a warning
// (FailOpen) or rejected.
type failure struct{ err error }

func (f *failure) Error() string { return f.err.Error() }

// mutation is what mutating one pod spec gives.
type mutation struct {
	patch    []patchOp
	warnings []string
}

// patchOp is one RFC 6902 JSON Patch operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// escapePointer escapes a JSON Pointer reference token (RFC 6901).
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// affinityDigest digests a node affinity (nil included).
func affinityDigest(na *corev1.NodeAffinity) string {
	b, _ := json.Marshal(na)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:12])
}

// mutateSpec computes the patch of one pod spec at prefix ("" for a Pod, "/spec/template" for
// a template), meta being the metadata at prefix.
func (w *Webhook) mutateSpec(ctx context.Context, ns string, meta *metav1.ObjectMeta, spec *corev1.PodSpec, prefix string) (*mutation, error) {
	m := &mutation{}
	looks, err := w.lookImages(ctx, ns, spec)
	if err != nil {
		return nil, &failure{err}
	}
	rec := Record{}
	var affs []*match.Affinity
	var preferred []corev1.PreferredSchedulingTerm
	digests := map[string]string{}
	for _, l := range looks {
		ir := ImageRecord{Image: l.ref.Given}
		switch {
		case errors.Is(l.err, ErrNotAllowed):
			ir.Note = "not checked: " + l.err.Error()
		case l.err != nil:
			if !w.opts.FailOpen {
				return nil, &failure{fmt.Errorf("image %s: %w", l.ref.Given, l.err)}
			}
			ir.Note = "not checked: " + l.err.Error()
			m.warnings = append(m.warnings, fmt.Sprintf("compatkit: image %s was not checked (failure policy: open): %v", l.ref.Given, l.err))
		default:
			ir.Digest = l.info.Digest.String()
			digests[l.ref.Given] = l.ref.Pinned(l.info.Digest)
			if w.opts.PinDigests && prefix == "" {
				ir.Image = digests[l.ref.Given] // what runs, as the pod will name it
			}
			if l.info.AffinityErr != nil {
				ir.Note = "no affinity: " + l.info.AffinityErr.Error()
				if !errors.Is(l.info.AffinityErr, signing.ErrNoTrustedSpec) {
					m.warnings = append(m.warnings, fmt.Sprintf("compatkit: image %s: no node affinity: %v", l.ref.Given, l.info.AffinityErr))
				}
				break
			}
			ia := l.info.Affinity
			ir.Verified = len(ia.Specs) > 0
			for _, ss := range ia.Specs {
				ref := l.info.Image.Ref(ss.Referrer)
				if !slices.Contains(ir.Specs, ref) {
					ir.Specs = append(ir.Specs, ref)
				}
				ir.Verified = ir.Verified && ss.Verified
			}
			ir.Omitted, ir.Excluded = len(ia.Affinity.Omitted), ia.Excluded
			if len(ia.Specs) == 0 {
				ir.Note = "no spec"
			}
			affs = append(affs, ia.Affinity)
			preferred = append(preferred, ia.Affinity.NodeAffinity().PreferredDuringSchedulingIgnoredDuringExecution...)
		}
		rec.Images = append(rec.Images, ir)
	}

	// Start from what the object asked for before compatkit added to it: the original recorded
	// in its annotation when compatkit's terms added to that original give, today, exactly the
	// affinity the object has (a pod of a template the webhook mutated, a Deployment updated), else
	// the affinity it has. The annotation is the tenant's to write: an original it forges gives
	// another affinity than the one the object has (a term an earlier webhook added is missing),
	// so it is not used; starting from the affinity the object has can add terms, never drop one.
	var current *corev1.NodeAffinity
	if spec.Affinity != nil {
		current = spec.Affinity.NodeAffinity
	}
	original := current
	na, warnings := combine(current, affs, preferred)
	if old, ok := meta.Annotations[AnnotationKey]; ok {
		var prev Record
		if json.Unmarshal([]byte(old), &prev) == nil && prev.Applied != "" && prev.Applied == affinityDigest(current) {
			if again, w2 := combine(prev.Original, affs, preferred); affinityDigest(again) == affinityDigest(current) {
				original, na, warnings = prev.Original, again, w2
			}
		}
	}
	m.warnings = append(m.warnings, warnings...)
	rec.Original = original
	rec.Applied = affinityDigest(na)

	if !equality.Semantic.DeepEqual(na, current) {
		aff := &corev1.Affinity{}
		if spec.Affinity != nil {
			aff = spec.Affinity.DeepCopy()
		}
		aff.NodeAffinity = na
		m.patch = append(m.patch, patchOp{Op: "add", Path: prefix + "/spec/affinity", Value: aff})
	}
	// Pods are pinned, templates are not: a template pinned to the digest of today would keep a
	// rollout restart or a re-apply of the same tag from ever running a newer push; each pod of it
	// is pinned when created.
	if w.opts.PinDigests && prefix == "" {
		for _, k := range []struct {
			kind string
			cs   []corev1.Container
		}{{"initContainers", spec.InitContainers}, {"containers", spec.Containers}} {
			kind := k.kind
			for i, c := range k.cs {
				if p, ok := digests[c.Image]; ok && p != c.Image {
					m.patch = append(m.patch, patchOp{Op: "replace", Path: fmt.Sprintf("%s/spec/%s/%d/image", prefix, kind, i), Value: p})
				}
			}
		}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	if meta.Annotations == nil {
		m.patch = append(m.patch, patchOp{Op: "add", Path: prefix + "/metadata/annotations", Value: map[string]string{AnnotationKey: string(b)}})
	} else if meta.Annotations[AnnotationKey] != string(b) {
		m.patch = append(m.patch, patchOp{Op: "add", Path: prefix + "/metadata/annotations/" + escapePointer(AnnotationKey), Value: string(b)})
	}
	return m, nil
}

// combine returns the node affinity of original ANDed with the images' affinities affs (their
// product: each of original's terms keeps its requirements; original's terms without any are
// dropped, and a required selector of only such terms, which matches no node, is kept as it is),
// with the images' preferred terms after original's; nil when nothing is required nor preferred.
func combine(original *corev1.NodeAffinity, affs []*match.Affinity, preferred []corev1.PreferredSchedulingTerm) (*corev1.NodeAffinity, []string) {
	var warnings []string
	var origReq *corev1.NodeSelector
	var origPref []corev1.PreferredSchedulingTerm
	if original != nil {
		origReq, origPref = original.RequiredDuringSchedulingIgnoredDuringExecution, original.PreferredDuringSchedulingIgnoredDuringExecution
	}
	na := &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: origReq}
	if base, ok := match.FromNodeSelector(origReq); ok && len(affs) > 0 {
		all, err := match.Intersect(append([]*match.Affinity{base}, affs...)...)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("compatkit: no node affinity added: %v", err))
		} else if req := all.NodeAffinity().RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
			na.RequiredDuringSchedulingIgnoredDuringExecution = req
		}
	}
	// Preferred terms are added, each once: a DaemonSet's pods carry the template's already.
	seen := map[string]bool{}
	for _, p := range slices.Concat(origPref, preferred) {
		k, _ := json.Marshal(p)
		if !seen[string(k)] {
			seen[string(k)] = true
			na.PreferredDuringSchedulingIgnoredDuringExecution = append(na.PreferredDuringSchedulingIgnoredDuringExecution, p)
		}
	}
	if na.RequiredDuringSchedulingIgnoredDuringExecution == nil && len(na.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		return nil, warnings
	}
	return na, warnings
}

// checkNode decides spec's images for the named node: the reason a pod with them must not run
// there ("" when every image may), or a *failure.
func (w *Webhook) checkNode(ctx context.Context, ns string, spec *corev1.PodSpec, node string) (string, error) {
	set, ok := w.nodes.Set(node)
	if !ok {
		return "", &failure{fmt.Errorf("node %s is not known to the webhook (not yet watched, or not a node)", node)}
	}
	looks, err := w.lookImages(ctx, ns, spec)
	if err != nil {
		return "", &failure{err}
	}
	for _, l := range looks {
		if errors.Is(l.err, ErrNotAllowed) {
			continue // trust is checked by checkTrust
		}
		if l.err != nil {
			return "", &failure{fmt.Errorf("image %s: %w", l.ref.Given, l.err)}
		}
		d, err := l.info.Decide(ctx, set, decide.Options{RequireTrusted: w.opts.RequireTrusted})
		if err != nil {
			return "", &failure{fmt.Errorf("image %s on node %s: %w", l.ref.Given, node, err)}
		}
		if d.Selected != nil {
			continue
		}
		if d.Unreadable() {
			return "", &failure{fmt.Errorf("image %s on node %s: %s", l.ref.Given, node, d.Why())}
		}
		return fmt.Sprintf("image %s cannot run on node %s: %s", l.ref.Given, node, d.Why()), nil
	}
	return "", nil
}

// checkTrust returns, under RequireTrusted, why an image of spec has no trusted spec ("" when
// each has one).
func (w *Webhook) checkTrust(ctx context.Context, ns string, spec *corev1.PodSpec) (string, error) {
	if !w.opts.RequireTrusted {
		return "", nil
	}
	looks, err := w.lookImages(ctx, ns, spec)
	if err != nil {
		return "", &failure{err}
	}
	for _, l := range looks {
		switch {
		case errors.Is(l.err, ErrNotAllowed):
			return fmt.Sprintf("image %s has no trusted compatibility spec: %v", l.ref.Given, l.err), nil
		case l.err != nil:
			return "", &failure{fmt.Errorf("image %s: %w", l.ref.Given, l.err)}
		case errors.Is(l.info.AffinityErr, signing.ErrNoTrustedSpec):
			return fmt.Sprintf("image %s has no trusted compatibility spec: %v", l.ref.Given, l.info.AffinityErr), nil
		}
	}
	return "", nil
}

// boundNode returns the node a pod is bound to before scheduling: spec.nodeName, a
// kubernetes.io/hostname node selector, or a required affinity on one node's metadata.name (as the
// DaemonSet controller writes it); "" when none.
func boundNode(spec *corev1.PodSpec) string {
	if spec.NodeName != "" {
		return spec.NodeName
	}
	if h := spec.NodeSelector["kubernetes.io/hostname"]; h != "" {
		return h
	}
	if spec.Affinity == nil || spec.Affinity.NodeAffinity == nil || spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return ""
	}
	terms := spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	node := ""
	for _, t := range terms {
		found := ""
		for _, f := range t.MatchFields {
			if f.Key == "metadata.name" && f.Operator == corev1.NodeSelectorOpIn && len(f.Values) == 1 {
				found = f.Values[0]
			}
		}
		if found == "" || (node != "" && node != found) {
			return ""
		}
		node = found
	}
	return node
}

// pendingPods keeps, by pod UID, what a binding check needs of the pods whose creation the
// validating webhook saw (images, pull secrets, service account), so that checking the
// scheduler's Binding needs no request to the API server. Entries go when their binding is
// checked, after pendingTTL, or the oldest first beyond maxPending. A pod created through another
// replica of the webhook is fetched instead.
type pendingPods struct {
	mu    sync.Mutex
	byUID map[types.UID]pendingPod
	order []types.UID
}

type pendingPod struct {
	spec  *corev1.PodSpec
	added time.Time
}

const (
	pendingTTL = 10 * time.Minute
	maxPending = 100_000
)

func (p *pendingPods) put(uid types.UID, spec *corev1.PodSpec) {
	// A pod updated before it is bound (its images changed) is put again: the latest spec counts.
	if uid == "" {
		return
	}
	keep := &corev1.PodSpec{ServiceAccountName: spec.ServiceAccountName, ImagePullSecrets: spec.ImagePullSecrets}
	for _, c := range spec.InitContainers {
		keep.InitContainers = append(keep.InitContainers, corev1.Container{Name: c.Name, Image: c.Image})
	}
	for _, c := range spec.Containers {
		keep.Containers = append(keep.Containers, corev1.Container{Name: c.Name, Image: c.Image})
	}
	for _, c := range spec.EphemeralContainers {
		keep.EphemeralContainers = append(keep.EphemeralContainers, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: c.Name, Image: c.Image}})
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byUID == nil {
		p.byUID = map[types.UID]pendingPod{}
	}
	for len(p.order) > 0 && (len(p.byUID) >= maxPending || now.Sub(p.byUID[p.order[0]].added) > pendingTTL) {
		delete(p.byUID, p.order[0])
		p.order = p.order[1:]
	}
	if _, ok := p.byUID[uid]; !ok {
		p.order = append(p.order, uid)
	}
	p.byUID[uid] = pendingPod{spec: keep, added: now}
}

func (p *pendingPods) take(uid types.UID) (*corev1.PodSpec, bool) {
	if uid == "" {
		return nil, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.byUID[uid]
	if !ok || time.Since(e.added) > pendingTTL {
		return nil, false
	}
	delete(p.byUID, uid) // its UID stays in order until it comes first; a lookup misses it
	return e.spec, true
}

// refusedAddress is the webhook's guard on the addresses it connects to: link-local (cloud
// metadata endpoints, 169.254.0.0/16 and fe80::/10), multicast and unspecified addresses are never
// registries.
func refusedAddress(ip net.IP) bool {
	return ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified()
}
