package sim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/inferxds/inferxds/cmd/modelsim/oip"
	"github.com/inferxds/inferxds/internal/testpoll"
)

func TestPredictEchoesInputAndNamesInstance(t *testing.T) {
	s := startServer(t, Config{ID: "inst-7", Models: []string{"m1", "m2"}})
	c := httpClient(t)

	got, err := Predict(testContext(t), c, s.Ready().HTTPAddress, "m2", map[string]int{"x": 1})
	if err != nil {
		t.Fatalf("predict: %v", err)
	}
	want := PredictResponse{Model: "m2", Instance: "inst-7", Output: json.RawMessage(`{"x":1}`)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reply (-want +got):\n%s", diff)
	}

	_, err = Predict(testContext(t), c, s.Ready().HTTPAddress, "not-served", nil)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusNotFound || se.Instance != "inst-7" {
		t.Errorf("predict of a model not served: got %v, want HTTP 404 from inst-7", err)
	}
}

func TestModelInferRepliesWithInstanceAndEchoesInputs(t *testing.T) {
	s := startServer(t, Config{ID: "inst-9"})
	client := oipClient(t, s)
	req := NewInferRequest(testModel, "hello")
	req.RawInputContents = [][]byte{[]byte("raw")}

	resp, err := client.ModelInfer(testContext(t), req)
	if err != nil {
		t.Fatalf("ModelInfer: %v", err)
	}
	want := &oip.ModelInferResponse{
		ModelName:  testModel,
		Id:         "inst-9",
		Parameters: map[string]*oip.InferParameter{InstanceParameter: stringParameter("inst-9")},
		Outputs: []*oip.ModelInferResponse_InferOutputTensor{{
			Name: "prompt", Datatype: "BYTES", Shape: []int64{1},
			Contents: &oip.InferTensorContents{BytesContents: [][]byte{[]byte("hello")}},
		}},
		RawOutputContents: [][]byte{[]byte("raw")},
	}
	if diff := cmp.Diff(want, resp, protocmp.Transform()); diff != "" {
		t.Errorf("reply (-want +got):\n%s", diff)
	}
	if InstanceOf(resp) != "inst-9" {
		t.Errorf("InstanceOf = %q, want inst-9", InstanceOf(resp))
	}

	_, err = client.ModelInfer(testContext(t), NewInferRequest("not-served", "x"))
	if status.Code(err) != codes.NotFound {
		t.Errorf("ModelInfer of a model not served: got %v, want NOT_FOUND", err)
	}
}

func TestReadinessRPCs(t *testing.T) {
	s := startServer(t, Config{})
	client := oipClient(t, s)
	ctx := testContext(t)

	live, err := client.ServerLive(ctx, &oip.ServerLiveRequest{})
	if err != nil || !live.GetLive() {
		t.Errorf("ServerLive = %v, %v; want live", live, err)
	}
	for model, want := range map[string]bool{testModel: true, "other": false} {
		ready, err := client.ModelReady(ctx, &oip.ModelReadyRequest{Name: model})
		if err != nil || ready.GetReady() != want {
			t.Errorf("ModelReady(%s) = %v, %v; want ready=%v", model, ready, err, want)
		}
	}
	meta, err := client.ModelMetadata(ctx, &oip.ModelMetadataRequest{Name: testModel})
	if err != nil || meta.GetName() != testModel {
		t.Errorf("ModelMetadata = %v, %v; want name %s", meta, err, testModel)
	}
}

// healthOf reports what every health probe says about s: HTTP /healthz,
// gRPC ServerReady, and the standard gRPC health service.
type healthOf struct {
	HTTPStatus  int
	ServerReady bool
	GRPCHealth  healthpb.HealthCheckResponse_ServingStatus
}

func probeHealth(t *testing.T, c *http.Client, s *Server) healthOf {
	t.Helper()
	ctx := testContext(t)
	conn := dial(t, s)
	ready, err := oip.NewGRPCInferenceServiceClient(conn).ServerReady(ctx, &oip.ServerReadyRequest{})
	if err != nil {
		t.Fatalf("ServerReady: %v", err)
	}
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("health Check: %v", err)
	}
	return healthOf{
		HTTPStatus:  getStatus(t, c, "http://"+s.Ready().HTTPAddress+"/healthz"),
		ServerReady: ready.GetReady(),
		GRPCHealth:  h.GetStatus(),
	}
}

var (
	healthy = healthOf{HTTPStatus: 200, ServerReady: true, GRPCHealth: healthpb.HealthCheckResponse_SERVING}
	failing = healthOf{HTTPStatus: 503, ServerReady: false, GRPCHealth: healthpb.HealthCheckResponse_NOT_SERVING}
)

func TestFailureFlagsFailEveryRequestAndProbe(t *testing.T) {
	tests := []struct {
		name     string
		failure  Failure
		wantHTTP int
		wantGRPC codes.Code
	}{
		{"http status only", Failure{HTTPStatus: 500}, 500, codes.Unavailable},
		{"grpc code only", Failure{GRPCCode: codes.ResourceExhausted}, 503, codes.ResourceExhausted},
		{"both", Failure{HTTPStatus: 429, GRPCCode: codes.Internal}, 429, codes.Internal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, Config{Failure: tc.failure})
			c := httpClient(t)
			for range 3 {
				if got := predictStatus(t, c, s, testModel); got != tc.wantHTTP {
					t.Errorf("predict status = %d, want %d", got, tc.wantHTTP)
				}
				_, err := oipClient(t, s).ModelInfer(testContext(t), NewInferRequest(testModel, "x"))
				if status.Code(err) != tc.wantGRPC {
					t.Errorf("ModelInfer = %v, want %v", err, tc.wantGRPC)
				}
			}
			if diff := cmp.Diff(failing, probeHealth(t, c, s)); diff != "" {
				t.Errorf("health probes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFailRateFailsEvenlyByCountAndKeepsProbesHealthy(t *testing.T) {
	s := startServer(t, Config{Failure: Failure{Rate: 1.0 / 3}})
	c := httpClient(t)
	var got []int
	for range 6 {
		got = append(got, predictStatus(t, c, s, testModel))
	}
	if diff := cmp.Diff([]int{200, 200, 503, 200, 200, 503}, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	for code, want := range map[string]float64{"200": 4, "503": 2} {
		if got := testutil.ToFloat64(s.metrics.requests.WithLabelValues(testModel, "http", code)); got != want {
			t.Errorf("%s{code=%s} = %v, want %v", MetricRequests, code, got, want)
		}
	}
	if diff := cmp.Diff(healthy, probeHealth(t, c, s)); diff != "" {
		t.Errorf("health probes of a partly failing instance (-want +got):\n%s", diff)
	}
}

func TestAdminFailAndRecoverFlipAtRunTime(t *testing.T) {
	s := startServer(t, Config{})
	c := httpClient(t)
	base := "http://" + s.Ready().HTTPAddress

	if got := postStatus(t, c, base+"/admin/fail?status=429&code=resource_exhausted"); got != http.StatusNoContent {
		t.Fatalf("POST /admin/fail = %d, want 204", got)
	}
	checkAnswers(t, c, s, "after /admin/fail", 429, codes.ResourceExhausted, failing)

	if got := postStatus(t, c, base+"/admin/fail?rate=2"); got != http.StatusBadRequest {
		t.Errorf("POST /admin/fail?rate=2 = %d, want 400", got)
	}
	if got := postStatus(t, c, base+"/admin/recover"); got != http.StatusNoContent {
		t.Fatalf("POST /admin/recover = %d, want 204", got)
	}
	checkAnswers(t, c, s, "after /admin/recover", http.StatusOK, codes.OK, healthy)
}

func TestVLLMGaugesFollowInFlightLoad(t *testing.T) {
	s := startServer(t, Config{Models: []string{"busy", "idle"}, MaxConcurrency: 4, Latency: time.Minute})
	c := httpClient(t)
	client := oipClient(t, s)
	ctx, cancel := context.WithCancel(testContext(t))
	var inFlight sync.WaitGroup
	send := func(n int) {
		for range n {
			inFlight.Go(func() {
				// Cancelled below: the latency outlives the test on purpose.
				_, _ = client.ModelInfer(ctx, NewInferRequest("busy", "x"))
			})
		}
	}
	gauges := func() [3]float64 {
		return [3]float64{
			scrapeGauges(t, c, s, MetricRequestsRunning)["busy"],
			scrapeGauges(t, c, s, MetricRequestsWaiting)["busy"],
			scrapeGauges(t, c, s, MetricKVCacheUsage)["busy"],
		}
	}
	expect := func(what string, want [3]float64) {
		t.Helper()
		var got [3]float64
		testpoll.Until(t, what, func() bool { got = gauges(); return got == want })
	}

	send(3)
	expect("3 running, 0 waiting, KV 0.75", [3]float64{3, 0, 0.75})
	send(3)
	expect("4 running, 2 waiting, KV 1", [3]float64{4, 2, 1})
	if idle := scrapeGauges(t, c, s, MetricRequestsRunning)["idle"]; idle != 0 {
		t.Errorf("running gauge of the idle model = %v, want 0", idle)
	}
	cancel()
	inFlight.Wait()
	expect("all gauges back to 0", [3]float64{0, 0, 0})
}

func TestShutdownDrainsRequestsInFlight(t *testing.T) {
	s := startServer(t, Config{Latency: 300 * time.Millisecond})
	c := httpClient(t)
	done := make(chan error)
	go func() {
		_, err := Predict(testContext(t), c, s.Ready().HTTPAddress, testModel, nil)
		done <- err
	}()
	testpoll.Until(t, "request running", func() bool {
		return scrapeGauges(t, c, s, MetricRequestsRunning)[testModel] == 1
	})

	if err := s.Shutdown(testContext(t)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("request in flight during shutdown: %v, want 200", err)
	}
	if _, err := Predict(testContext(t), c, s.Ready().HTTPAddress, testModel, nil); err == nil {
		t.Error("predict after shutdown succeeded, want a connection error")
	}
}

func TestExitAfterCrashesOnTheNextRequest(t *testing.T) {
	s := startServer(t, Config{ExitAfter: 2})
	c := httpClient(t)
	for i := range 2 {
		if got := predictStatus(t, c, s, testModel); got != http.StatusOK {
			t.Fatalf("request %d = %d, want 200", i+1, got)
		}
	}
	select {
	case <-s.Crashed():
		t.Fatal("crashed before the request after the last allowed one")
	default:
	}

	_, err := Predict(testContext(t), c, s.Ready().HTTPAddress, testModel, nil)
	var se *StatusError
	if err == nil || errors.As(err, &se) {
		t.Errorf("request 3 = %v, want a dropped connection with no reply", err)
	}
	select {
	case <-s.Crashed():
	case <-time.After(5 * time.Second):
		t.Fatal("Crashed not closed after request 3")
	}
	_, err = oipClient(t, s).ModelInfer(testContext(t), NewInferRequest(testModel, "x"))
	if status.Code(err) != codes.Unavailable {
		t.Errorf("ModelInfer after crash = %v, want UNAVAILABLE", err)
	}
}
