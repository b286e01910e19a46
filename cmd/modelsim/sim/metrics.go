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
// several can run in one test process. The vLLM gauges come from the
// instance's load.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
}

func newMetrics(l *load) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRequests,
			Help: "Inference requests answered, by model (empty when not served), protocol and HTTP status or gRPC code.",
		}, []string{"model_name", "protocol", "code"}),
	}
	m.registry.MustRegister(m.requests, l)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
