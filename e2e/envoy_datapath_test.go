package e2e

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/inferxds/inferxds/cmd/modelsim/oip"
	"github.com/inferxds/inferxds/topology"
)

// TestEnvoyRoutesByModelAndAnswersUnknownModelsWith404: HTTP predict calls
// that carry the model-name header, and calls that name their model only by
// the path prefix /v1/models/<name>/, reach only that model's instances; a
// model the policy does not have gets Envoy's own 404 (no route matches),
// counted in http.ingress_http.no_route.
func TestEnvoyRoutesByModelAndAnswersUnknownModelsWith404(t *testing.T) {
	envoyBin := requireEnvoy(t)
	sims, fleet := startTwoModels(t, (*modelSim).httpInstance)
	cp := startControlPlane(t, twoModelPolicy, fleet)
	proxy := startEnvoy(t, envoyBin, cp, "az-1")
	for model := range sims {
		proxy.waitRoutable(t, model)
	}
	assertRoutes(t, "envoy routing", sims, proxy.call)
	assertRoutes(t, "envoy path-routing", sims, func(model string) (string, error) {
		r, err := proxy.send(predictPath(model))
		if err != nil {
			return "", err
		}
		return r.answered()
	})

	const unknown = "gpt-unknown"
	noRouteBefore := proxy.stats(t, `^http\.ingress_http\.no_route$`)["http.ingress_http.no_route"]
	const tries = 5
	for range tries {
		r, err := proxy.send(predictPath(unknown), "model-name", unknown)
		if err != nil {
			t.Fatal(err)
		}
		if r.status != http.StatusNotFound || r.instance != "" {
			t.Fatalf("unknown model: HTTP %d from instance %q (%s); want Envoy's own 404", r.status, r.instance, r.body)
		}
	}
	if got := proxy.stats(t, `^http\.ingress_http\.no_route$`)["http.ingress_http.no_route"] - noRouteBefore; got != tries {
		t.Errorf("http.ingress_http.no_route grew by %d for %d requests of an unknown model", got, tries)
	}
}

// TestEnvoyGRPCRoutesByModelHeader: Open Inference Protocol calls through
// Envoy, routed by the model-name header only (the path is the gRPC
// method), reach only that model's instances; an unknown model gets
// UNIMPLEMENTED, gRPC's rendering of Envoy's 404.
func TestEnvoyGRPCRoutesByModelHeader(t *testing.T) {
	envoyBin := requireEnvoy(t)
	sims, fleet := startTwoModels(t, (*modelSim).grpcInstance)
	cp := startControlPlane(t, twoModelPolicy, fleet)
	client := startEnvoy(t, envoyBin, cp, "az-1").dialGRPC(t)
	for model := range sims {
		waitGRPCRoutable(t, client, model)
	}
	assertRoutes(t, "envoy grpc-routing", sims, func(model string) (string, error) { return inferVia(client, model) })

	_, err := inferVia(client, "gpt-unknown")
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("unknown model over gRPC: %v; want UNIMPLEMENTED (Envoy's 404)", err)
	}
}

func waitGRPCRoutable(t *testing.T, client oip.GRPCInferenceServiceClient, model string) {
	t.Helper()
	if err := poll(hangGuard, func() error { _, err := inferVia(client, model); return err }); err != nil {
		t.Fatalf("model %s not routable over gRPC through Envoy: %v", model, err)
	}
}

// TestEnvoyGRPCHotStandbyFailover is TestHotStandbyFailover with the OIP
// calls going through Envoy instead of gRPC's own xDS client.
func TestEnvoyGRPCHotStandbyFailover(t *testing.T) {
	envoyBin := requireEnvoy(t)
	primary := startModelSim(t, "llama-primary", failoverModel, "--latency", simLatency)
	standby := startModelSim(t, "llama-standby", failoverModel, "--latency", simLatency)
	cp := startControlPlane(t, failoverPolicy, failoverFleet(primary.grpcInstance(t), standby.grpcInstance(t), topology.HealthServing))
	client := startEnvoy(t, envoyBin, cp, "az-1").dialGRPC(t)
	waitGRPCRoutable(t, client, failoverModel)

	call := func() (string, error) { return inferVia(client, failoverModel) }
	after := failoverFleet(primary.grpcInstance(t), standby.grpcInstance(t), topology.HealthUnhealthy)
	failoverDrill(t, "envoy-grpc", call, primary, standby, func() { cp.writeFleet(t, after) })
}

// outlierPolicy ejects a host after 5 consecutive 5xx (gRPC UNAVAILABLE
// counts as 503) for ten minutes, longer than the test; retries move each
// failed attempt to the other host.
var outlierPolicy = llamaPolicy(`    retries:
      attempts: 2
      retryOn: [5xx, unavailable]
    outlierDetection:
      consecutive5xx: 5
      interval: "10s"
      baseEjectionTime: "10m"
      maxEjectionPercent: 50
`)

const outlierConsecutive5xx = 5

// TestEnvoyOutlierDetectionEjectsAFailingServer: of two instances, one
// starts answering every request with HTTP 503 / gRPC UNAVAILABLE while its
// process stays up. Envoy ejects it after five consecutive failures (counted
// in ejections_enforced_total), clients see no failure (retries), and from
// then on every request goes to the healthy instance: the failing one's own
// counter does not move.
func TestEnvoyOutlierDetectionEjectsAFailingServer(t *testing.T) {
	envoyBin := requireEnvoy(t)
	for _, protocol := range []string{"http", "grpc"} {
		t.Run(protocol, func(t *testing.T) {
			failing := startModelSim(t, "llama-failing", "llama-2-7b")
			healthy := startModelSim(t, "llama-healthy", "llama-2-7b")
			instance, failedCode := (*modelSim).httpInstance, "503"
			if protocol == "grpc" {
				instance, failedCode = (*modelSim).grpcInstance, codes.Unavailable.String()
			}
			cp := startControlPlane(t, outlierPolicy, fleetOf(instance(failing, t), instance(healthy, t)))
			proxy := startEnvoy(t, envoyBin, cp, "az-1", oneWorker...)
			call := func(int) (string, error) { return proxy.call("llama-2-7b") }
			if protocol == "grpc" {
				client := proxy.dialGRPC(t)
				call = func(int) (string, error) { return inferVia(client, "llama-2-7b") }
			}
			waitGRPCOrHTTP(t, call)
			assertAnsweredOnlyBy(t, "llama-2-7b", countAnswers(t, 100, call), simsByID(failing, healthy))

			failing.injectFailure(t)
			toEjection := callsUntil(t, call, 1000, func() bool {
				return proxy.clusterStat(t, "llama-2-7b", "outlier_detection.ejections_enforced_total") >= 1
			})
			failuresAtEjection := failing.requestsAnswered(t, failedCode)
			after := countAnswers(t, 200, call)
			failuresAfter := failing.requestsAnswered(t, failedCode) - failuresAtEjection

			report(t, "envoy outlier protocol=%s calls-to-ejection=%d failing-instance-failures=%d client-failures=0 after-ejection=%v failing-instance-requests-after=%d",
				protocol, toEjection, failuresAtEjection, after, failuresAfter)
			if failuresAtEjection < outlierConsecutive5xx {
				t.Errorf("ejected after %d failures of %s; the policy says %d consecutive", failuresAtEjection, failing.id, outlierConsecutive5xx)
			}
			if after[healthy.id] != 200 {
				t.Errorf("after the ejection: %v; want all 200 from %s", after, healthy.id)
			}
			if failuresAfter != 0 {
				t.Errorf("%s still got %d requests after Envoy ejected it", failing.id, failuresAfter)
			}
		})
	}
}

// waitGRPCOrHTTP waits until call succeeds.
func waitGRPCOrHTTP(t *testing.T, call func(int) (string, error)) {
	t.Helper()
	if err := poll(hangGuard, func() error { _, err := call(0); return err }); err != nil {
		t.Fatalf("not routable through Envoy: %v", err)
	}
}

// callsUntil calls until done holds, at most limit times, failing the test on
// any failed call or when limit is reached; it returns the number of calls.
func callsUntil(t *testing.T, call func(int) (string, error), limit int, done func() bool) int {
	t.Helper()
	for n := 1; n <= limit; n++ {
		if _, err := call(n); err != nil {
			t.Fatalf("call %d failed: %v", n, err)
		}
		if done() {
			return n
		}
	}
	t.Fatalf("condition not met after %d calls", limit)
	return limit
}

// TestEnvoyHonoursFleetWeights: fleet weights 3:1 split 2,000 requests 3:1
// through Envoy under round robin and under least request (which gRPC's
// own clients do not weight).
func TestEnvoyHonoursFleetWeights(t *testing.T) {
	envoyBin := requireEnvoy(t)
	for _, lb := range []string{"round_robin", "least_request"} {
		t.Run(lb, func(t *testing.T) {
			heavy := startModelSim(t, "llama-heavy", "llama-2-7b")
			light := startModelSim(t, "llama-light", "llama-2-7b")
			heavyIn, lightIn := heavy.httpInstance(t), light.httpInstance(t)
			heavyIn.Weight, lightIn.Weight = 3, 1
			cp := startControlPlane(t, llamaPolicy("    loadBalancing:\n      policy: "+lb+"\n"), fleetOf(heavyIn, lightIn))
			proxy := startEnvoy(t, envoyBin, cp, "az-1")
			proxy.waitRoutable(t, "llama-2-7b")

			const requests = 2000
			counts := countAnswers(t, requests, func(int) (string, error) { return proxy.call("llama-2-7b") })
			report(t, "envoy weights lb=%s weights=3:1 requests=%d split=%s:%s (tolerance ±%.1f%%)", lb, requests,
				percent(counts[heavy.id], requests), percent(counts[light.id], requests), 100*binomialTolerance(0.75, requests))
			assertAnsweredOnlyBy(t, "llama-2-7b", counts, simsByID(heavy, light))
			assertShare(t, heavy.id+"'s share", counts[heavy.id], requests, 0.75)
		})
	}
}

// TestEnvoyRingHashPinsSessions: with ring hash on x-session, each of 1,000
// sessions sticks to one instance over repeated requests, and the sessions
// spread over both instances.
func TestEnvoyRingHashPinsSessions(t *testing.T) {
	envoyBin := requireEnvoy(t)
	a := startModelSim(t, "llama-a", "llama-2-7b")
	b := startModelSim(t, "llama-b", "llama-2-7b")
	cp := startControlPlane(t, ringHashPolicy, fleetOf(a.httpInstance(t), b.httpInstance(t)))
	proxy := startEnvoy(t, envoyBin, cp, "az-1")
	proxy.waitRoutable(t, "llama-2-7b")

	const sessions, repeats, repeatedSessions = 1000, 5, 50
	owner := make([]string, sessions)
	bySession := func(i int) (string, error) {
		r, err := proxy.send(predictPath("llama-2-7b"), session(i)...)
		if err != nil {
			return "", err
		}
		return r.answered()
	}
	counts := countAnswers(t, sessions, func(i int) (string, error) {
		id, err := bySession(i)
		owner[i] = id
		return id, err
	})
	moved := 0
	for i := range repeatedSessions {
		for range repeats {
			if id, err := bySession(i); err != nil || id != owner[i] {
				moved++
			}
		}
	}
	report(t, "envoy ring-hash sessions=%d split=%v repeated=%dx%d moved=%d", sessions, counts, repeatedSessions, repeats, moved)
	if moved > 0 {
		t.Errorf("%d of %d repeated requests left their session's instance", moved, repeatedSessions*repeats)
	}
	assertAnsweredOnlyBy(t, "llama-2-7b", counts, simsByID(a, b))
	// Each host owns about half of a 4,096-entry ring (±0.8%) and the
	// sessions land on it binomially (±1.6%): 35..65% is over 8 sigma.
	if share := float64(counts[a.id]) / sessions; share < 0.35 || share > 0.65 {
		t.Errorf("%s got %.1f%% of the sessions; want them spread about evenly", a.id, 100*share)
	}
}

// mirrorPolicy shadows a quarter of llama-2-7b's requests to the model
// llama-shadow.
var mirrorPolicy = llamaPolicy(`    mirror:
      model: llama-shadow
      percent: 25
`) + `  - name: llama-shadow
    priority: low
    hotStandby: 0
    warmStandby: 0
    coldStandby: 0
`

// TestEnvoyMirrorsTheConfiguredShare: 25% of 2,000 requests reach the
// shadow instance (by its own count, which matches Envoy's), within the
// binomial tolerance; every client answer still comes from the primary.
func TestEnvoyMirrorsTheConfiguredShare(t *testing.T) {
	envoyBin := requireEnvoy(t)
	primary := startModelSim(t, "llama-primary", "llama-2-7b")
	// The shadow serves the mirrored path's model; the fleet lists it as
	// an instance of llama-shadow.
	shadow := startModelSim(t, "llama-shadow-0", "llama-2-7b")
	shadowIn := shadow.httpInstance(t)
	shadowIn.Model = "llama-shadow"
	cp := startControlPlane(t, mirrorPolicy, fleetOf(primary.httpInstance(t), shadowIn))
	proxy := startEnvoy(t, envoyBin, cp, "az-1")
	proxy.waitRoutable(t, "llama-2-7b")
	mirroredBefore, shadowedBefore := mirrorCounts(t, proxy, shadow)

	const requests = 2000
	counts := countAnswers(t, requests, func(int) (string, error) { return proxy.call("llama-2-7b") })
	mirrored, shadowed := mirrorCounts(t, proxy, shadow)
	mirrored -= mirroredBefore
	shadowed -= shadowedBefore
	report(t, "envoy mirror percent=25 requests=%d shadow-received=%s envoy-mirrored=%d (tolerance ±%.1f%%)",
		requests, percent(shadowed, requests), mirrored, 100*binomialTolerance(0.25, requests))
	if counts[primary.id] != requests {
		t.Errorf("client answers: %v; want all %d from %s (a mirror's answer is dropped)", counts, requests, primary.id)
	}
	if shadowed != mirrored {
		t.Errorf("the shadow answered %d requests; Envoy mirrored %d", shadowed, mirrored)
	}
	assertShare(t, "mirrored share", shadowed, requests, 0.25)
}

// mirrorCounts waits until no mirrored request is in flight, then returns
// how many Envoy completed to the shadow cluster and how many the shadow
// answered.
func mirrorCounts(t *testing.T, proxy *envoyProxy, shadow *modelSim) (mirrored, shadowed int) {
	t.Helper()
	err := poll(hangGuard, func() error {
		if proxy.clusterStat(t, "llama-shadow", "upstream_rq_active") != 0 {
			return context.DeadlineExceeded
		}
		return nil
	})
	if err != nil {
		t.Fatalf("mirrored requests still in flight after %v", hangGuard)
	}
	return int(proxy.clusterStat(t, "llama-shadow", "upstream_rq_completed")), shadow.requestsAnswered(t, "200")
}

// circuitBreakerPolicy allows one connection with one request pending; the
// only retry condition is a failed connect, so overflows reach the client.
var circuitBreakerPolicy = llamaPolicy(`    retries:
      attempts: 1
      retryOn: [connect-failure]
    circuitBreakers:
      maxConnections: 1
      maxPendingRequests: 1
`)

// TestEnvoyCircuitBreakerOverflow: eight concurrent callers against a
// cluster that allows one connection and one pending request: Envoy answers
// the overflow itself with 503 and x-envoy-overloaded, counts every one in
// upstream_rq_pending_overflow, and the model server sees only the rest.
func TestEnvoyCircuitBreakerOverflow(t *testing.T) {
	envoyBin := requireEnvoy(t)
	s := startModelSim(t, "llama-a", "llama-2-7b", "--latency", "50ms")
	cp := startControlPlane(t, circuitBreakerPolicy, fleetOf(s.httpInstance(t)))
	proxy := startEnvoy(t, envoyBin, cp, "az-1", oneWorker...)
	proxy.waitRoutable(t, "llama-2-7b")
	answeredBefore := s.requestsAnswered(t, "200")

	const callers, perCaller = 8, 10
	replies := concurrentReplies(t, callers, perCaller, func() (envoyReply, error) {
		return proxy.send(predictPath("llama-2-7b"), "model-name", "llama-2-7b")
	})
	var ok, overloaded int
	for _, r := range replies {
		switch {
		case r.status == http.StatusOK:
			ok++
		case r.status == http.StatusServiceUnavailable && r.overloaded:
			overloaded++
		default:
			t.Errorf("unexpected reply: HTTP %d overloaded=%v: %s", r.status, r.overloaded, r.body)
		}
	}
	overflow := proxy.clusterStat(t, "llama-2-7b", "upstream_rq_pending_overflow")
	answered := s.requestsAnswered(t, "200") - answeredBefore
	report(t, "envoy circuit-breaker max-connections=1 max-pending=1 callers=%d requests=%d ok=%d overloaded=%d pending-overflow=%d",
		callers, len(replies), ok, overloaded, overflow)
	if overloaded == 0 {
		t.Errorf("no request overflowed with %d callers, one connection and one pending slot", callers)
	}
	if int64(overloaded) != overflow {
		t.Errorf("clients got %d overloaded replies; Envoy counted %d pending overflows", overloaded, overflow)
	}
	if answered != ok {
		t.Errorf("the model server answered %d requests; clients got %d answers", answered, ok)
	}
}

// concurrentReplies has callers goroutines send perCaller requests each and
// returns every reply; a transport error fails the test.
func concurrentReplies(t *testing.T, callers, perCaller int, send func() (envoyReply, error)) []envoyReply {
	t.Helper()
	var mu sync.Mutex
	var replies []envoyReply
	var errs []error
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range perCaller {
				r, err := send()
				mu.Lock()
				replies = append(replies, r)
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d requests failed in transport, first: %v", len(errs), errs[0])
	}
	return replies
}

// retryBudgetPolicy retries a 5xx once, within a budget of 10% of the
// active requests (at least one retry at a time); outlier detection is off
// so the failing host keeps its share.
var retryBudgetPolicy = llamaPolicy(`    retries:
      attempts: 1
      retryOn: [5xx]
      budget:
        percent: 10
        minConcurrency: 1
    outlierDetection:
      interval: "10s"
`)

// TestEnvoyRetryBudgetCapsRetries: one of two instances fails every request.
// Under eight concurrent callers, Envoy retries a failed attempt on the
// other instance only while the budget allows: the rest are counted in
// upstream_rq_retry_overflow and reach the client as the failing instance's
// 503, and every failure the failing instance served was either retried
// or overflowed.
func TestEnvoyRetryBudgetCapsRetries(t *testing.T) {
	envoyBin := requireEnvoy(t)
	failing := startModelSim(t, "llama-failing", "llama-2-7b")
	healthy := startModelSim(t, "llama-healthy", "llama-2-7b", "--latency", "20ms")
	cp := startControlPlane(t, retryBudgetPolicy, fleetOf(failing.httpInstance(t), healthy.httpInstance(t)))
	proxy := startEnvoy(t, envoyBin, cp, "az-1", oneWorker...)
	proxy.waitRoutable(t, "llama-2-7b")
	failing.injectFailure(t)

	const callers, perCaller = 8, 50
	replies := concurrentReplies(t, callers, perCaller, func() (envoyReply, error) {
		return proxy.send(predictPath("llama-2-7b"), "model-name", "llama-2-7b")
	})
	failed := 0
	for _, r := range replies {
		if r.status != http.StatusOK {
			failed++
			if r.instance != failing.id || !strings.Contains(r.body, "injected failure") {
				t.Errorf("failed reply not the failing instance's own 503: HTTP %d from %q: %s", r.status, r.instance, r.body)
			}
		}
	}
	retried := proxy.clusterStat(t, "llama-2-7b", "upstream_rq_retry")
	overflow := proxy.clusterStat(t, "llama-2-7b", "upstream_rq_retry_overflow")
	failures := failing.requestsAnswered(t, "503")
	report(t, "envoy retry-budget percent=10 min-concurrency=1 callers=%d requests=%d retried=%d retry-overflow=%d client-failures=%d",
		callers, len(replies), retried, overflow, failed)
	if overflow == 0 {
		t.Errorf("no retry overflowed the budget; %d retries with %d callers", retried, callers)
	}
	if int64(failed) != overflow {
		t.Errorf("clients saw %d failures; Envoy counted %d retries over budget", failed, overflow)
	}
	if int64(failures) != retried+overflow {
		t.Errorf("%s failed %d requests; Envoy retried %d and left %d over budget", failing.id, failures, retried, overflow)
	}
}
