// Package admission is compatkit's Kubernetes admission webhook: it keeps pods off nodes that
// cannot run their images, deciding with pkg/decide on the features NFD labels nodes with.
//
// The mutating webhook (Webhook.Review with Mutate) adds to each Pod, and to the pod template of
// Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs and CronJobs, a required node affinity
// derived from its images' specs (decide.Image.Affinity, as `compat-attach affinity` prints it),
// ANDed with what the pod already asks for (match.Intersect: never loosened), plus preferred terms
// from the compatibility sets' weights, and records what it did in the compatkit.dev/admission
// annotation (Record: digests, spec referrers, verification, the original affinity). With
// Options.PinDigests each image tag is pinned to the digest that was checked.
//
// The validating webhook rejects a pod bound to a node before scheduling (spec.nodeName, a
// kubernetes.io/hostname selector, a DaemonSet pod's node) and a scheduler's pods/binding to a node
// that one of its images cannot run on, with the image, the node and the failing rule; under
// Options.RequireTrusted it also rejects an image that no trusted spec covers.
//
// Nodes, and NFD's NodeFeature objects when the cluster serves them, are watched with informers
// (WatchNodes) and de-duplicated into feature sets (Nodes):
// decisions are made once per image digest and feature set. Images are read from the registries
// of an allowlist only (Options.AllowRegistries), with the pod's image pull secrets and its
// service account's; a tag's resolution is reused for Options.TagTTL and an image's tree and specs
// for Options.SpecTTL. Each request has a time budget (Options.Budget); what cannot be read in it
// is decided by the failure policy (Options.FailOpen). Metrics are Prometheus'.
package admission
