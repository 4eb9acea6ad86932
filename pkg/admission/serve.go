package admission

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// WatchNodes feeds nodes from a Node informer (list, then watch) until ctx ends; it returns once
// the initial listing is in (Nodes.Synced), or with ctx's error. Only node labels are kept: the
// informer's transform drops the rest of each Node (status, managed fields), so that a cluster of
// thousands of nodes costs little memory. RBAC: list and watch on nodes.
func WatchNodes(ctx context.Context, client kubernetes.Interface, nodes *Nodes) error {
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(func(obj any) (any, error) {
		if n, ok := obj.(*corev1.Node); ok {
			return &corev1.Node{ObjectMeta: *n.ObjectMeta.DeepCopy()}, nil
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
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("listing nodes: %w", context.Cause(ctx))
	}
	nodes.SetSynced()
	return nil
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
