package xds

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology"
)

// TranslateFunc computes what one node group receives (snapshot.Translate,
// or a memoizing translator's method).
type TranslateFunc func(*topology.Fleet, *drpolicy.Policy, string) (*snapshot.Resources, error)

// ControllerConfig configures a Controller.
type ControllerConfig struct {
	// Translate is required.
	Translate TranslateFunc
	// Holdoff is how long the controller waits after the last change before
	// translating (default 100 ms); MaxDelay bounds the wait from the first
	// pending change (default 500 ms), so a steady stream of changes still
	// gets pushed.
	Holdoff  time.Duration
	MaxDelay time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c ControllerConfig) withDefaults() ControllerConfig {
	c.Holdoff = cmp.Or(c.Holdoff, 100*time.Millisecond)
	c.MaxDelay = max(cmp.Or(c.MaxDelay, 500*time.Millisecond), c.Holdoff)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Input names, as ApplyError.Inputs reports them.
const (
	InputFleet    = "fleet"
	InputPolicy   = "policy"
	InputNewGroup = "new group"
)

// ApplyError is a group whose latest translation or validation failed; the
// group keeps serving its previous snapshot.
type ApplyError struct {
	Group string
	// Inputs are what had changed since the group's last translation.
	Inputs []string
	Err    error
	At     time.Time
}

func (e *ApplyError) Error() string {
	return fmt.Sprintf("group %q (changed: %v): %v", e.Group, e.Inputs, e.Err)
}

func (e *ApplyError) Unwrap() error { return e.Err }

// SourceError is the latest error a source reported.
type SourceError struct {
	Err error
	At  time.Time
}

// ControllerStatus is a point-in-time view of the controller.
type ControllerStatus struct {
	// Generation counts rounds that translated at least one group.
	Generation uint64
	// Translations counts Translate calls.
	Translations uint64
	// Pending is true while a change waits for its holdoff.
	Pending     bool
	LastApplied time.Time
	// Failing lists, by group, the groups whose latest translation failed.
	Failing      []ApplyError
	SourceErrors map[string]SourceError
}

// Controller is the one place that debounces and coalesces changes: it keeps
// the latest fleet and policy, waits for a holdoff, translates for every
// group and hands the results to the Server.
type Controller struct {
	srv  *Server
	cfg  ControllerConfig
	wake chan struct{}

	sourceErrors *prometheus.GaugeVec
	translateDur prometheus.Histogram

	// groupGen is the inputGen each group was last translated at; only the
	// Run goroutine uses it.
	groupGen map[string]uint64

	mu            sync.Mutex
	pendingFleet  *topology.Fleet
	pendingPolicy *drpolicy.Policy
	pending       bool
	fleet         *topology.Fleet // last translated
	policy        *drpolicy.Policy
	inputGen      uint64 // bumped whenever the translated fleet or policy changes
	status        ControllerStatus
	failing       map[string]ApplyError
	roundDone     chan struct{}
}

// NewController builds a controller feeding srv; its metrics are registered
// on srv.Registry(). Call Run to start it.
func NewController(srv *Server, cfg ControllerConfig) *Controller {
	c := &Controller{
		srv:  srv,
		cfg:  cfg.withDefaults(),
		wake: make(chan struct{}, 1),
		sourceErrors: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "inferxds_source_error", Help: "1 while the source's latest report is an error.",
		}, []string{"source"}),
		translateDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "inferxds_translate_duration_seconds", Help: "Time to translate one node group.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		groupGen:  map[string]uint64{},
		failing:   map[string]ApplyError{},
		roundDone: make(chan struct{}),
		status:    ControllerStatus{SourceErrors: map[string]SourceError{}},
	}
	srv.Registry().MustRegister(c.sourceErrors, c.translateDur)
	return c
}

// UpdateFleet makes f the latest fleet. The controller owns f from now on:
// callers must not modify it. A fleet equal to the latest one is dropped.
func (c *Controller) UpdateFleet(f *topology.Fleet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.Equal(cmp.Or(c.pendingFleet, c.fleet)) {
		return
	}
	c.pendingFleet = f
	c.markPending()
}

// UpdatePolicy makes p the latest policy, with UpdateFleet's rules.
func (c *Controller) UpdatePolicy(p *drpolicy.Policy) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if reflect.DeepEqual(p, cmp.Or(c.pendingPolicy, c.policy)) {
		return
	}
	c.pendingPolicy = p
	c.markPending()
}

func (c *Controller) markPending() {
	c.pending = true
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// ReportSourceError records the latest error of a source (nil clears it).
// It shows in Status and metrics; it does not change what is served.
func (c *Controller) ReportSourceError(source string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		delete(c.status.SourceErrors, source)
		c.sourceErrors.WithLabelValues(source).Set(0)
		return
	}
	c.status.SourceErrors[source] = SourceError{Err: err, At: time.Now()}
	c.sourceErrors.WithLabelValues(source).Set(1)
	c.cfg.Logger.Error("source error", "source", source, "error", err)
}

// Status returns a copy of the controller's status.
func (c *Controller) Status() ControllerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.status
	s.Pending = c.pending
	s.SourceErrors = maps.Clone(c.status.SourceErrors)
	s.Failing = slices.SortedFunc(maps.Values(c.failing), func(a, b ApplyError) int { return cmp.Compare(a.Group, b.Group) })
	return s
}

// Updated returns a channel closed when the next round ends, whether or not
// it translated anything. Read it before Status to not miss a round.
func (c *Controller) Updated() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.roundDone
}

// Run debounces changes and applies them until ctx is done.
func (c *Controller) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	timer.Stop()
	defer timer.Stop()
	var firstPending time.Time // zero while nothing is pending
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-c.srv.NewGroups():
			c.mu.Lock()
			c.pending = true
			c.mu.Unlock()
		case <-timer.C:
			firstPending = time.Time{}
			c.round()
			continue
		}
		now := time.Now()
		if firstPending.IsZero() {
			firstPending = now
		}
		timer.Reset(c.holdoffUntil(now, firstPending).Sub(now))
	}
}

// holdoffUntil is when to apply: Holdoff after the latest change, but no
// later than MaxDelay after the first pending one.
func (c *Controller) holdoffUntil(latest, first time.Time) time.Time {
	deadline := latest.Add(c.cfg.Holdoff)
	if bound := first.Add(c.cfg.MaxDelay); bound.Before(deadline) {
		return bound
	}
	return deadline
}

// round translates every group not yet translated from the latest inputs.
func (c *Controller) round() {
	fleet, policy, gen, inputs := c.takeInputs()
	translated := 0
	if fleet != nil && policy != nil {
		for _, group := range c.groups(fleet) {
			if c.groupGen[group] == gen {
				continue
			}
			c.apply(group, fleet, policy, inputs)
			c.groupGen[group] = gen
			translated++
		}
	}
	c.endRound(translated)
}

// takeInputs promotes the pending inputs that differ from the translated
// ones and names what changed; with nothing changed, the round exists for a
// newly connected group.
func (c *Controller) takeInputs() (*topology.Fleet, *drpolicy.Policy, uint64, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var changed []string
	if c.pendingFleet != nil && !c.pendingFleet.Equal(c.fleet) {
		c.fleet = c.pendingFleet
		changed = append(changed, InputFleet)
	}
	if c.pendingPolicy != nil && !reflect.DeepEqual(c.pendingPolicy, c.policy) {
		c.policy = c.pendingPolicy
		changed = append(changed, InputPolicy)
	}
	c.pendingFleet, c.pendingPolicy, c.pending = nil, nil, false
	if len(changed) > 0 {
		c.inputGen++
	} else {
		changed = []string{InputNewGroup}
	}
	return c.fleet, c.policy, c.inputGen, changed
}

// groups is every zone of the fleet, every group a node connected from,
// and "" (nodes without a zone).
func (c *Controller) groups(fleet *topology.Fleet) []string {
	groups := append(c.srv.Groups(), "")
	for _, z := range fleet.Zones {
		groups = append(groups, z.Name)
	}
	slices.Sort(groups)
	return slices.Compact(groups)
}

// apply translates one group and hands the result to the server; on
// failure the group keeps its previous snapshot.
func (c *Controller) apply(group string, fleet *topology.Fleet, policy *drpolicy.Policy, inputs []string) {
	start := time.Now()
	r, err := c.cfg.Translate(fleet, policy, group)
	c.translateDur.Observe(time.Since(start).Seconds())
	if err != nil {
		c.srv.metrics.snapshotRejected.WithLabelValues(stageTranslate).Inc()
		err = fmt.Errorf("translate: %w", err)
	} else {
		_, err = c.srv.SetGroup(group, r)
	}
	c.record(group, inputs, err)
}

func (c *Controller) record(group string, inputs []string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status.Translations++
	if err == nil {
		delete(c.failing, group)
		return
	}
	c.failing[group] = ApplyError{Group: group, Inputs: inputs, Err: err, At: time.Now()}
	c.cfg.Logger.Error("snapshot not applied; group keeps its previous one", "group", group, "inputs", inputs, "error", err)
}

func (c *Controller) endRound(translated int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if translated > 0 {
		c.status.Generation++
		c.status.LastApplied = time.Now()
	}
	close(c.roundDone)
	c.roundDone = make(chan struct{})
}
