package admission

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/compatkit/compatkit/pkg/host"
)

// NodeFeatureResource is NFD's NodeFeature resource (nfd.k8s-sigs.io/v1alpha1 nodefeatures).
var NodeFeatureResource = schema.GroupVersionResource{Group: "nfd.k8s-sigs.io", Version: "v1alpha1", Resource: "nodefeatures"}

// WatchNodes feeds nodes from a Node informer (list, then watch) and, when dyn is not nil and the
// cluster serves NFD's NodeFeature objects, from a NodeFeature informer too, until ctx ends; it
// returns once the initial listings are in (Nodes.Synced), or with ctx's error. Of a Node only its
// labels are kept (the informer's transform drops status and managed fields), so that thousands
// of nodes cost little memory. RBAC: list and watch on nodes, and on nodefeatures.nfd.k8s-sigs.io
// when NFD is installed. A NodeFeature CRD installed after the start is not seen until a restart.
func WatchNodes(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface, nodes *Nodes) error {
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(func(obj any) (any, error) {
		if n, ok := obj.(*corev1.Node); ok {
			return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: n.Labels, ResourceVersion: n.ResourceVersion}}, nil
		}
		return obj, nil
	}))
	inf := f.Core().V1().Nodes().Informer()
	upsert := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok {
			nodes.Upsert(n)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    upsert,
		UpdateFunc: func(_, obj any) { upsert(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if n, ok := obj.(*corev1.Node); ok {
				nodes.Delete(n.Name)
			}
		},
	}); err != nil {
		return err
	}
	synced := []cache.InformerSynced{inf.HasSynced}
	if dyn != nil && servesNodeFeatures(client) {
		// The informer keeps a stub of each NodeFeature: its features are parsed once, in the
		// transform, and kept by Nodes under the digest of their content (Intern), so that NFD's
		// thousands of kernel.config elements per node are held once per distinct content.
		df := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, metav1.NamespaceAll, nil)
		nfi := df.ForResource(NodeFeatureResource).Informer()
		if err := nfi.SetTransform(func(obj any) (any, error) {
			u, ok := obj.(*unstructured.Unstructured)
			if !ok {
				return obj, nil
			}
			stub := &unstructured.Unstructured{}
			stub.SetAPIVersion(u.GetAPIVersion())
			stub.SetKind(u.GetKind())
			stub.SetNamespace(u.GetNamespace())
			stub.SetName(u.GetName())
			stub.SetUID(u.GetUID())
			stub.SetResourceVersion(u.GetResourceVersion())
			key := u.GetNamespace() + "/" + u.GetName()
			features, found, _ := unstructured.NestedMap(u.Object, "spec", "features")
			if !found {
				return stub, nil
			}
			j, err := json.Marshal(features)
			if err != nil {
				return stub, nil
			}
			n, err := host.NodeFromNodeFeature(u.GetName(), u.GetLabels(), j, "NodeFeature "+key)
			if err != nil || n.Features == nil || (len(n.Features.Flags) == 0 && len(n.Features.Attributes) == 0 && len(n.Features.Instances) == 0) {
				return stub, nil // unreadable or only labels: the node's labels decide
			}
			stub.SetAnnotations(map[string]string{nodeAnnotation: n.Name, featuresAnnotation: nodes.Intern(n.Features)})
			return stub, nil
		}); err != nil {
			return err
		}
		upsertNF := func(obj any) {
			u, ok := obj.(*unstructured.Unstructured)
			if !ok {
				return
			}
			key := u.GetNamespace() + "/" + u.GetName()
			a := u.GetAnnotations()
			f, ok := nodes.Interned(a[featuresAnnotation])
			if !ok {
				nodes.DeleteNodeFeature(key)
				return
			}
			nodes.UpsertNodeFeature(key, host.Node{Name: a[nodeAnnotation], Features: f})
		}
		if _, err := nfi.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    upsertNF,
			UpdateFunc: func(_, obj any) { upsertNF(obj) },
			DeleteFunc: func(obj any) {
				if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
					obj = t.Obj
				}
				if u, ok := obj.(*unstructured.Unstructured); ok {
					nodes.DeleteNodeFeature(u.GetNamespace() + "/" + u.GetName())
				}
			},
		}); err != nil {
			return err
		}
		df.Start(ctx.Done())
		synced = append(synced, nfi.HasSynced)
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("listing nodes: %w", context.Cause(ctx))
	}
	nodes.SetSynced()
	return nil
}

// The annotations of the NodeFeature stubs WatchNodes's informer keeps: the node the object is
// of, and the digest of its features (Nodes.Intern).
const (
	nodeAnnotation     = "compatkit.dev/node"
	featuresAnnotation = "compatkit.dev/features"
)

// servesNodeFeatures reports whether the API server serves NFD's NodeFeature objects.
func servesNodeFeatures(client kubernetes.Interface) bool {
	rl, err := client.Discovery().ServerResourcesForGroupVersion(NodeFeatureResource.GroupVersion().String())
	if err != nil {
		return false
	}
	for _, r := range rl.APIResources {
		if r.Name == NodeFeatureResource.Resource {
			return true
		}
	}
	return false
}

// CertReloader serves a TLS certificate and key from files and reloads them when either file
// changes (checked at most once a second, on a handshake): cert-manager and kubelet secret
// updates rotate the certificate without a restart. A file that fails to load keeps the previous
// certificate in use.
type CertReloader struct {
	CertFile, KeyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string
	checked time.Time
}

// NewCertReloader loads the pair once; the error names the files.
func NewCertReloader(certFile, keyFile string) (*CertReloader, error) {
	r := &CertReloader{CertFile: certFile, KeyFile: keyFile}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *CertReloader) fileStamp() string {
	s := ""
	for _, f := range []string{r.CertFile, r.KeyFile} {
		if fi, err := os.Stat(f); err == nil {
			s += fmt.Sprintf("%d.%d;", fi.ModTime().UnixNano(), fi.Size())
		}
	}
	return s
}

func (r *CertReloader) load() error {
	stamp := r.fileStamp()
	c, err := tls.LoadX509KeyPair(r.CertFile, r.KeyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s and key %s: %w", r.CertFile, r.KeyFile, err)
	}
	r.cert, r.stamp = &c, stamp
	return nil
}

// GetCertificate is tls.Config.GetCertificate.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= time.Second {
		r.checked = time.Now()
		if r.fileStamp() != r.stamp {
			_ = r.load() // on error the previous certificate stays
		}
	}
	return r.cert, nil
}
