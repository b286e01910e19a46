// Package weights maps endpoint telemetry to quantized load-balancing
// weights with hysteresis. It is pure: callers pass the time in; a Weigher
// is a value its caller owns and is not safe for concurrent use.
package weights

import (
	"fmt"
	"math"
	"time"

	"github.com/inferxds/inferxds/internal/fielderr"
	"github.com/inferxds/inferxds/topology"
)

// DefaultWeight is published for an endpoint before any of its signals is
// known: a new endpoint is assumed idle.
const DefaultWeight = topology.MaxWeight

// Reading is one telemetry value; the zero Reading is unknown. Missing or
// stale telemetry must be passed as unknown (the caller knows the age).
type Reading struct {
	Value float64
	Known bool
}

// Measured is a known reading.
func Measured(v float64) Reading { return Reading{Value: v, Known: true} }

func (r Reading) usable() bool {
	return r.Known && !math.IsNaN(r.Value) && !math.IsInf(r.Value, 0)
}

// Signals is one scrape of an endpoint's load.
type Signals struct {
	// UtilizationPct is GPU utilization, 0..100.
	UtilizationPct Reading
	// MemoryHeadroom is free/total GPU memory, 0..1.
	MemoryHeadroom Reading
	// QueueDepth is the model server's waiting requests
	// (vllm:num_requests_waiting).
	QueueDepth Reading
	// KVCacheUsage is the share of KV cache in use, 0..1.
	KVCacheUsage Reading
}

// Config tunes how telemetry becomes weights. A zero field takes its
// default.
//
// The score is the capacity left, c in [0, 1]: the minimum, over the known
// signals only, of
//
//	1 − utilization/100
//	min(1, headroom/LowHeadroom)
//	1 − kvCacheUsage
//	1 / (1 + queueDepth/QueueHalfDepth)
//
// each clamped to [0, 1], so c never rises when any load signal rises. Level
// k = min(⌊c·Levels⌋, Levels−1) is published as weight ⌈128·(k+1)/Levels⌉
// (8 levels: 16, 32, …, 128), so a saturated endpoint keeps 1/Levels of an
// idle one's traffic. An endpoint at level k moves only when c leaves its
// band by Hysteresis bands — c < (k−Hysteresis)/Levels or
// c ≥ (k+1+Hysteresis)/Levels — and no sooner than MinInterval after its
// last change; it then moves to c's own level.
type Config struct {
	// Levels is the number of distinct weights, 2..128; default 8.
	Levels int
	// Hysteresis is the margin, as a fraction of one level's band (0..1],
	// by which the score must leave the current band; default 1. Noise of
	// ±Hysteresis/(2·Levels) around a steady load (±6.25 points with the
	// defaults) never changes a weight, even for an endpoint whose first
	// sample fell on the far side of a band edge.
	Hysteresis float64
	// MinInterval is the least time between two changes of one endpoint's
	// weight; default 30s.
	MinInterval time.Duration
	// QueueHalfDepth is the queue depth that halves the queue term; default 8.
	QueueHalfDepth float64
	// LowHeadroom is the memory headroom (0..1] below which the headroom
	// term falls linearly to 0; default 0.05. Model servers such as vLLM
	// preallocate most GPU memory, so only a nearly full GPU counts as load.
	LowHeadroom float64
}

// Weight configuration defaults.
const (
	DefaultLevels         = 8
	DefaultHysteresis     = 1.0
	DefaultMinInterval    = 30 * time.Second
	DefaultQueueHalfDepth = 8
	DefaultLowHeadroom    = 0.05
)

// Weigher turns each endpoint's telemetry into a weight that changes only
// when the load really moved. It keeps state per endpoint.
type Weigher struct {
	cfg       Config
	endpoints map[string]*endpointWeight
}

type endpointWeight struct {
	level     int
	changedAt time.Time
}

// NewWeigher returns a Weigher, reporting every out-of-range setting.
func NewWeigher(cfg Config) (*Weigher, error) {
	cfg = cfg.withDefaults()
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("telemetry weights: %w", err)
	}
	return &Weigher{cfg: cfg, endpoints: make(map[string]*endpointWeight)}, nil
}

func (c Config) withDefaults() Config {
	if c.Levels == 0 {
		c.Levels = DefaultLevels
	}
	if c.Hysteresis == 0 {
		c.Hysteresis = DefaultHysteresis
	}
	if c.MinInterval == 0 {
		c.MinInterval = DefaultMinInterval
	}
	if c.QueueHalfDepth == 0 {
		c.QueueHalfDepth = DefaultQueueHalfDepth
	}
	if c.LowHeadroom == 0 {
		c.LowHeadroom = DefaultLowHeadroom
	}
	return c
}

func (c Config) check() error {
	pr := fielderr.NewProblems(fielderr.NoFile{})
	if c.Levels < 2 || c.Levels > topology.MaxWeight {
		pr.Add("levels", "must be between 2 and %d (got %d)", topology.MaxWeight, c.Levels)
	}
	if !(c.Hysteresis >= 0 && c.Hysteresis <= 1) {
		pr.Add("hysteresis", "must be between 0 and 1 (got %v)", c.Hysteresis)
	}
	if c.MinInterval < 0 {
		pr.Add("minInterval", "must not be negative (got %v)", c.MinInterval)
	}
	if !(c.QueueHalfDepth > 0) || math.IsInf(c.QueueHalfDepth, 1) {
		pr.Add("queueHalfDepth", "must be a positive number (got %v)", c.QueueHalfDepth)
	}
	if !(c.LowHeadroom > 0 && c.LowHeadroom <= 1) {
		pr.Add("lowHeadroom", "must be in (0, 1] (got %v)", c.LowHeadroom)
	}
	return pr.Err()
}

// Update takes an endpoint's latest signals at now and returns the weight
// to publish for it. With no known signal the endpoint keeps its weight
// (DefaultWeight if it never had one).
func (w *Weigher) Update(now time.Time, endpoint string, s Signals) uint32 {
	c, known := w.cfg.capacityLeft(s)
	ep, seen := w.endpoints[endpoint]
	switch {
	case !known && !seen:
		return DefaultWeight
	case !seen:
		ep = &endpointWeight{level: w.cfg.level(c), changedAt: now}
		w.endpoints[endpoint] = ep
	case known && now.Sub(ep.changedAt) >= w.cfg.MinInterval && w.cfg.outside(c, ep.level):
		ep.level, ep.changedAt = w.cfg.level(c), now
	}
	return w.cfg.weight(ep.level)
}

// Forget drops an endpoint's state; its next known signals set its weight
// at once.
func (w *Weigher) Forget(endpoint string) { delete(w.endpoints, endpoint) }

// capacityLeft is the score documented on Config; known is false when
// no signal is.
func (c Config) capacityLeft(s Signals) (left float64, known bool) {
	left = 1
	use := func(r Reading, term func(float64) float64) {
		if r.usable() {
			left, known = min(left, clamp01(term(r.Value))), true
		}
	}
	use(s.UtilizationPct, func(v float64) float64 { return 1 - v/100 })
	use(s.MemoryHeadroom, func(v float64) float64 { return v / c.LowHeadroom })
	use(s.KVCacheUsage, func(v float64) float64 { return 1 - v })
	use(s.QueueDepth, func(v float64) float64 { return 1 / (1 + max(v, 0)/c.QueueHalfDepth) })
	return left, known
}

func clamp01(v float64) float64 { return min(max(v, 0), 1) }

func (c Config) level(left float64) int {
	return min(int(left*float64(c.Levels)), c.Levels-1)
}

// outside reports whether left is beyond level's band by the hysteresis margin.
func (c Config) outside(left float64, level int) bool {
	scaled := left * float64(c.Levels)
	return scaled < float64(level)-c.Hysteresis || scaled >= float64(level+1)+c.Hysteresis
}

func (c Config) weight(level int) uint32 {
	levels := uint32(c.Levels)
	return (topology.MaxWeight*uint32(level+1) + levels - 1) / levels
}
