package admission

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
)

// kubeClient reads what the webhook needs of the API server (nodes, NodeFeatures, secrets,
// service accounts, pods) with REST clients over schemes of core/v1 and NFD's v1alpha1 alone:
// client-go's clientset registers every API group and would cost each compat-attach command,
// not only the webhook, a dozen milliseconds of start-up and 50 MB of binary.
type kubeClient struct {
	core *rest.RESTClient // /api/v1
	nfd  *rest.RESTClient // /apis/nfd.k8s-sigs.io/v1alpha1
}

// newKubeClient makes the clients of cfg (QPS 50 and burst 100 unless cfg says otherwise).
func newKubeClient(cfg *rest.Config) (*kubeClient, error) {
	client := func(gv schema.GroupVersion, apiPath string, add func(*runtime.Scheme) error) (*rest.RESTClient, error) {
		s := runtime.NewScheme()
		if err := add(s); err != nil {
			return nil, err
		}
		metav1.AddToGroupVersion(s, gv)
		c := rest.CopyConfig(cfg)
		c.GroupVersion, c.APIPath = &gv, apiPath
		c.NegotiatedSerializer = serializer.NewCodecFactory(s).WithoutConversion()
		c.ContentType = runtime.ContentTypeJSON
		if c.QPS == 0 {
			c.QPS, c.Burst = 50, 100
		}
		if c.UserAgent == "" {
			c.UserAgent = "compatkit-webhook"
		}
		return rest.RESTClientFor(c)
	}
	core, err := client(corev1.SchemeGroupVersion, "/api", corev1.AddToScheme)
	if err != nil {
		return nil, fmt.Errorf("kube client for %s: %w", cfg.Host, err)
	}
	nfd, err := client(nfdv1alpha1.SchemeGroupVersion, "/apis", nfdv1alpha1.AddToScheme)
	if err != nil {
		return nil, fmt.Errorf("kube client for %s: %w", cfg.Host, err)
	}
	return &kubeClient{core: core, nfd: nfd}, nil
}

func (k *kubeClient) secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	var o corev1.Secret
	return &o, k.core.Get().Namespace(ns).Resource("secrets").Name(name).Do(ctx).Into(&o)
}

func (k *kubeClient) serviceAccount(ctx context.Context, ns, name string) (*corev1.ServiceAccount, error) {
	var o corev1.ServiceAccount
	return &o, k.core.Get().Namespace(ns).Resource("serviceaccounts").Name(name).Do(ctx).Into(&o)
}

func (k *kubeClient) pod(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	var o corev1.Pod
	return &o, k.core.Get().Namespace(ns).Resource("pods").Name(name).Do(ctx).Into(&o)
}

// servesNodeFeatures reports whether the API server serves NFD's NodeFeature objects.
func (k *kubeClient) servesNodeFeatures(ctx context.Context) bool {
	var rl metav1.APIResourceList
	raw, err := k.nfd.Get().AbsPath("/apis", NodeFeatureResource.Group, NodeFeatureResource.Version).DoRaw(ctx)
	if err != nil || json.Unmarshal(raw, &rl) != nil {
		return false
	}
	for _, r := range rl.APIResources {
		if r.Name == NodeFeatureResource.Resource {
			return true
		}
	}
	return false
}
