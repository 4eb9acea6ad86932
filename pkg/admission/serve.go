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
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"

	"github.com/compatkit/compatkit/pkg/host"
)

// NodeFeatureResource is NFD's NodeFeature resource (nfd.k8s-sigs.io/v1alpha1 nodefeatures).
var NodeFeatureResource = nfdv1alpha1.SchemeGroupVersion.WithResource("nodefeatures")

// WatchNodes feeds nodes from an informer on the Nodes of the cluster cfg points at (list, then
// watch) and, when the cluster serves NFD's NodeFeature objects, from one on those too, until ctx
// ends; it returns once the initial listings are in (Nodes.Synced), or with ctx's error. Of a
// Node only its labels are kept, of a NodeFeature a stub (its features are parsed once and kept
// by Nodes, equal contents once: Nodes.Intern), so that thousands of nodes cost little memory.
// RBAC: list and watch on nodes, and on nodefeatures.nfd.k8s-sigs.io when NFD is installed. A
// NodeFeature CRD installed after the start is not seen until a restart.
func WatchNodes(ctx context.Context, cfg *rest.Config, nodes *Nodes) error {
	k, err := newKubeClient(cfg)
	if err != nil {
		return err
	}
	inf := cache.NewSharedIndexInformer(cache.NewListWatchFromClient(k.core, "nodes", metav1.NamespaceAll, fields.Everything()),
		&corev1.Node{}, 0, cache.Indexers{})
	if err := inf.SetTransform(func(obj any) (any, error) {
		if n, ok := obj.(*corev1.Node); ok {
			return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: n.Labels, ResourceVersion: n.ResourceVersion}}, nil
		}
		return obj, nil
	}); err != nil {
		return err
	}
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
	go inf.Run(ctx.Done())
	if k.servesNodeFeatures(ctx) {
		nfi := cache.NewSharedIndexInformer(cache.NewListWatchFromClient(k.nfd, NodeFeatureResource.Resource, metav1.NamespaceAll, fields.Everything()),
			&nfdv1alpha1.NodeFeature{}, 0, cache.Indexers{})
		if err := nfi.SetTransform(func(obj any) (any, error) {
			o, ok := obj.(*nfdv1alpha1.NodeFeature)
			if !ok {
				return obj, nil
			}
			stub := &nfdv1alpha1.NodeFeature{ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name, UID: o.UID, ResourceVersion: o.ResourceVersion}}
			f := &o.Spec.Features
			if len(f.Flags) == 0 && len(f.Attributes) == 0 && len(f.Instances) == 0 {
				return stub, nil // only labels: the node's labels decide
			}
			j, err := json.Marshal(f)
			if err != nil {
				return stub, nil
			}
			n, err := host.NodeFromNodeFeature(o.Name, o.Labels, j, "NodeFeature "+o.Namespace+"/"+o.Name)
			if err != nil || n.Features == nil {
				return stub, nil
			}
			stub.Annotations = map[string]string{nodeAnnotation: n.Name, featuresAnnotation: nodes.Intern(n.Features)}
			return stub, nil
		}); err != nil {
			return err
		}
		upsertNF := func(obj any) {
			o, ok := obj.(*nfdv1alpha1.NodeFeature)
			if !ok {
				return
			}
			key := o.Namespace + "/" + o.Name
			f, ok := nodes.Interned(o.Annotations[featuresAnnotation])
			if !ok {
				nodes.DeleteNodeFeature(key)
				return
			}
			nodes.UpsertNodeFeature(key, host.Node{Name: o.Annotations[nodeAnnotation], Features: f})
		}
		if _, err := nfi.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    upsertNF,
			UpdateFunc: func(_, obj any) { upsertNF(obj) },
			DeleteFunc: func(obj any) {
				if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
					obj = t.Obj
				}
				if o, ok := obj.(*nfdv1alpha1.NodeFeature); ok {
					nodes.DeleteNodeFeature(o.Namespace + "/" + o.Name)
				}
			},
		}); err != nil {
			return err
		}
		go nfi.Run(ctx.Done())
		synced = append(synced, nfi.HasSynced)
	}
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
