package e2e

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/inferxds/inferxds/cmd/modelsim/oip"
	"github.com/inferxds/inferxds/topology"
)

// hangPolicy gives the model an rto shorter than its timeout, so each try
// is bounded by the rto (per_try_timeout 1s) and the whole request by the
// timeout (also max_stream_duration, which gRPC clients honour); retries
// stay at their defaults.
const hangPolicy = `models:
  - name: llama-2-7b
    priority: critical
    hotStandby: 1
    warmStandby: 0
    coldStandby: 0
    rto: 1s
    timeout: 3s
`

// standbyAnswers is how many standby answers after the hang end a drill.
// Callers' own deadline is hangGuard, far beyond the policy's timeout, so a
// call that ends sooner was ended by the route.
const standbyAnswers = 100

// TestEnvoyReroutesAroundAHungPrimary: the primary (az-1) of a model with
// a hot standby (az-2) is SIGSTOPped under load: its process is up and its
// sockets accept, but nothing answers. Through Envoy each try on it ends at
// the per-try timeout taken from the rto and is retried on the standby, so
// no request fails (the documented bound: 0 with the default retries), and
// the fleet file never changes.
func TestEnvoyReroutesAroundAHungPrimary(t *testing.T) {
	envoyBin := requireEnvoy(t)
	primary := startModelSim(t, "llama-primary", failoverModel, "--latency", simLatency)
	standby := startModelSim(t, "llama-standby", failoverModel, "--latency", simLatency)
	cp := startControlPlane(t, hangPolicy, failoverFleet(primary.httpInstance(t), standby.httpInstance(t), topology.HealthServing))
	proxy := startEnvoy(t, envoyBin, cp, "az-1")
	proxy.client.Timeout = hangGuard
	proxy.waitRoutable(t, failoverModel)

	call := func() (string, error) { return proxy.call(failoverModel) }
	outcomes, stoppedAt := hangDrill(t, call, primary, standby, func() {})
	failed := reportHang(t, "envoy", outcomes, stoppedAt, standby.id)
	if failed > 0 {
		t.Errorf("%d requests failed through Envoy; want 0 (per-try timeout, then retry on the standby): %v", failed, errorCounts(outcomes))
	}
	stats, err := proxy.readStats("")
	if err != nil {
		t.Fatal(err)
	}
	prefix := "cluster." + failoverModel + "."
	perTry, retries := stats[prefix+"upstream_rq_per_try_timeout"], stats[prefix+"upstream_rq_retry"]
	report(t, "hang path=envoy per-try-timeouts=%d retries=%d outlier-ejections=%d",
		perTry, retries, stats[prefix+"outlier_detection.ejections_enforced_total"])
	if perTry == 0 || retries < perTry {
		t.Errorf("Envoy counted %d per-try timeouts and %d retries; want the per-try timeout to fire and each to be retried", perTry, retries)
	}
}

// TestGRPCHungPrimaryIsBoundedThenRerouted: the same hang seen by gRPC-Go's
// xDS client, which has no per-try timeout. Calls to the hung primary end at
// the route's max_stream_duration with DEADLINE_EXCEEDED instead of holding
// until the caller's own deadline; once a health check marks the primary
// unhealthy in the fleet file, traffic moves to the standby.
func TestGRPCHungPrimaryIsBoundedThenRerouted(t *testing.T) {
	primary := startModelSim(t, "llama-primary", failoverModel, "--latency", simLatency)
	standby := startModelSim(t, "llama-standby", failoverModel, "--latency", simLatency)
	cp := startControlPlane(t, hangPolicy, failoverFleet(primary.grpcInstance(t), standby.grpcInstance(t), topology.HealthServing))
	client := dialXDS(t, cp, "az-1")
	client.waitRoutable(t, failoverModel, 10*time.Second)

	call := func() (string, error) { return client.callGuarded(failoverModel) }
	after := failoverFleet(primary.grpcInstance(t), standby.grpcInstance(t), topology.HealthUnhealthy)
	outcomes, stoppedAt := hangDrill(t, call, primary, standby, func() {
		time.Sleep(healthCheckDelay)
		cp.writeFleet(t, after)
	})
	reportHang(t, "grpc-xds", outcomes, stoppedAt, standby.id)
	for err, n := range errorCounts(outcomes) {
		if err != errRouteDeadline.Error() {
			t.Errorf("%d calls failed with %q; want only %q", n, err, errRouteDeadline)
		}
	}
}

// errRouteDeadline is a call ended by the route's max_stream_duration: its
// status is DEADLINE_EXCEEDED while the caller's own deadline is still ahead.
var errRouteDeadline = errors.New("DEADLINE_EXCEEDED from the route's max_stream_duration")

// callGuarded is call with the caller's deadline at hangGuard, telling a
// deadline the route imposed from any other error.
func (c *xdsClient) callGuarded(model string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "model-name", model)
	resp, err := c.infer.ModelInfer(ctx, &oip.ModelInferRequest{ModelName: model})
	if status.Code(err) == codes.DeadlineExceeded && ctx.Err() == nil {
		return "", errRouteDeadline
	}
	if err != nil {
		return "", err
	}
	return resp.GetId(), nil
}

// hangDrill warms the primary up under load, SIGSTOPs it, runs afterStop,
// and stops the load once the standby has answered standbyAnswers calls.
// The primary is resumed when the test ends, so it can stop cleanly.
func hangDrill(t *testing.T, call func() (string, error), primary, standby *modelSim, afterStop func()) ([]outcome, time.Time) {
	t.Helper()
	l := startLoad(call, failoverCallers)
	warmedUp := func(outcomes []outcome) bool { return answersFrom(outcomes, primary.id) >= warmupAnswers }
	if !l.waitFor(10*time.Second, warmedUp) {
		outcomes := l.stop()
		t.Fatalf("primary did not answer %d requests during warm-up; errors: %v", warmupAnswers, errorCounts(outcomes))
	}
	stoppedAt := time.Now()
	signal(t, primary, syscall.SIGSTOP)
	t.Cleanup(func() { signal(t, primary, syscall.SIGCONT) })
	afterStop()
	rerouted := func(outcomes []outcome) bool {
		n, _ := answersAfter(outcomes, standby.id, stoppedAt)
		return n >= standbyAnswers
	}
	ok := l.waitFor(hangGuard, rerouted)
	outcomes := l.stop()
	if !ok {
		n, _ := answersAfter(outcomes, standby.id, stoppedAt)
		t.Fatalf("the standby answered %d calls in %v after the primary hung; want %d. errors: %v",
			n, hangGuard, standbyAnswers, errorCounts(outcomes))
	}
	return outcomes, stoppedAt
}

func signal(t *testing.T, s *modelSim, sig syscall.Signal) {
	t.Helper()
	if err := s.proc.cmd.Process.Signal(sig); err != nil && !s.proc.hasExited() {
		t.Fatalf("%v to %s: %v", sig, s.id, err)
	}
}

// reportHang prints the time from the hang to the standby's first answer
// and the failed calls, and returns how many failed.
func reportHang(t *testing.T, path string, outcomes []outcome, stoppedAt time.Time, standbyID string) int {
	t.Helper()
	failed := 0
	var firstStandby time.Duration = -1
	for _, o := range outcomes {
		switch {
		case o.err != nil:
			failed++
		case o.id == standbyID && !o.at.Before(stoppedAt) && firstStandby < 0:
			firstStandby = o.at.Sub(stoppedAt)
		}
	}
	report(t, "hang path=%s first-standby-answer=%v failed=%d requests=%d",
		path, firstStandby.Round(time.Millisecond), failed, len(outcomes))
	return failed
}
