package report

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"

	"github.com/compatkit/compatkit/pkg/host"
)

// ClusterPageSize is how many objects ClusterImages and ClusterNodes ask for in one list request;
// they follow the continue token for the rest.
const ClusterPageSize = 500

// NodeFeatureResource is the resource of NFD's NodeFeature objects (nfd.k8s-sigs.io/v1alpha1
// nodefeatures), which ClusterNodes reads when the cluster serves it.
var NodeFeatureResource = nfdv1alpha1.SchemeGroupVersion.WithResource("nodefeatures")

// ClusterOptions says what FromCluster, ClusterImages and ClusterNodes read from a cluster.
type ClusterOptions struct {
	// Namespace limits the pods read to one namespace; "" reads every namespace. Nodes are not
	// namespaced, and NodeFeature objects are read from every namespace.
	Namespace string
	// Selector is a label selector (app=web,tier!=cache) the pods read must match; "" reads all.
	Selector string
	// Dynamic reads NFD's NodeFeature objects (NodeFeatureResource) when the cluster serves them;
	// nil reads none, and every node's features are rebuilt from its labels.
	Dynamic dynamic.Interface
	// Server names the cluster in errors (its API server URL, as ConnectCluster sets it); ""
	// takes the URL of the client's discovery REST client.
	Server string
	// SkipImages leaves the pods unread (FromCluster returns no images), for images given
	// otherwise; SkipNodes leaves the nodes unread.
	SkipImages, SkipNodes bool
}

// ConnectCluster returns a client of the cluster cfg points at, and ClusterOptions whose Dynamic
// (for NodeFeature objects) and Server are set for it.
func ConnectCluster(cfg *rest.Config) (kubernetes.Interface, ClusterOptions, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, ClusterOptions{}, fmt.Errorf("cluster %s: %w", cfg.Host, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, ClusterOptions{}, fmt.Errorf("cluster %s: %w", cfg.Host, err)
	}
	return client, ClusterOptions{Dynamic: dyn, Server: cfg.Host}, nil
}

// FromCluster reads the images and nodes of a report from a live cluster: ClusterImages (unless
// opts.SkipImages) and ClusterNodes (unless opts.SkipNodes).
func FromCluster(ctx context.Context, client kubernetes.Interface, opts ClusterOptions) (images []Image, nodes []Node, err error) {
	if !opts.SkipImages {
		if images, err = ClusterImages(ctx, client, opts); err != nil {
			return nil, nil, err
		}
	}
	if !opts.SkipNodes {
		if nodes, err = ClusterNodes(ctx, client, opts); err != nil {
			return nil, nil, err
		}
	}
	return images, nodes, nil
}

// ClusterImages lists the pods of the cluster (of opts.Namespace, matching opts.Selector), a page
// of ClusterPageSize at a time, and returns their images as ReadImages takes them from `kubectl
// get pods -A -o json`: every init container, container and ephemeral container image, once, in
// the order first used, with the pods ("namespace/name") that use it. No image is an error.
func ClusterImages(ctx context.Context, client kubernetes.Interface, opts ClusterOptions) ([]Image, error) {
	server := clusterServer(client, opts)
	where := "pods"
	if opts.Namespace != "" {
		where += fmt.Sprintf(" in namespace %q", opts.Namespace)
	}
	if opts.Selector != "" {
		where += fmt.Sprintf(" matching %q", opts.Selector)
	}
	var pi podImages
	lo := metav1.ListOptions{LabelSelector: opts.Selector, Limit: ClusterPageSize}
	for {
		l, err := client.CoreV1().Pods(opts.Namespace).List(ctx, lo)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: listing %s: %w", server, where, err)
		}
		for i := range l.Items {
			p := &l.Items[i]
			pi.add(p.Namespace, p.Name, containerImages(p.Spec.InitContainers), containerImages(p.Spec.Containers), ephemeralImages(p.Spec.EphemeralContainers))
		}
		if lo.Continue = l.Continue; lo.Continue == "" {
			break
		}
	}
	if len(pi.out) == 0 {
		return nil, fmt.Errorf("cluster %s: no container image in the %s", server, where)
	}
	return pi.out, nil
}

func containerImages(cs []corev1.Container) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Image
	}
	return out
}

func ephemeralImages(cs []corev1.EphemeralContainer) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Image
	}
	return out
}

// ClusterNodes lists the nodes of the cluster, a page of ClusterPageSize at a time, in name order,
// and returns them as ReadNodes reads `kubectl get nodes -o json`: features rebuilt from NFD's
// labels (host.NodeFromLabels), the platform from the kubernetes.io/os and kubernetes.io/arch
// labels (NodePlatform). When the cluster serves NFD's NodeFeature objects and opts.Dynamic is
// set, a node with NodeFeature objects gets their features instead, as ReadNodes reads `kubectl
// get nodefeatures -A -o json` (host.NodeFromNodeFeature, the objects of one node merged with
// host.MergeNodeFeatures), which have every flag; its platform still comes from its labels when
// the features do not say it. NodeFeature objects of nodes that are not listed are stale and
// skipped, as are those with no features (they only request labels). No node is an error.
func ClusterNodes(ctx context.Context, client kubernetes.Interface, opts ClusterOptions) ([]Node, error) {
	server := clusterServer(client, opts)
	var hn []host.Node
	labels := map[string]map[string]string{}
	lo := metav1.ListOptions{Limit: ClusterPageSize}
	for {
		l, err := client.CoreV1().Nodes().List(ctx, lo)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: listing nodes: %w", server, err)
		}
		for _, n := range l.Items {
			hn = append(hn, host.NodeFromLabels(n.Name, n.Labels))
			labels[n.Name] = n.Labels
		}
		if lo.Continue = l.Continue; lo.Continue == "" {
			break
		}
	}
	if len(hn) == 0 {
		return nil, fmt.Errorf("cluster %s: no node", server)
	}
	nfs, err := clusterNodeFeatures(ctx, client, opts.Dynamic, server)
	if err != nil {
		return nil, err
	}
	byName := map[string]host.Node{}
	for _, n := range nfs {
		byName[n.Name] = n
	}
	for i, n := range hn {
		if nf, ok := byName[n.Name]; ok {
			hn[i] = nf
		}
	}
	return NodesFromHost(hn, labels), nil
}

// clusterNodeFeatures lists the NodeFeature objects of every namespace, merged by node; none when
// dyn is nil or the cluster does not serve them.
func clusterNodeFeatures(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface, server string) ([]host.Node, error) {
	if dyn == nil {
		return nil, nil
	}
	gv := NodeFeatureResource.GroupVersion().String()
	rl, err := client.Discovery().ServerResourcesForGroupVersion(gv)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil // NFD's CRD is not installed
	case err != nil:
		return nil, fmt.Errorf("cluster %s: discovering %s: %w", server, gv, err)
	}
	served := false
	for _, r := range rl.APIResources {
		served = served || r.Name == NodeFeatureResource.Resource
	}
	if !served {
		return nil, nil
	}
	what := NodeFeatureResource.Resource + "." + NodeFeatureResource.Group
	var out []host.Node
	lo := metav1.ListOptions{Limit: ClusterPageSize}
	for {
		l, err := dyn.Resource(NodeFeatureResource).List(ctx, lo)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: listing %s: %w", server, what, err)
		}
		for _, o := range l.Items {
			n, ok, err := nodeFeatureNode(o, fmt.Sprintf("cluster %s: NodeFeature %s/%s", server, o.GetNamespace(), o.GetName()))
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, n)
			}
		}
		if lo.Continue = l.GetContinue(); lo.Continue == "" {
			break
		}
	}
	return host.MergeNodeFeatures(out), nil
}

// nodeFeatureNode converts one NodeFeature object; false when it has no features.
func nodeFeatureNode(o unstructured.Unstructured, source string) (host.Node, bool, error) {
	features, found, err := unstructured.NestedMap(o.Object, "spec", "features")
	if err != nil {
		return host.Node{}, false, fmt.Errorf("%s: spec.features: %w", source, err)
	}
	if !found {
		return host.Node{}, false, nil
	}
	empty := true
	for _, k := range []string{"flags", "attributes", "instances"} {
		if m, ok := features[k].(map[string]any); ok && len(m) > 0 {
			empty = false
		}
	}
	if empty {
		return host.Node{}, false, nil
	}
	j, err := json.Marshal(features)
	if err != nil {
		return host.Node{}, false, fmt.Errorf("%s: spec.features: %w", source, err)
	}
	n, err := host.NodeFromNodeFeature(o.GetName(), o.GetLabels(), j, source)
	return n, err == nil, err
}

// clusterServer names the cluster in errors: opts.Server, else the URL of the client's discovery
// REST client.
func clusterServer(client kubernetes.Interface, opts ClusterOptions) (server string) {
	if opts.Server != "" {
		return opts.Server
	}
	defer func() {
		if recover() != nil { // a client without a REST client (a fake)
			server = "(unknown server)"
		}
	}()
	if rc, ok := client.Discovery().RESTClient().(*rest.RESTClient); ok && rc != nil {
		if u := rc.Get().URL(); u != nil {
			u.Path, u.RawQuery = strings.TrimSuffix(u.Path, "/"), ""
			return u.String()
		}
	}
	return "(unknown server)"
}
