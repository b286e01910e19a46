// Package controller is the one place that debounces and coalesces input
// changes: it subscribes to the hub's fleet, policy and (when the DR engine
// runs) DR state, translates the fleet and policy as the DR state makes
// them (dr.Effective), waits for a
// holdoff, translates every view the xDS server has nodes for and hands
// the results to the server. A view no node has used for a grace period is
// dropped; a view is built when its first node connects.
//
// It owns the debounce clock and its goroutine; translation stays pure
// (snapshot) and serving stays in xds, which it reaches only through the
// Server interface.
package controller

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
	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/internal/hub"
	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology"
	"github.com/inferxds/inferxds/xds"
)

// Translator computes what one view receives (a snapshot.Translator) and
// forgets what it keeps for a zone no view uses any more.
type Translator interface {
	TranslateView(*topology.Fleet, *drpolicy.Policy, snapshot.View) (*snapshot.Resources, error)
	Forget(zone string)
}

// Server is what the controller needs of the xDS server (an *xds.Server).
type Server interface {
	// SetZones names the zones that are views of their own.
	SetZones(zones []string)
	SetView(snapshot.View, *snapshot.Resources) (changed bool, err error)
	// DropView forgets an idle view; false when a node is connected again.
	DropView(snapshot.View) bool
	ConnectedViews() []snapshot.View
	// ViewsChanged signals when ConnectedViews may have changed.
	ViewsChanged() <-chan struct{}
	// RecordRejected counts a snapshot never pushed, by stage.
	RecordRejected(stage string)
	Registry() *prometheus.Registry
}

// Config configures a Controller.
type Config struct {
	// Fleet and Policy are the hub values translated; both required.
	Fleet  *hub.Value[*topology.Fleet]
	Policy *hub.Value[*drpolicy.Policy]
	// DR is the DR engine's state, optional: when set, what is translated
	// is dr.Effective of the fleet, policy and state, and a state change
	// that moves instances or zones triggers a translation like any input.
	DR *hub.Value[*dr.State]
	// Translator is required.
	Translator Translator
	// Holdoff is how long the controller waits after the last change before
	// translating (default 100 ms); MaxDelay bounds the wait from the first
	// pending change (default 500 ms), so a steady stream of changes still
	// gets pushed.
	Holdoff  time.Duration
	MaxDelay time.Duration
	// ViewGrace is how long a view is kept, and kept current, after its
	// last node disconnects (default 5 minutes).
	ViewGrace time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	c.Holdoff = cmp.Or(c.Holdoff, 100*time.Millisecond)
	c.MaxDelay = max(cmp.Or(c.MaxDelay, 500*time.Millisecond), c.Holdoff)
	c.ViewGrace = cmp.Or(c.ViewGrace, 5*time.Minute)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Input names, as ApplyError.Inputs reports them.
const (
	InputFleet   = "fleet"
	InputPolicy  = "policy"
	InputDR      = "dr"
	InputNewView = "new view"
)

// ApplyError is a view whose latest translation or validation failed; the
// view keeps serving its previous snapshot.
type ApplyError struct {
	View string
	// Inputs are what had changed since the view's last translation.
	Inputs []string
	Err    error
	At     time.Time
}

func (e *ApplyError) Error() string {
	return fmt.Sprintf("view %s (changed: %v): %v", e.View, e.Inputs, e.Err)
}

func (e *ApplyError) Unwrap() error { return e.Err }

// Status is a point-in-time view of the controller.
type Status struct {
	// Generation counts rounds that translated at least one view.
	Generation uint64
	// Rounds counts every round, including those with nothing to translate.
	Rounds uint64
	// Translations counts TranslateView calls.
	Translations uint64
	// FleetVersion, PolicyVersion and DRVersion are the hub versions last
	// read (DRVersion stays 0 without a DR value).
	FleetVersion, PolicyVersion, DRVersion uint64
	// Pending is true while a change waits for its holdoff.
	Pending     bool
	LastApplied time.Time
	// Views are the views served now, sorted; Dropped counts views dropped
	// after their grace period.
	Views   []string
	Dropped uint64
	// Failing lists, by view, the views whose latest translation failed.
	Failing []ApplyError
}

// viewState is what the controller knows of one served view.
type viewState struct {
	gen       uint64    // inputGen it was last translated at
	idleSince time.Time // zero while a node is connected
}

// Controller turns hub changes into view snapshots on the Server.
type Controller struct {
	srv          Server
	cfg          Config
	translateDur prometheus.Histogram

	// views and zones are only used by the Run goroutine.
	views map[snapshot.View]*viewState
	zones []string // as last given to the server; nil before

	mu            sync.Mutex
	pendingFleet  *topology.Fleet
	pendingPolicy *drpolicy.Policy
	pendingDR     *dr.State
	drPending     bool            // pendingDR (nil included) waits to be taken
	fleet         *topology.Fleet // last translated, as the sources give it
	policy        *drpolicy.Policy
	drState       *dr.State
	inputGen      uint64 // bumped whenever the translated fleet, policy or DR state changes
	status        Status
	failing       map[string]ApplyError
	updated       chan struct{}
}

// New builds a controller feeding srv; its metrics are registered on
// srv.Registry(). When the hub already holds a fleet, its zones reach the
// server at once, before any node is answered. Call Run to start it.
func New(srv Server, cfg Config) *Controller {
	c := &Controller{
		srv: srv,
		cfg: cfg.withDefaults(),
		translateDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "inferxds_translate_duration_seconds", Help: "Time to translate one view.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		views:   map[snapshot.View]*viewState{},
		failing: map[string]ApplyError{},
		updated: make(chan struct{}),
	}
	srv.Registry().MustRegister(c.translateDur)
	if f, version := c.cfg.Fleet.Get(); version > 0 {
		c.setZones(f)
	}
	return c
}

// Status returns a copy of the controller's status.
func (c *Controller) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.status
	s.Views = slices.Clone(s.Views)
	s.Failing = slices.SortedFunc(maps.Values(c.failing), func(a, b ApplyError) int { return cmp.Compare(a.View, b.View) })
	return s
}

// Updated returns a channel closed at the controller's next event: an input
// read, a round ended or a view dropped. Read it before Status to not miss
// one.
func (c *Controller) Updated() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.updated
}

// notifyLocked ends the current Updated channel; c.mu is held.
func (c *Controller) notifyLocked() {
	close(c.updated)
	c.updated = make(chan struct{})
}

// Run debounces changes and applies them until ctx is done.
func (c *Controller) Run(ctx context.Context) {
	fleetChanged, stopFleet := c.cfg.Fleet.Subscribe()
	defer stopFleet()
	policyChanged, stopPolicy := c.cfg.Policy.Subscribe()
	defer stopPolicy()
	var drChanged <-chan struct{} // nil, never ready, without a DR value
	if c.cfg.DR != nil {
		ch, stopDR := c.cfg.DR.Subscribe()
		defer stopDR()
		drChanged = ch
	}
	holdoff, drop := stoppedTimer(), stoppedTimer()
	defer holdoff.Stop()
	defer drop.Stop()
	var firstPending time.Time // zero while nothing is pending
	for {
		changed := false
		select {
		case <-ctx.Done():
			return
		case <-fleetChanged:
			changed = c.readFleet()
		case <-policyChanged:
			changed = c.readPolicy()
		case <-drChanged:
			changed = c.readDR()
		case <-c.srv.ViewsChanged():
			c.followConnections(time.Now())
			c.round() // new views are built at once
			c.scheduleDrop(drop)
		case <-holdoff.C:
			firstPending = time.Time{}
			c.round()
		case <-drop.C:
			c.dropIdle(time.Now())
			c.scheduleDrop(drop)
		}
		if changed {
			now := time.Now()
			if firstPending.IsZero() {
				firstPending = now
			}
			holdoff.Reset(c.holdoffUntil(now, firstPending).Sub(now))
		}
	}
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
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

// readFleet takes the hub's fleet; a fleet that translates as the last
// translated one does (it differs only in telemetry translation does not
// read) cancels a pending fleet instead. It reports whether a change is
// now pending.
func (c *Controller) readFleet() bool {
	f, version := c.cfg.Fleet.Get()
	c.setZones(f)
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.notifyLocked()
	c.status.FleetVersion = version
	if c.fleet != nil && snapshot.SameFleetInputs(f, c.fleet) {
		c.pendingFleet = nil
		c.status.Pending = c.pendingPolicy != nil
		return false
	}
	c.pendingFleet = f
	c.status.Pending = true
	return true
}

// readPolicy takes the hub's policy (the hub drops equal ones).
func (c *Controller) readPolicy() bool {
	p, version := c.cfg.Policy.Get()
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.notifyLocked()
	c.status.PolicyVersion = version
	c.pendingPolicy = p
	c.status.Pending = true
	return true
}

// readDR takes the hub's DR state; one that changes nothing translation
// reads (incidents, checkpoints) cancels a pending state instead.
func (c *Controller) readDR() bool {
	s, version := c.cfg.DR.Get()
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.notifyLocked()
	c.status.DRVersion = version
	if sameDRInputs(s, c.drState) {
		c.pendingDR, c.drPending = nil, false
		c.status.Pending = c.pendingFleet != nil || c.pendingPolicy != nil
		return false
	}
	c.pendingDR, c.drPending = s, true
	c.status.Pending = true
	return true
}

// sameDRInputs reports whether two DR states make the same effective fleet
// and policy: the same instance overrides (checkpoints aside) and zone roles.
func sameDRInputs(a, b *dr.State) bool {
	return reflect.DeepEqual(translatedDR(a), translatedDR(b))
}

func translatedDR(s *dr.State) dr.State {
	if s == nil {
		return dr.State{}
	}
	var out dr.State
	if len(s.Zones) > 0 {
		out.Zones = s.Zones
	}
	for _, st := range s.Instances {
		st.Checkpoint = nil
		if st.Tier != "" || st.Role != "" || st.Health != "" || st.Added != nil || st.Node != "" {
			out.Instances = append(out.Instances, st)
		}
	}
	return out
}

// setZones tells the server the fleet's zones when they changed.
func (c *Controller) setZones(f *topology.Fleet) {
	zones := make([]string, 0, len(f.Zones))
	for _, z := range f.Zones {
		zones = append(zones, z.Name)
	}
	if c.zones == nil || !slices.Equal(zones, c.zones) {
		c.zones = zones
		c.srv.SetZones(zones)
	}
}

// round translates every served view not yet translated from the latest
// inputs.
func (c *Controller) round() {
	fleet, policy, gen, inputs := c.takeInputs()
	translated := 0
	if fleet != nil && policy != nil {
		for _, view := range slices.SortedFunc(maps.Keys(c.views), snapshot.CompareViews) {
			if st := c.views[view]; st.gen != gen {
				c.apply(view, fleet, policy, inputs)
				st.gen = gen
				translated++
			}
		}
	}
	c.endRound(translated)
}

// takeInputs promotes the pending inputs and names what changed; with
// nothing changed, the round exists for a newly connected view.
func (c *Controller) takeInputs() (*topology.Fleet, *drpolicy.Policy, uint64, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	prevFleet, prevPolicy := c.fleet, c.policy
	var changed []string
	if c.pendingFleet != nil {
		c.fleet = c.pendingFleet
		changed = append(changed, InputFleet)
	}
	if c.pendingPolicy != nil && c.pendingPolicy != c.policy {
		c.policy = c.pendingPolicy
		changed = append(changed, InputPolicy)
	}
	if c.drPending {
		c.drState = c.pendingDR
		changed = append(changed, InputDR)
	}
	c.pendingFleet, c.pendingPolicy, c.pendingDR, c.drPending, c.status.Pending = nil, nil, nil, false, false
	if len(changed) > 0 {
		c.inputGen++
		c.cfg.Logger.Info("inputs changed; translating", append([]any{"inputs", changed,
			"fleetVersion", c.status.FleetVersion, "policyVersion", c.status.PolicyVersion, "drVersion", c.status.DRVersion},
			changeAttrs(prevFleet, c.fleet, prevPolicy, c.policy)...)...)
	} else {
		changed = []string{InputNewView}
	}
	if c.fleet == nil || c.policy == nil {
		return nil, nil, c.inputGen, changed
	}
	fleet, policy := dr.Effective(c.fleet, c.policy, c.drState)
	return fleet, policy, c.inputGen, changed
}

// apply translates one view and hands the result to the server; on
// failure the view keeps its previous snapshot.
func (c *Controller) apply(view snapshot.View, fleet *topology.Fleet, policy *drpolicy.Policy, inputs []string) {
	start := time.Now()
	r, err := c.cfg.Translator.TranslateView(fleet, policy, view)
	c.translateDur.Observe(time.Since(start).Seconds())
	if err != nil {
		c.srv.RecordRejected(xds.StageTranslate)
		err = fmt.Errorf("translate: %w", err)
	} else if changed, setErr := c.srv.SetView(view, r); setErr != nil {
		err = setErr
	} else if changed {
		c.cfg.Logger.Info("view updated", "view", view.String(), "listeners", r.Versions.Listeners,
			"routes", r.Versions.Routes, "clusters", r.Versions.Clusters, "endpoints", r.Versions.Endpoints)
	}
	c.record(view.String(), inputs, err)
}

func (c *Controller) record(view string, inputs []string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status.Translations++
	if err == nil {
		if _, was := c.failing[view]; was {
			c.cfg.Logger.Info("view recovered: its new snapshot is served", "view", view)
		}
		delete(c.failing, view)
		return
	}
	c.failing[view] = ApplyError{View: view, Inputs: inputs, Err: err, At: time.Now()}
	c.cfg.Logger.Error("snapshot not applied; view keeps its previous one", "view", view, "inputs", inputs, "error", err)
}

func (c *Controller) endRound(translated int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status.Rounds++
	if translated > 0 {
		c.status.Generation++
		c.status.LastApplied = time.Now()
	}
	c.status.Views = c.viewNames()
	c.notifyLocked()
}

func (c *Controller) viewNames() []string {
	names := make([]string, 0, len(c.views))
	for _, v := range slices.SortedFunc(maps.Keys(c.views), snapshot.CompareViews) {
		names = append(names, v.String())
	}
	return names
}

// followConnections adds the views nodes connect to and starts the grace
// period of those left without a node.
func (c *Controller) followConnections(now time.Time) {
	connected := c.srv.ConnectedViews()
	for _, v := range connected {
		if st, ok := c.views[v]; ok {
			st.idleSince = time.Time{}
		} else {
			c.views[v] = &viewState{}
		}
	}
	for v, st := range c.views {
		if st.idleSince.IsZero() && !slices.Contains(connected, v) {
			st.idleSince = now
		}
	}
}

// scheduleDrop sets t for the earliest end of a grace period.
func (c *Controller) scheduleDrop(t *time.Timer) {
	var next time.Time
	for _, st := range c.views {
		if !st.idleSince.IsZero() && (next.IsZero() || st.idleSince.Before(next)) {
			next = st.idleSince
		}
	}
	t.Stop()
	if !next.IsZero() {
		t.Reset(time.Until(next.Add(c.cfg.ViewGrace)))
	}
}

// dropIdle drops the views idle for the grace period, and the translator's
// memory of zones no view uses any more.
func (c *Controller) dropIdle(now time.Time) {
	dropped := 0
	for v, st := range c.views {
		if st.idleSince.IsZero() || now.Sub(st.idleSince) < c.cfg.ViewGrace {
			continue
		}
		if !c.srv.DropView(v) {
			st.idleSince = time.Time{} // a node came back; ViewsChanged follows
			continue
		}
		delete(c.views, v)
		dropped++
		c.cfg.Logger.Info("view dropped: no node connected for the grace period", "view", v.String(), "grace", c.cfg.ViewGrace)
		if !c.zoneInUse(v.Zone) {
			c.cfg.Translator.Forget(v.Zone)
		}
	}
	if dropped == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status.Dropped += uint64(dropped)
	c.status.Views = c.viewNames()
	maps.DeleteFunc(c.failing, func(name string, _ ApplyError) bool { return !slices.Contains(c.status.Views, name) })
	c.notifyLocked()
}

func (c *Controller) zoneInUse(zone string) bool {
	for v := range c.views {
		if v.Zone == zone {
			return true
		}
	}
	return false
}
