package sim

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/inferxds/inferxds/cmd/modelsim/oip"
)

const testModel = "llama-2-7b"

// startServer starts a real instance on 127.0.0.1 ports; cfg's zero fields get
// an id, one model and free ports.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.ID == "" {
		cfg.ID = "inst-a"
	}
	if cfg.Models == nil {
		cfg.Models = []string{testModel}
	}
	cfg.HTTPAddress, cfg.GRPCAddress = "127.0.0.1:0", "127.0.0.1:0"
	s, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func httpClient(t *testing.T) *http.Client {
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	return &http.Client{Transport: transport, Timeout: 10 * time.Second}
}

func dial(t *testing.T, s *Server) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(s.Ready().GRPCAddress, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func oipClient(t *testing.T, s *Server) oip.GRPCInferenceServiceClient {
	return oip.NewGRPCInferenceServiceClient(dial(t, s))
}

// predictStatus is the HTTP status of one predict call (200 on success).
func predictStatus(t *testing.T, c *http.Client, s *Server, model string) int {
	t.Helper()
	_, err := Predict(testContext(t), c, s.Ready().HTTPAddress, model, "hi")
	var se *StatusError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &se):
		return se.Code
	default:
		t.Fatalf("predict: %v", err)
		return 0
	}
}

func getStatus(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func postStatus(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Post(url, "", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// scrapeGauges reads /metrics over HTTP and returns the value of each sample
// of the named gauge by its model_name label.
func scrapeGauges(t *testing.T, c *http.Client, s *Server, name string) map[string]float64 {
	t.Helper()
	return scrapeLabelled(t, c, s, name, "model_name")
}

// scrapeLabelled reads /metrics over HTTP and returns the value of each
// sample of the named gauge by its label; a sample without it is under "".
func scrapeLabelled(t *testing.T, c *http.Client, s *Server, name, label string) map[string]float64 {
	t.Helper()
	resp, err := c.Get("http://" + s.Ready().HTTPAddress + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	values := map[string]float64{}
	for _, m := range families[name].GetMetric() {
		key := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				key = l.GetValue()
			}
		}
		values[key] = m.GetGauge().GetValue()
	}
	return values
}
