package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/inferxds/inferxds/cmd/modelsim/oip"
	"github.com/inferxds/inferxds/cmd/modelsim/sim"
	"github.com/inferxds/inferxds/snapshot"
)

// oneWorker runs Envoy with a single worker thread: one connection pool per
// cluster, so circuit-breaker and retry counts are exact rather than spread
// over the workers of a 2-core machine.
var oneWorker = []string{"--concurrency", "1"}

// envoyReply is what a client saw of one HTTP request through Envoy.
type envoyReply struct {
	status int
	// instance is the modelsim that answered (empty for Envoy's own replies).
	instance string
	// overloaded is Envoy's x-envoy-overloaded mark on a circuit-breaker reply.
	overloaded bool
	body       string
	header     http.Header
}

// predictPath is modelsim's HTTP predict path for model, which is also the
// model's default route prefix.
func predictPath(model string) string {
	return "/v1/models/" + model + "/predict"
}

// send POSTs a predict body to path on Envoy's listener with the given
// header name/value pairs.
func (e *envoyProxy) send(path string, headers ...string) (envoyReply, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+e.listenAddress+path, strings.NewReader(`{"input":"hello"}`))
	if err != nil {
		return envoyReply{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return envoyReply{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return envoyReply{
		status:     resp.StatusCode,
		instance:   resp.Header.Get(sim.HeaderInstance),
		overloaded: resp.Header.Get("x-envoy-overloaded") == "true",
		body:       strings.TrimSpace(string(body)),
		header:     resp.Header,
	}, nil
}

// answered returns the id of the instance that answered, or an error for
// anything but a 200.
func (r envoyReply) answered() (string, error) {
	if r.status != http.StatusOK {
		return "", fmt.Errorf("HTTP %d: %s", r.status, r.body)
	}
	return r.instance, nil
}

// stats reads Envoy's counters and gauges whose names match the regular
// expression filter (histograms are left out).
func (e *envoyProxy) stats(t testing.TB, filter string) map[string]int64 {
	t.Helper()
	out, err := e.readStats(filter)
	if err != nil {
		t.Fatalf("envoy /stats: %v", err)
	}
	return out
}

// readStats is stats for callers without a testing.TB (polling goroutines);
// an empty filter reads every stat.
func (e *envoyProxy) readStats(filter string) (map[string]int64, error) {
	path := "/stats"
	if filter != "" {
		path += "?filter=" + url.QueryEscape(filter)
	}
	resp, err := e.client.Get("http://" + e.adminAddress + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]int64{}
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		name, value, ok := strings.Cut(lines.Text(), ": ")
		if n, err := strconv.ParseInt(value, 10, 64); ok && err == nil {
			out[name] = n
		}
	}
	return out, lines.Err()
}

// clusterStat is the counter or gauge cluster.<model's cluster>.<name>.
func (e *envoyProxy) clusterStat(t testing.TB, model, name string) int64 {
	t.Helper()
	full := "cluster." + snapshot.ClusterName(model) + "." + name
	return e.stats(t, "^"+regexp.QuoteMeta(full)+"$")[full]
}

// dialGRPC connects a plain gRPC client (no xDS) to Envoy's listener.
func (e *envoyProxy) dialGRPC(t *testing.T) oip.GRPCInferenceServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(e.listenAddress, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return oip.NewGRPCInferenceServiceClient(conn)
}

// inferVia sends one ModelInfer for model, routed by the model-name header,
// and returns the id of the instance that answered.
func inferVia(client oip.GRPCInferenceServiceClient, model string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "model-name", model)
	resp, err := client.ModelInfer(ctx, &oip.ModelInferRequest{ModelName: model})
	if err != nil {
		return "", err
	}
	return resp.GetId(), nil
}

// countAnswers makes calls 0..n-1 one after another and counts answers per
// instance id; the first error fails the test.
func countAnswers(t *testing.T, n int, call func(i int) (string, error)) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for i := range n {
		id, err := call(i)
		if err != nil {
			t.Fatalf("call %d of %d: %v", i+1, n, err)
		}
		counts[id]++
	}
	return counts
}

// binomialTolerance is how far the share of n independent requests that go
// one way with probability p may stray from p: five standard deviations, so
// a correct proxy fails the check less than once in a million runs.
func binomialTolerance(p float64, n int) float64 {
	return 5 * math.Sqrt(p*(1-p)/float64(n))
}

// assertShare fails unless got of n is p within binomialTolerance.
func assertShare(t *testing.T, what string, got, n int, p float64) {
	t.Helper()
	tol := binomialTolerance(p, n)
	if share := float64(got) / float64(n); math.Abs(share-p) > tol {
		t.Errorf("%s: %d of %d (%.1f%%); want %.1f%% ± %.1f", what, got, n, 100*share, 100*p, 100*tol)
	}
}

// injectFailure makes s fail every inference request (HTTP 503, gRPC
// UNAVAILABLE) while it keeps running, through modelsim's admin API.
func (s *modelSim) injectFailure(t *testing.T) {
	t.Helper()
	client := http.Client{Timeout: rpcTimeout}
	resp, err := client.Post("http://"+s.ready.HTTPAddress+"/admin/fail?status=503&code=UNAVAILABLE", "", nil)
	if err != nil {
		t.Fatalf("inject a failure into %s: %v", s.id, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("inject a failure into %s: %s", s.id, resp.Status)
	}
}

// requestsAnswered is how many inference requests s answered for its model
// with code (an HTTP status or a gRPC code name), by its own metrics.
func (s *modelSim) requestsAnswered(t *testing.T, code string) int {
	t.Helper()
	m := scrapeMetrics(t, "http://"+s.ready.HTTPAddress+"/metrics")
	return int(metricValue(m, sim.MetricRequests, map[string]string{"model_name": s.model, "code": code}))
}
