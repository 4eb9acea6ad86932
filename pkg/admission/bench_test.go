package admission_test

import (
	"context"
	"encoding/json"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/compatkit/compatkit/pkg/admission"
)

// BenchmarkReview measures one admission review with a warm cache (the image read once before):
// mutate (the affinity of a 3-platform index ANDed into a pod) and validate (a pod bound to a
// node, decided on its feature set).
func BenchmarkReview(b *testing.B) {
	for _, c := range []struct {
		name    string
		webhook string
		node    string
	}{{"mutate", admission.Mutate, ""}, {"validate-bound", admission.Validate, "v1-node"}} {
		b.Run(c.name, func(b *testing.B) {
			f := newFixtureB(b)
			w, err := admission.New(admission.Options{AllowRegistries: []string{f.reg.Host()}, PlainHTTP: []string{f.reg.Host()}}, f.nodes)
			if err != nil {
				b.Fatal(err)
			}
			p := pod("p", f.ref)
			p.Spec.NodeName = c.node
			raw, _ := json.Marshal(p)
			req := &admissionv1.AdmissionRequest{UID: "u", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Operation: admissionv1.Create,
				Namespace: "default", Object: runtime.RawExtension{Raw: raw}}
			if resp := w.Review(context.Background(), c.webhook, req); !resp.Allowed {
				b.Fatal(resp.Result)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				w.Review(context.Background(), c.webhook, req)
			}
		})
	}
}
