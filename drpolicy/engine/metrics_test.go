package engine

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/inferxds/inferxds/drpolicy/dr"
)

func TestMetricsStagesObservedOnceFromFault(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	t0 := time.Unix(100, 0)
	open := dr.Incident{ID: "i", Model: "m", Failure: dr.FailureProcessCrash, FaultAt: t0, DetectedAt: t0.Add(time.Second)}
	drained := open
	drained.DrainedAt = t0.Add(2 * time.Second)
	m.StageReached(dr.Incident{}, open)
	m.StageReached(open, drained)
	m.StageReached(drained, drained)
	for stage, want := range map[string][2]float64{"detect": {1, 1}, "switch": {1, 2}, "promote": {0, 0}} {
		var out dto.Metric
		if err := m.recovery.WithLabelValues("m", "process-crash", stage).(prometheus.Histogram).Write(&out); err != nil {
			t.Fatal(err)
		}
		h := out.GetHistogram()
		if float64(h.GetSampleCount()) != want[0] || h.GetSampleSum() != want[1] {
			t.Errorf("stage %s: %d observations summing %v s, want %v from the fault", stage, h.GetSampleCount(), h.GetSampleSum(), want)
		}
	}
}

func TestMetricsActionsByResult(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	m.ActionDone(Result{Action: dr.Action{Kind: dr.ActionWake}})
	m.ActionDone(Result{Action: dr.Action{Kind: dr.ActionWake}, Err: errors.New("x")})
	m.ActionDone(Result{Action: dr.Action{Kind: dr.ActionWake}, Err: errors.New("x")})
	if got := testutil.ToFloat64(m.actions.WithLabelValues("wake", "error")); got != 2 {
		t.Fatalf("wake errors = %v, want 2", got)
	}
}

func TestMetricsCheckpointLagBehindTheModelsFreshest(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) *dr.Checkpoint { return &dr.Checkpoint{ID: "c", Time: t0.Add(d)} }
	s := &dr.State{Instances: []dr.InstanceState{
		{Name: "a-primary", Model: "a", Checkpoint: at(0)},
		{Name: "a-standby", Model: "a", Checkpoint: at(-90 * time.Second)},
		{Name: "b-primary", Model: "b", Checkpoint: at(-time.Hour)},
		{Name: "b-new", Model: "b"},
	}}
	m.CheckpointLags(s.CheckpointLags())
	for instance, want := range map[string]float64{"a-primary": 0, "a-standby": 90, "b-primary": 0} {
		if got := testutil.ToFloat64(m.lag.WithLabelValues(instance[:1], instance)); got != want {
			t.Errorf("%s lag = %v s, want %v", instance, got, want)
		}
	}
	if n := testutil.CollectAndCount(m.lag); n != 3 {
		t.Errorf("%d lag series, want 3: an instance without a checkpoint has none", n)
	}
	m.CheckpointLags(nil)
	if n := testutil.CollectAndCount(m.lag); n != 0 {
		t.Errorf("%d lag series after every instance stopped reporting, want 0", n)
	}
}
