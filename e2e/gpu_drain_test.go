package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/inferxds/inferxds/cmd/modelsim/sim"
	"github.com/inferxds/inferxds/topology/telemetry"
)

const (
	drainModel   = "llama-2-7b"
	drainCallers = 8
	// drainTimeout is the hang guard on fault → endpoint out of EDS (the
	// XID watcher's poll, one scrape, the controller's debounce: well under
	// a second when the machine is idle).
	drainTimeout = 30 * time.Second
	// quietAnswers is how many answers from the other instances, with none
	// from the drained one, show that the gRPC clients applied the drain.
	quietAnswers = 100
	// afterDrain is how long the callers keep going once the drain settled.
	afterDrain = time.Second
)

// TestGPUXIDDrainsItsInstanceUnderLoad: three instances of a model on GPUs
// 0-2 of one node take traffic from 8 gRPC callers; an XID 79 (GPU fell
// off the bus) on GPU 0 takes its instance out of EDS, the callers go on
// with the other two without a failed request, and the drained instance
// gets no new requests.
func TestGPUXIDDrainsItsInstanceUnderLoad(t *testing.T) {
	node := startGPUNode(t)
	sims := startDrainSims(t, 3)
	faulty := sims[0]
	cp := startTelemetryControlPlane(t, twoModelPolicy, node.fleet(t, sims...))
	eds := watchEDS(t, cp, drainModel, sims...)
	eds.await(t, readyTimeout, "all three endpoints", hasExactly(sims...))
	client := dialXDS(t, cp, "az-1")
	client.waitRoutable(t, drainModel, hangGuard)

	l := startLoad(func() (string, error) { return client.call(context.Background(), drainModel) }, drainCallers)
	t.Cleanup(func() { l.stop() })
	if !l.waitFor(hangGuard, everyAnswered(50, sims...)) {
		outcomes := l.stop()
		t.Fatalf("warm-up: not every instance answered 50 requests; answers %v, errors %v", answerCounts(outcomes), errorCounts(outcomes))
	}

	injectedAt := time.Now()
	if err := node.machine.InjectXID(0, 79); err != nil {
		t.Fatal(err)
	}
	drainedAt := eds.await(t, drainTimeout, "endpoints without "+faulty.id, hasExactly(sims[1:]...))
	settledAt := awaitStopped(t, l, faulty)
	servedAtSettle := faulty.answered(t)
	time.Sleep(afterDrain)
	servedAfterSettle := faulty.answered(t) - servedAtSettle
	outcomes := l.stop()

	drain := drainedAt.Sub(injectedAt)
	late, lastLate := answersAfter(outcomes, faulty.id, drainedAt)
	report(t, "gpu-xid-drain xid=79 fault-to-drain=%v (%s scrape intervals of %v) failed=%d requests=%d "+
		"drained-answers-after-drain=%d last=+%v clients-settled=+%v drained-requests-after-settle=%v answers=%v",
		drain.Round(time.Millisecond), intervals(drain), scrapeInterval, failedCount(outcomes), len(outcomes),
		late, lastLate.Round(time.Millisecond), settledAt.Sub(drainedAt).Round(time.Millisecond), servedAfterSettle, answerCounts(outcomes))
	if failed := failedCount(outcomes); failed > 0 {
		t.Errorf("%d of %d requests failed; the faulty GPU's model server stayed up, so none should: %v",
			failed, len(outcomes), errorCounts(outcomes))
	}
	if servedAfterSettle != 0 {
		t.Errorf("the drained instance %s answered %v requests after the clients had stopped sending to it", faulty.id, servedAfterSettle)
	}
	for _, s := range sims[1:] {
		if n, _ := answersAfter(outcomes, s.id, settledAt); n == 0 {
			t.Errorf("healthy instance %s answered nothing after the drain", s.id)
		}
	}
	assertGPUDrainCounted(t, cp, telemetry.ReasonXID, 1)
}

// TestGPUEccErrorAndLostGPUDrainTheirInstances: an uncorrectable ECC error
// on GPU 0 drains its instance; GPU 1 falling off the bus (NVML loses it)
// drains the next; the instance on healthy GPU 2 stays throughout, and the
// drains outlast the node's agent going quiet.
func TestGPUEccErrorAndLostGPUDrainTheirInstances(t *testing.T) {
	node := startGPUNode(t)
	sims := startDrainSims(t, 3)
	cp := startTelemetryControlPlane(t, twoModelPolicy, node.fleet(t, sims...))
	eds := watchEDS(t, cp, drainModel, sims...)
	eds.await(t, readyTimeout, "all three endpoints", hasExactly(sims...))

	faults := []struct {
		name   string
		inject func()
		left   []*modelSim
		reason telemetry.Reason
	}{
		{"ecc-uncorrectable", func() { node.machine.AddECCErrors(0, nvml.MEMORY_ERROR_TYPE_UNCORRECTED, 1) }, sims[1:], telemetry.ReasonECC},
		{"gpu-lost", func() { node.machine.RemoveGPU(1) }, sims[2:], telemetry.ReasonLost},
	}
	for _, f := range faults {
		injectedAt := time.Now()
		f.inject()
		drainedAt := eds.await(t, drainTimeout, f.name+" drain", hasExactly(f.left...))
		drain := drainedAt.Sub(injectedAt)
		report(t, "gpu-fault-drain fault=%s fault-to-drain=%v (%s scrape intervals of %v) endpoints=%v",
			f.name, drain.Round(time.Millisecond), intervals(drain), scrapeInterval, eds.latest)
		assertGPUDrainCounted(t, cp, f.reason, 1)
	}

	node.stopAgent(t)
	awaitTargets(t, cp, telemetry.StateStale, 1)
	eds.expectEndpointsStay(t, 3*scrapeInterval, "an agent going quiet must not bring drained GPUs back", sims[2:]...)
}

// TestGPUStaleTelemetryDoesNotDrain: when the node's agent stops answering,
// its telemetry goes stale and counts as unknown: the instances lose their
// telemetry weights but stay in EDS.
func TestGPUStaleTelemetryDoesNotDrain(t *testing.T) {
	node := startGPUNode(t)
	sims := startDrainSims(t, 3)
	cp := startTelemetryControlPlane(t, twoModelPolicy, node.fleet(t, sims...))
	eds := watchEDS(t, cp, drainModel, sims...)
	eds.await(t, readyTimeout, "telemetry weights on all three endpoints", func(e endpoints) bool {
		return hasExactly(sims...)(e) && allWeights(e, func(w uint32) bool { return w > 1 })
	})

	stoppedAt := time.Now()
	node.stopAgent(t)
	staleAt := awaitTargets(t, cp, telemetry.StateStale, 1)
	// Unknown telemetry leaves the unweighted instances at weight 1; that
	// push is the proof the stale state reached EDS.
	unweightedAt := eds.await(t, drainTimeout, "all three endpoints at weight 1", func(e endpoints) bool {
		return hasExactly(sims...)(e) && allWeights(e, func(w uint32) bool { return w == 1 })
	})
	eds.expectEndpointsStay(t, 3*scrapeInterval, "stale telemetry must not drain", sims...)
	report(t, "gpu-stale-telemetry agent-stopped-to-stale=%v to-unweighted-eds=%v endpoints=%v (stale-after: 3 scrape intervals of %v)",
		staleAt.Sub(stoppedAt).Round(time.Millisecond), unweightedAt.Sub(stoppedAt).Round(time.Millisecond), eds.latest, scrapeInterval)
}

// startDrainSims starts n simulators of drainModel answering after a short
// latency, so requests are in flight when a fault lands.
func startDrainSims(t *testing.T, n int) []*modelSim {
	t.Helper()
	sims := make([]*modelSim, n)
	for i := range sims {
		sims[i] = startModelSim(t, fmt.Sprintf("llama-gpu%d", i), drainModel, "--latency", simLatency)
	}
	return sims
}

// hasExactly holds for endpoints that are the sims' and no others.
func hasExactly(sims ...*modelSim) func(endpoints) bool {
	return func(e endpoints) bool {
		if len(e) != len(sims) {
			return false
		}
		for _, s := range sims {
			if _, ok := e[s.id]; !ok {
				return false
			}
		}
		return true
	}
}

func allWeights(e endpoints, ok func(uint32) bool) bool {
	for _, w := range e {
		if !ok(w) {
			return false
		}
	}
	return true
}

// expectEndpointsStay reads the EDS pushes of window and fails, saying why
// it should not have happened, if one holds other endpoints than the sims'.
func (w *edsWatch) expectEndpointsStay(t *testing.T, window time.Duration, why string, sims ...*modelSim) {
	t.Helper()
	timer := time.NewTimer(window)
	defer timer.Stop()
	for {
		select {
		case resp, ok := <-w.d.responses:
			w.read(t, resp, ok)
			if !hasExactly(sims...)(w.latest) {
				t.Fatalf("EDS for %s changed to %v; %s", w.model, w.latest, why)
			}
		case <-timer.C:
			return
		}
	}
}

// everyAnswered holds once each sim answered at least n calls.
func everyAnswered(n int, sims ...*modelSim) func([]outcome) bool {
	return func(outcomes []outcome) bool {
		return !slices.ContainsFunc(sims, func(s *modelSim) bool { return answersFrom(outcomes, s.id) < n })
	}
}

// awaitStopped waits until s answers nothing while the load gets
// quietAnswers answers elsewhere, the sign that every caller's client
// applied the drain, and returns when it saw that.
func awaitStopped(t *testing.T, l *load, s *modelSim) time.Time {
	t.Helper()
	err := poll(drainTimeout, func() error {
		before, from := s.answered(t), len(l.snapshot())
		if !l.waitFor(drainTimeout, func(o []outcome) bool { return len(o) >= from+quietAnswers }) {
			return fmt.Errorf("the callers got fewer than %d answers", quietAnswers)
		}
		if now := s.answered(t); now != before {
			return fmt.Errorf("%s answered %v more requests", s.id, now-before)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the clients did not stop sending to the drained instance %s: %v", s.id, err)
	}
	return time.Now()
}

// answersAfter counts id's answers that returned after at, and how long
// after at the last one did.
func answersAfter(outcomes []outcome, id string, at time.Time) (n int, last time.Duration) {
	for _, o := range outcomes {
		if o.err == nil && o.id == id && o.at.After(at) {
			n++
			last = max(last, o.at.Sub(at))
		}
	}
	return n, last
}

func answerCounts(outcomes []outcome) map[string]int {
	counts := map[string]int{}
	for _, o := range outcomes {
		if o.err == nil {
			counts[o.id]++
		}
	}
	return counts
}

func failedCount(outcomes []outcome) int {
	n := 0
	for _, o := range outcomes {
		if o.err != nil {
			n++
		}
	}
	return n
}

// answered is how many inference requests the simulator has answered, by
// its own count.
func (s *modelSim) answered(t *testing.T) float64 {
	t.Helper()
	m := scrapeMetrics(t, "http://"+s.ready.HTTPAddress+"/metrics")
	return metricValue(m, sim.MetricRequests, map[string]string{"model_name": s.model})
}

// assertGPUDrainCounted checks the control plane's drain counter for reason.
func assertGPUDrainCounted(t *testing.T, cp *controlPlane, reason telemetry.Reason, want float64) {
	t.Helper()
	m := scrapeMetrics(t, "http://"+cp.MetricsAddress+"/metrics")
	if got := metricValue(m, "inferxds_gpu_drains_total", map[string]string{"reason": string(reason)}); got != want {
		t.Errorf("inferxds_gpu_drains_total{reason=%q} = %v; want %v", reason, got, want)
	}
}

// awaitTargets waits until the control plane counts n telemetry targets in
// state, and returns when it saw that.
func awaitTargets(t *testing.T, cp *controlPlane, state string, n float64) time.Time {
	t.Helper()
	url := "http://" + cp.MetricsAddress + "/metrics"
	var got float64
	err := poll(drainTimeout, func() error {
		got = metricValue(scrapeMetrics(t, url), "inferxds_telemetry_targets", map[string]string{"state": state})
		if got != n {
			return fmt.Errorf("inferxds_telemetry_targets{state=%q} = %v; want %v", state, got, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return time.Now()
}
