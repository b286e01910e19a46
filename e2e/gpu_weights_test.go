package e2e

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/inferxds/inferxds/cmd/gpu-agent/agent/nvmlmock"
	"github.com/inferxds/inferxds/cmd/modelsim/sim"
	"github.com/inferxds/inferxds/topology"
	"github.com/inferxds/inferxds/topology/telemetry/weights"
)

const (
	// weightModel is ringHashPolicy's model: gRPC honours endpoint weights
	// only under ring hash.
	weightModel    = "llama-2-7b"
	weightSessions = 2000
	// weightMinInterval is the least time between two weight changes of an
	// endpoint (serve's --weight-min-interval), short so that the test
	// measures the reaction to load rather than the hold-down.
	weightMinInterval = time.Second
	// splitTolerance is how far a ring-hash split may be from the weights'
	// shares (see ringHashPolicy for the ring's spread).
	splitTolerance = 0.05
	// noiseCallers keep a one-slot model server busy with a queue deep
	// enough to outlast a short stall of the callers.
	noiseCallers = 6
	// splitAttempts bounds the measurements steadySplit repeats. A run is
	// repeated only when the proxy saw the weights change during it (a
	// stalled machine lets the busy server's queue drain between scrapes).
	splitAttempts = 6
)

// busyGPU is a GPU running flat out with most of its memory in use.
var busyGPU = nvmlmock.Load{GPUUtilPct: 95, MemoryUtilPct: 80, MemoryUsedMiB: 36_000, TemperatureC: 78, PowerMilliwatts: 380_000}

// TestGPUWeightsFollowInjectedGPULoad: two instances of a ring-hash model
// on idle GPUs 0 and 1 get equal telemetry weights and half the sessions
// each; once GPU 0 reports 95% utilization, its instance's weight in EDS
// drops (after the weigher's minimum interval between changes) and gRPC's
// own ring-hash split follows the new weights.
func TestGPUWeightsFollowInjectedGPULoad(t *testing.T) {
	node := startGPUNode(t)
	busy := startModelSim(t, "llama-gpu0", weightModel)
	idle := startModelSim(t, "llama-gpu1", weightModel)
	cp := startTelemetryControlPlane(t, ringHashPolicy, node.fleet(t, busy, idle))
	eds := watchEDS(t, cp, weightModel, busy, idle)
	firstWeightsAt := eds.await(t, readyTimeout, "equal telemetry weights", func(e endpoints) bool {
		return hasExactly(busy, idle)(e) && e[busy.id] > 1 && e[busy.id] == e[idle.id]
	})
	client := dialXDS(t, cp, "az-1")
	client.waitRoutable(t, weightModel, hangGuard)
	sessions := func() map[string]int { return client.answeredBy(t, weightModel, weightSessions, session) }
	before, initial := steadySplit(t, eds, "the first split measurement", sessions)

	injectedAt := time.Now()
	node.machine.SetLoad(0, busyGPU)
	movedAt := eds.await(t, weightMinInterval+drainTimeout, "a lower weight for "+busy.id, func(e endpoints) bool {
		return hasExactly(busy, idle)(e) && e[busy.id] < e[idle.id]
	})
	after, moved := steadySplit(t, eds, "the second split measurement", sessions)

	react := movedAt.Sub(injectedAt)
	report(t, "gpu-load-weights load=util95%% injection-to-eds=%v (%s scrape intervals of %v) first-weights-to-change=%v (min interval %v) "+
		"weights=%v->%v split-%s=%s->%s",
		react.Round(time.Millisecond), intervals(react), scrapeInterval, movedAt.Sub(firstWeightsAt).Round(time.Millisecond), weightMinInterval,
		initial, moved, busy.id, percent(before[busy.id], weightSessions), percent(after[busy.id], weightSessions))
	assertSplit(t, "before the load", before, initial, busy, idle)
	assertSplit(t, "after the load", after, moved, busy, idle)
}

// TestGPUModelServerQueueSetsWeights: an instance whose model server is
// saturated by other traffic (its vLLM gauges show a full KV cache and a
// queue) gets a lower telemetry weight in EDS than an idle one as soon as
// the control plane scrapes them, and gRPC's ring-hash split follows.
func TestGPUModelServerQueueSetsWeights(t *testing.T) {
	busy := startModelSim(t, "llama-queued", weightModel, "--max-concurrency", "1", "--latency", simLatency)
	idle := startModelSim(t, "llama-free", weightModel)
	saturate(t, busy, noiseCallers)

	fleet := fleetOf(busy.grpcInstance(t), idle.grpcInstance(t))
	for i, s := range []*modelSim{busy, idle} {
		fleet.Instances[i].MetricsURL = "http://" + s.ready.HTTPAddress + "/metrics"
	}
	startedAt := time.Now()
	cp := startTelemetryControlPlane(t, ringHashPolicy, fleet)
	eds := watchEDS(t, cp, weightModel, busy, idle)
	// A saturated server (full KV cache) sits on the weigher's lowest level;
	// waiting for it, not for any lower weight, keeps a first scrape taken
	// while the queue was still forming from passing for the settled state.
	lowest := uint32(topology.MaxWeight / weights.DefaultLevels)
	weighedAt := eds.await(t, readyTimeout, "the lowest weight for "+busy.id, func(e endpoints) bool {
		return hasExactly(busy, idle)(e) && e[busy.id] == lowest && e[idle.id] > lowest
	})
	client := dialXDS(t, cp, "az-1")
	client.waitRoutable(t, weightModel, hangGuard)
	split, weights := steadySplit(t, eds, "the split measurement", func() map[string]int {
		return client.answeredBy(t, weightModel, weightSessions, session)
	})

	report(t, "gpu-queue-weights busy=max-concurrency-1+%d-callers start-to-weights=%v weights=%v split-%s=%s",
		noiseCallers, weighedAt.Sub(startedAt).Round(time.Millisecond), weights, busy.id, percent(split[busy.id], weightSessions))
	assertSplit(t, "with one model server saturated", split, weights, busy, idle)
}

// saturate keeps callers requests in flight on s's HTTP port (traffic that
// does not come through xDS) until the test ends, and waits until s reports
// a queue.
func saturate(t *testing.T, s *modelSim, callers int) {
	t.Helper()
	httpClient := &http.Client{Timeout: rpcTimeout}
	l := startLoad(func() (string, error) {
		resp, err := sim.Predict(context.Background(), httpClient, s.ready.HTTPAddress, s.model, "noise")
		return resp.Instance, err
	}, callers)
	t.Cleanup(func() { l.stop() })
	err := poll(readyTimeout, func() error {
		m := scrapeMetrics(t, "http://"+s.ready.HTTPAddress+"/metrics")
		if waiting := metricValue(m, sim.MetricRequestsWaiting, map[string]string{"model_name": s.model}); waiting == 0 {
			return fmt.Errorf("%s reports no waiting requests", s.id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// steadySplit runs measure until one run saw no change of the model's
// endpoints from start to end (at most splitAttempts runs), and returns that
// run's split with the weights it ran under. Telemetry weights follow live
// load, so a scrape may move them mid-measurement on a busy machine; such a
// run compares the split with no single set of weights and is repeated.
func steadySplit(t *testing.T, eds *edsWatch, what string, measure func() map[string]int) (map[string]int, endpoints) {
	t.Helper()
	for attempt := 1; attempt <= splitAttempts; attempt++ {
		eds.since(t)
		weights := eds.latest
		split := measure()
		pushes := eds.since(t)
		if len(pushes) == 0 {
			return split, weights
		}
		report(t, "weights of %s changed during %s (run %d): %v then %v; measuring again", eds.model, what, attempt, weights, pushes)
	}
	t.Fatalf("the weights of %s changed during every one of %d runs of %s", eds.model, splitAttempts, what)
	return nil, nil
}

// assertSplit checks that a's share of the sessions is a's share of the
// weights, within splitTolerance, and that only a and b answered.
func assertSplit(t *testing.T, when string, counts map[string]int, weights endpoints, a, b *modelSim) {
	t.Helper()
	if other := weightSessions - counts[a.id] - counts[b.id]; other != 0 {
		t.Errorf("%s: %d sessions answered by neither instance: %v", when, other, counts)
	}
	want := float64(weights[a.id]) / float64(weights[a.id]+weights[b.id])
	if got := float64(counts[a.id]) / weightSessions; math.Abs(got-want) > splitTolerance {
		t.Errorf("%s: %s got %.1f%% of the sessions; weights %v give it %.1f%% ± %.0f",
			when, a.id, 100*got, weights, 100*want, 100*splitTolerance)
	}
}
