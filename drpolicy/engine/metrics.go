package engine

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferxds/inferxds/drpolicy/dr"
)

// Metrics are the engine's Prometheus series.
type Metrics struct {
	recovery  *prometheus.HistogramVec
	actions   *prometheus.CounterVec
	guardHeld prometheus.Gauge
	lag       *prometheus.GaugeVec
}

// NewMetrics registers the engine's series with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		recovery: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "inferxds_dr_recovery_seconds",
			Help:    "Time from fault (or detection) to each recovery stage: detect, switch, promote, restore.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 90, 300},
		}, []string{"model", "failure", "stage"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inferxds_dr_actions_total",
			Help: "Actuator actions finished, by kind and result (ok, error).",
		}, []string{"kind", "result"}),
		guardHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "inferxds_dr_guard_held",
			Help: "1 while too many instances fail at once for the probes to be trusted and failures are held.",
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "inferxds_dr_checkpoint_lag_seconds",
			Help: "How far each instance's reported checkpoint is behind its model's freshest: what promoting it would lose (compare with the model's rpo).",
		}, []string{"model", "instance"}),
	}
	reg.MustRegister(m.recovery, m.actions, m.guardHeld, m.lag)
	return m
}

// ActionDone counts one finished action.
func (m *Metrics) ActionDone(r Result) {
	result := "ok"
	if r.Err != nil {
		result = "error"
	}
	m.actions.WithLabelValues(string(r.Action.Kind), result).Inc()
}

// GuardHeld sets the guard alert.
func (m *Metrics) GuardHeld(held bool) {
	v := 0.0
	if held {
		v = 1
	}
	m.guardHeld.Set(v)
}

// StageReached observes the incident's newly reached stages, each measured
// from the fault where known, else from detection.
func (m *Metrics) StageReached(before, after dr.Incident) {
	from := after.FaultAt
	if from.IsZero() {
		from = after.DetectedAt
	}
	for _, s := range []struct {
		name    string
		was, is time.Time
	}{
		{"detect", before.DetectedAt, after.DetectedAt},
		{"switch", before.DrainedAt, after.DrainedAt},
		{"promote", before.PromotedReadyAt, after.PromotedReadyAt},
		{"restore", before.RestoredAt, after.RestoredAt},
	} {
		if s.was.IsZero() && !s.is.IsZero() && !from.IsZero() {
			m.recovery.WithLabelValues(after.Model, string(after.Failure), s.name).Observe(s.is.Sub(from).Seconds())
		}
	}
}

// CheckpointLags sets the lag series to lags, dropping instances no longer
// reporting.
func (m *Metrics) CheckpointLags(lags []dr.CheckpointLag) {
	m.lag.Reset()
	for _, l := range lags {
		m.lag.WithLabelValues(l.Model, l.Instance).Set(l.Lag.Seconds())
	}
}
