package sim

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric names the simulator exposes. The vllm: gauges carry the names and
// the model_name label vLLM uses, so load-aware code can be tested on them.
const (
	MetricRequests        = "modelsim_requests_total"
	MetricRequestsRunning = "vllm:num_requests_running"
	MetricRequestsWaiting = "vllm:num_requests_waiting"
	MetricKVCacheUsage    = "vllm:kv_cache_usage_perc"
)

// metrics is one instance's Prometheus registry; each Server has its own so
// several can run in one test process.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	running  *prometheus.GaugeVec
	waiting  *prometheus.GaugeVec
	kvCache  *prometheus.GaugeVec
}

func newMetrics(models []string) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRequests,
			Help: "Inference requests answered, by model (empty when not served), protocol and HTTP status or gRPC code.",
		}, []string{"model_name", "protocol", "code"}),
		running: modelGauge(MetricRequestsRunning, "Requests holding a concurrency slot (in flight)."),
		waiting: modelGauge(MetricRequestsWaiting, "Requests waiting for a concurrency slot."),
		kvCache: modelGauge(MetricKVCacheUsage, "Stand-in for KV-cache use: running requests / max concurrency (1 = full)."),
	}
	m.registry.MustRegister(m.requests, m.running, m.waiting, m.kvCache)
	for _, model := range models {
		m.running.WithLabelValues(model)
		m.waiting.WithLabelValues(model)
		m.kvCache.WithLabelValues(model)
	}
	return m
}

func modelGauge(name, help string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"model_name"})
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
