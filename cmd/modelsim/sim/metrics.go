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
	MetricSleeping        = "modelsim_sleeping"
	MetricCheckpoint      = "modelsim_checkpoint_timestamp_seconds"
)

// metrics is one instance's Prometheus registry; each Server has its own so
// several can run in one test process. The vLLM gauges come from the
// instance's load.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
}

func newMetrics(l *load, life *lifecycle, cp *Checkpoint) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRequests,
			Help: "Inference requests answered, by model (empty when not served), protocol and HTTP status or gRPC code.",
		}, []string{"model_name", "protocol", "code"}),
	}
	m.registry.MustRegister(m.requests, l, sleepingGauge(life))
	if cp != nil {
		m.registry.MustRegister(checkpointGauge(*cp))
	}
	return m
}

func sleepingGauge(life *lifecycle) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: MetricSleeping,
		Help: "1 while the instance is asleep (also while waking up), else 0.",
	}, func() float64 {
		if life.sleeping() {
			return 1
		}
		return 0
	})
}

func checkpointGauge(cp Checkpoint) prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricCheckpoint,
		Help: "When the checkpoint the instance serves was saved, in Unix seconds.",
	}, []string{"checkpoint"})
	g.WithLabelValues(cp.ID).Set(float64(cp.Time.UnixNano()) / 1e9)
	return g
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
