package telemetry

import (
	"fmt"
	"io"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Series is one exposed value and its labels.
type Series struct {
	Labels map[string]string
	Value  float64
}

// Metrics are one scrape's counters, gauges and untyped values by metric
// name; summaries and histograms are left out.
type Metrics map[string][]Series

// Sample is the latest good scrape of a target.
type Sample struct {
	At      time.Time // when the scrape's response was read
	Metrics Metrics
}

// Samples are the latest good scrapes by target URL.
type Samples map[string]Sample

// ParseText reads the Prometheus text exposition format. Names are parsed
// under UTF-8 rules, which also accept the legacy names with ':' that vLLM
// uses (vllm:num_requests_running).
func ParseText(r io.Reader) (Metrics, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("metrics text: %w", err)
	}
	out := make(Metrics, len(families))
	for name, family := range families {
		for _, m := range family.GetMetric() {
			if v, ok := value(family.GetType(), m); ok {
				out[name] = append(out[name], Series{Labels: labels(m), Value: v})
			}
		}
	}
	return out, nil
}

func value(t dto.MetricType, m *dto.Metric) (float64, bool) {
	switch t {
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue(), true
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue(), true
	case dto.MetricType_UNTYPED:
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}

func labels(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}
