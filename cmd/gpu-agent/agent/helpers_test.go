package agent_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/inferxds/inferxds/cmd/gpu-agent/agent"
	"github.com/inferxds/inferxds/cmd/gpu-agent/agent/nvmlmock"
)

const testHostname = "node-a"

// dcgmReadings are the dcgm metrics read from a GPU on every scrape (the
// XID gauge comes from events instead).
var dcgmReadings = []string{
	"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_MEM_COPY_UTIL",
	"DCGM_FI_DEV_FB_TOTAL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE",
	"DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE",
	"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
	"DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL",
}

// startAgent runs an agent on m behind a real HTTP server on 127.0.0.1 and
// closes both when the test ends.
func startAgent(t *testing.T, m *nvmlmock.Machine) (*agent.Agent, string) {
	t.Helper()
	a, err := agent.Start(t.Context(), agent.Config{
		NVML:           m.NVML(),
		Hostname:       testHostname,
		XIDPollTimeout: 20 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		srv.Close()
		if err := a.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return a, srv.URL
}

// scrape is one /metrics page parsed by expfmt.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, baseURL string) scrape {
	t.Helper()
	resp, err := http.Get(baseURL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// series are the metrics of family name whose labels include want.
func (s scrape) series(name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range s[name].GetMetric() {
		if hasLabels(m, want) {
			out = append(out, m)
		}
	}
	return out
}

// gpuValue is the value of family name for GPU index, and false when the
// GPU has no such series.
func (s scrape) gpuValue(t *testing.T, name string, index int) (float64, bool) {
	t.Helper()
	found := s.series(name, map[string]string{"gpu": strconv.Itoa(index)})
	switch len(found) {
	case 0:
		return 0, false
	case 1:
		return value(found[0]), true
	default:
		t.Fatalf("%s: %d series for GPU %d, want one", name, len(found), index)
		return 0, false
	}
}

func (s scrape) mustGPUValue(t *testing.T, name string, index int) float64 {
	t.Helper()
	v, ok := s.gpuValue(t, name, index)
	if !ok {
		t.Fatalf("%s: no series for GPU %d", name, index)
	}
	return v
}

func value(m *dto.Metric) float64 {
	if m.Counter != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := labelMap(m)
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// waitForGPUValue scrapes until family name shows want for GPU index, for
// up to 5 s: XIDs reach the metrics through the watcher goroutine.
func waitForGPUValue(t *testing.T, baseURL, name string, index int, want float64) scrape {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s := scrapeMetrics(t, baseURL)
		if got, ok := s.gpuValue(t, name, index); ok && got == want {
			return s
		}
		select {
		case <-ctx.Done():
			got, ok := s.gpuValue(t, name, index)
			t.Fatalf("%s for GPU %d: got %v (present %v), want %v within 5s", name, index, got, ok, want)
		case <-tick.C:
		}
	}
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
