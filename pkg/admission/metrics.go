package admission

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the webhook's Prometheus metrics (namespace compatkit_admission):
//
//	compatkit_admission_requests_total{webhook, result}        admission requests: allowed, mutated, denied, error
//	compatkit_admission_request_seconds{webhook}               time to answer one request
//	compatkit_admission_images_total{result}                   images looked at: cache_hit, cache_miss, not_allowed, error
//	compatkit_admission_registry_seconds{registry, op, result} registry reads: resolve (a tag), read (tree and specs);
//	                                                            registry is the allowlist pattern that admitted it (bounded cardinality)
//	compatkit_admission_nodes / compatkit_admission_feature_sets   nodes known and the feature sets they form
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	images   *prometheus.CounterVec
	registry *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, nodes *Nodes) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "compatkit", Subsystem: "admission",
			Name: "requests_total", Help: "Admission requests answered, by webhook (mutate, validate) and result (allowed, mutated, denied, error)."},
			[]string{"webhook", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "compatkit", Subsystem: "admission",
			Name: "request_seconds", Help: "Time to answer an admission request.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}},
			[]string{"webhook"}),
		images: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "compatkit", Subsystem: "admission",
			Name: "images_total", Help: "Container images looked at, by result (cache_hit, cache_miss, not_allowed, error)."},
			[]string{"result"}),
		registry: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "compatkit", Subsystem: "admission",
			Name: "registry_seconds", Help: "Registry reads: resolve (a tag to its digest) and read (the tree and specs of a digest), by registry (the --allow-registry pattern that admitted it) and result (ok, error).",
			Buckets: prometheus.DefBuckets},
			[]string{"registry", "op", "result"}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.requests, m.latency, m.images, m.registry)
	if nodes != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "compatkit", Subsystem: "admission",
			Name: "nodes", Help: "Nodes the webhook knows."}, func() float64 { n, _ := nodes.Counts(); return float64(n) }))
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "compatkit", Subsystem: "admission",
			Name: "feature_sets", Help: "Distinct node feature sets (nodes with equal NFD labels share one)."}, func() float64 { _, s := nodes.Counts(); return float64(s) }))
	}
	return m
}

func (m *metrics) observeRegistry(registry, op string, d time.Duration, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.registry.WithLabelValues(registry, op, result).Observe(d.Seconds())
}
