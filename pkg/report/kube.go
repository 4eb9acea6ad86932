package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// Cluster is a Kubernetes API server read with plain list requests (GET with limit and continue,
// JSON), through the HTTP client of a rest.Config (its TLS, credentials and auth plugins): no
// clientset, whose registration of every API group would cost each compat-attach command a
// dozen milliseconds of start-up.
type Cluster struct {
	// Server is the API server's URL, naming the cluster in errors.
	Server string

	hc   *http.Client
	base *url.URL
}

// ConnectCluster returns the Cluster cfg points at (ClusterOptions Server set to its URL).
func ConnectCluster(cfg *rest.Config) (*Cluster, ClusterOptions, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, ClusterOptions{}, fmt.Errorf("cluster %s: %w", cfg.Host, err)
	}
	base, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil, ClusterOptions{}, fmt.Errorf("cluster %s: %w", cfg.Host, err)
	}
	server := strings.TrimSuffix(base.String(), "/")
	return &Cluster{Server: server, hc: hc, base: base}, ClusterOptions{Server: server, NodeFeatures: true}, nil
}

// errNotFound is a 404 of the API server (a resource it does not serve).
var errNotFound = errors.New("not found")

// get GETs path (with query q) and decodes its JSON into out; a 404 wraps errNotFound, another
// answer than 200 is an error with the API server's message.
func (c *Cluster) get(ctx context.Context, path string, q url.Values, out any) error {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var st metav1.Status
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &st) == nil && st.Message != "" {
			msg = st.Message
		}
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("%w: %s", errNotFound, msg)
		}
		return fmt.Errorf("%s (HTTP %d)", msg, resp.StatusCode)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// ClusterOptions says what FromCluster, ClusterImages and ClusterNodes read from a cluster.
type ClusterOptions struct {
	// Namespace limits the pods read to one namespace; "" reads every namespace. Nodes are not
	// namespaced, and NodeFeature objects are read from every namespace.
	Namespace string
	// Selector is a label selector (app=web,tier!=cache) the pods read must match; "" reads all.
	Selector string
	// NodeFeatures reads NFD's NodeFeature objects (NodeFeatureResource) when the cluster serves
	// them; false reads none, and every node's features are rebuilt from its labels.
	NodeFeatures bool
	// Server names the cluster in errors (its API server URL, as ConnectCluster sets it); ""
	// takes the Cluster's.
	Server string
	// SkipImages leaves the pods unread (FromCluster returns no images), for images given
	// otherwise; SkipNodes leaves the nodes unread.
	SkipImages, SkipNodes bool
}

// FromCluster reads the images and nodes of a report from a live cluster: ClusterImages (unless
// opts.SkipImages) and ClusterNodes (unless opts.SkipNodes).
func FromCluster(ctx context.Context, client *Cluster, opts ClusterOptions) (images []Image, nodes []Node, err error) {
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
func ClusterImages(ctx context.Context, client *Cluster, opts ClusterOptions) ([]Image, error) {
	server := clusterServer(client, opts)
	where := "pods"
	if opts.Namespace != "" {
		where += fmt.Sprintf(" in namespace %q", opts.Namespace)
	}
	if opts.Selector != "" {
		where += fmt.Sprintf(" matching %q", opts.Selector)
	}
	var pi podImages
	path := "/api/v1/pods"
	if opts.Namespace != "" {
		path = "/api/v1/namespaces/" + url.PathEscape(opts.Namespace) + "/pods"
	}
	q := url.Values{"limit": {fmt.Sprint(ClusterPageSize)}}
	if opts.Selector != "" {
		q.Set("labelSelector", opts.Selector)
	}
	for {
		var l corev1.PodList
		if err := client.get(ctx, path, q, &l); err != nil {
			return nil, fmt.Errorf("cluster %s: listing %s: %w", server, where, err)
		}
		for i := range l.Items {
			p := &l.Items[i]
			pi.add(p.Namespace, p.Name, containerImages(p.Spec.InitContainers), containerImages(p.Spec.Containers), ephemeralImages(p.Spec.EphemeralContainers))
		}
		if l.Continue == "" {
			break
		}
		q.Set("continue", l.Continue)
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
// labels (NodePlatform). When the cluster serves NFD's NodeFeature objects and opts.NodeFeatures is
// set, a node with NodeFeature objects gets their features instead, as ReadNodes reads `kubectl
// get nodefeatures -A -o json` (host.NodeFromNodeFeature, the objects of one node merged with
// host.MergeNodeFeatures), which have every flag; its platform still comes from its labels when
// the features do not say it. NodeFeature objects of nodes that are not listed are stale and
// skipped, as are those with no features (they only request labels). No node is an error.
func ClusterNodes(ctx context.Context, client *Cluster, opts ClusterOptions) ([]Node, error) {
	server := clusterServer(client, opts)
	var hn []host.Node
	labels := map[string]map[string]string{}
	q := url.Values{"limit": {fmt.Sprint(ClusterPageSize)}}
	for {
		var l corev1.NodeList
		if err := client.get(ctx, "/api/v1/nodes", q, &l); err != nil {
			return nil, fmt.Errorf("cluster %s: listing nodes: %w", server, err)
		}
		for _, n := range l.Items {
			hn = append(hn, host.NodeFromLabels(n.Name, n.Labels))
			labels[n.Name] = n.Labels
		}
		if l.Continue == "" {
			break
		}
		q.Set("continue", l.Continue)
	}
	if len(hn) == 0 {
		return nil, fmt.Errorf("cluster %s: no node", server)
	}
	var nfs []host.Node
	var err error
	if opts.NodeFeatures {
		nfs, err = clusterNodeFeatures(ctx, client, server)
	}
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
// the cluster does not serve them.
func clusterNodeFeatures(ctx context.Context, client *Cluster, server string) ([]host.Node, error) {
	gv := NodeFeatureResource.GroupVersion().String()
	var rl metav1.APIResourceList
	err := client.get(ctx, "/apis/"+gv, nil, &rl)
	switch {
	case errors.Is(err, errNotFound):
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
	q := url.Values{"limit": {fmt.Sprint(ClusterPageSize)}}
	for {
		var l struct {
			Metadata metav1.ListMeta `json:"metadata"`
			Items    []struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
				Spec     struct {
					Features json.RawMessage `json:"features"`
				} `json:"spec"`
			} `json:"items"`
		}
		if err := client.get(ctx, "/apis/"+gv+"/"+NodeFeatureResource.Resource, q, &l); err != nil {
			return nil, fmt.Errorf("cluster %s: listing %s: %w", server, what, err)
		}
		for _, o := range l.Items {
			source := fmt.Sprintf("cluster %s: NodeFeature %s/%s", server, o.Metadata.Namespace, o.Metadata.Name)
			n, ok, err := nodeFeatureNode(o.Metadata.Name, o.Metadata.Labels, o.Spec.Features, source)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, n)
			}
		}
		if l.Metadata.Continue == "" {
			break
		}
		q.Set("continue", l.Metadata.Continue)
	}
	return host.MergeNodeFeatures(out), nil
}

// nodeFeatureNode converts one NodeFeature object (its spec.features JSON); false when it has no
// features (it only requests labels).
func nodeFeatureNode(name string, labels map[string]string, features json.RawMessage, source string) (host.Node, bool, error) {
	if len(features) == 0 || string(features) == "null" {
		return host.Node{}, false, nil
	}
	var sets map[string]json.RawMessage
	if err := json.Unmarshal(features, &sets); err != nil {
		return host.Node{}, false, fmt.Errorf("%s: spec.features: %w", source, err)
	}
	empty := true
	for _, k := range []string{"flags", "attributes", "instances"} {
		var m map[string]json.RawMessage
		if json.Unmarshal(sets[k], &m) == nil && len(m) > 0 {
			empty = false
		}
	}
	if empty {
		return host.Node{}, false, nil
	}
	n, err := host.NodeFromNodeFeature(name, labels, features, source)
	return n, err == nil, err
}

// clusterServer names the cluster in errors: opts.Server, else the Cluster's URL.
func clusterServer(client *Cluster, opts ClusterOptions) string {
	if opts.Server != "" {
		return opts.Server
	}
	return client.Server
}
