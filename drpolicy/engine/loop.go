package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/internal/hub"
	"github.com/inferxds/inferxds/topology"
)

// Retry backoff of a failed actuator action: doubling from actionBackoff
// up to maxActionBackoff.
const (
	actionBackoff    = 500 * time.Millisecond
	maxActionBackoff = 30 * time.Second
)

// Config configures a Loop.
type Config struct {
	// Hub is required: the loop reads the fleet (with telemetry when it is
	// published), the policy and the DR state from it, and publishes the
	// DR state on it.
	Hub *hub.Hub
	// Actuator carries out the actions that change what runs; nil plans and
	// publishes the state-only actions and actuates nothing. When it is a
	// dr.FailureReporter, the loop reads its failures.
	Actuator dr.Actuator
	// Leading reports whether this replica decides; nil is always. A
	// replica that does not lead probes, plans and actuates nothing.
	Leading func() bool
	// ProbeInterval is how often instances are probed; 0 is the policy's
	// healthCheckInterval.
	ProbeInterval time.Duration
	// GuardShare is the share of in-service instances failing in one probe
	// round above which the round is held (0 disables the guard).
	GuardShare float64
	// IncidentLog, when set, receives each incident as a JSON line at each
	// new stage.
	IncidentLog io.Writer
	// Registry receives the engine's metrics; nil keeps them unregistered.
	Registry prometheus.Registerer
	// Logger defaults to slog.Default(); Now to time.Now.
	Logger *slog.Logger
	Now    func() time.Time
	// Client sends the probes; nil is a client of its own.
	Client *http.Client
}

// Loop is the DR reconcile loop: it probes the fleet, turns probe rounds
// and reported failures into plans, publishes the DR state those plans
// decide and has the Actuator carry out their actions.
type Loop struct {
	cfg       Config
	metrics   *Metrics
	incidents *IncidentLog
	detector  *Detector
	results   chan Result
	disp      *Dispatcher

	reported  chan struct{}
	failbacks chan failbackRequest
	stopped   chan struct{}
	mu        sync.Mutex
	pending   []dr.Failure // reported, not yet planned

	// Owned by Run.
	fleet    *topology.Fleet
	policy   *drpolicy.Policy
	state    *dr.State
	inFlight map[string]dr.Action // started and not yet answered
	lastDeep map[string]time.Time
	// apis is the health API each instance answered in, so later probes
	// ask it alone; forgotten when the instance's address changes.
	apis  map[string]instanceAPI
	held  bool
	notes string
	// telemetryDown are the instances telemetry shows failed, reported
	// once each until telemetry shows them well again.
	telemetryDown map[string]bool
	unacted       map[string]bool // actions asked for with no actuator, logged once
}

// instanceAPI is the health API the server at addr answered in.
type instanceAPI struct {
	addr string
	api  API
}

type failbackRequest struct {
	zone  string
	reply chan error
}

// New builds a Loop; call Run to start it.
func New(cfg Config) (*Loop, error) {
	if cfg.Hub == nil {
		return nil, errors.New("dr loop: no hub")
	}
	if cfg.GuardShare < 0 || cfg.GuardShare > 1 {
		return nil, fmt.Errorf("dr loop: guard share %v is not between 0 and 1", cfg.GuardShare)
	}
	if cfg.ProbeInterval < 0 {
		return nil, fmt.Errorf("dr loop: probe interval %v is negative", cfg.ProbeInterval)
	}
	if cfg.Leading == nil {
		cfg.Leading = func() bool { return true }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	l := &Loop{
		cfg:       cfg,
		metrics:   NewMetrics(cfg.Registry),
		detector:  NewDetector(drpolicy.DefaultFailoverThreshold, cfg.GuardShare),
		results:   make(chan Result, 16),
		reported:  make(chan struct{}, 1),
		failbacks: make(chan failbackRequest),
		stopped:   make(chan struct{}),
		inFlight:  map[string]dr.Action{},
		lastDeep:  map[string]time.Time{},
		apis:      map[string]instanceAPI{},
		unacted:   map[string]bool{},

		telemetryDown: map[string]bool{},
	}
	if cfg.IncidentLog != nil {
		l.incidents = NewIncidentLog(cfg.IncidentLog)
	}
	if cfg.Actuator != nil {
		l.disp = NewDispatcher(cfg.Actuator, cfg.Leading, l.results, actionBackoff, maxActionBackoff)
		l.disp.now = cfg.Now
	}
	return l, nil
}

// Report hands the loop a failure found elsewhere (telemetry, a proxy);
// the next plan drains the instance. It never blocks.
func (l *Loop) Report(f dr.Failure) {
	l.mu.Lock()
	l.pending = append(l.pending, f)
	l.mu.Unlock()
	select {
	case l.reported <- struct{}{}:
	default: // a wake-up is already pending
	}
}

func (l *Loop) takeReported() []dr.Failure {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.pending
	l.pending = nil
	return out
}

// FailBack returns a failed-over zone to service (dr.FailBack): the
// operator's command, never taken by the loop itself. It waits for the
// running loop to apply it.
func (l *Loop) FailBack(zone string) error {
	req := failbackRequest{zone: zone, reply: make(chan error, 1)}
	select {
	case l.failbacks <- req:
		return <-req.reply
	case <-l.stopped:
		return errors.New("dr loop: not running")
	}
}

// Run probes and reconciles until ctx is done.
func (l *Loop) Run(ctx context.Context) error {
	defer close(l.stopped)
	subs := l.subscribe()
	defer subs.stop()
	r := &prober{rounds: make(chan []probeOutcome, 1), tick: time.NewTimer(l.interval())}
	defer r.wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-subs.fleet:
			l.fleetChanged(ctx)
		case <-subs.telemetry:
			l.fleetChanged(ctx)
		case <-subs.policy:
			l.policy, _ = l.cfg.Hub.Policy.Get()
			if l.cfg.ProbeInterval == 0 {
				r.tick.Reset(l.interval()) // the policy's healthCheckInterval may have changed
			}
			l.plan(ctx, nil, nil)
		case <-subs.dr:
			if l.readState() {
				l.plan(ctx, nil, nil)
			}
		case <-r.tick.C:
			l.startRound(ctx, r)
		case outcomes := <-r.rounds:
			r.probing = false
			l.observe(ctx, outcomes)
		case <-l.reported:
			l.plan(ctx, nil, nil)
		case f, ok := <-subs.actuator:
			if !ok {
				subs.actuator = nil
				continue
			}
			l.plan(ctx, []dr.Failure{f}, nil)
		case res := <-l.results:
			l.complete(ctx, res)
		case req := <-l.failbacks:
			req.reply <- l.failBack(ctx, req.zone)
		}
	}
}

// subscriptions are what wakes the loop besides its probes.
type subscriptions struct {
	fleet, telemetry, policy, dr <-chan struct{}
	// actuator is the Actuator's failures, nil when it reports none.
	actuator <-chan dr.Failure
	stops    []func()
}

func (l *Loop) subscribe() *subscriptions {
	s := &subscriptions{}
	for _, sub := range []struct {
		ch        *<-chan struct{}
		subscribe func() (<-chan struct{}, func())
	}{
		{&s.fleet, l.cfg.Hub.Fleet.Subscribe},
		{&s.telemetry, l.cfg.Hub.Telemetry.Subscribe},
		{&s.policy, l.cfg.Hub.Policy.Subscribe},
		{&s.dr, l.cfg.Hub.DR.Subscribe},
	} {
		ch, stop := sub.subscribe()
		*sub.ch = ch
		s.stops = append(s.stops, stop)
	}
	if fr, ok := l.cfg.Actuator.(dr.FailureReporter); ok {
		s.actuator = fr.Failures()
	}
	return s
}

func (s *subscriptions) stop() {
	for _, stop := range s.stops {
		stop()
	}
}

// prober paces probe rounds: one at a time, one per tick.
type prober struct {
	tick    *time.Timer
	rounds  chan []probeOutcome
	probing bool
	running sync.WaitGroup
}

func (r *prober) wait() {
	r.tick.Stop()
	r.running.Wait()
}

// startRound probes the targets in the background, unless a round is
// still running or this replica does not lead.
func (l *Loop) startRound(ctx context.Context, r *prober) {
	defer r.tick.Reset(l.interval())
	if r.probing || !l.leading() {
		return
	}
	targets := l.targets()
	if len(targets) == 0 {
		return
	}
	r.probing = true
	r.running.Go(func() { r.rounds <- probeAll(ctx, l.cfg.Client, targets, l.probeTimeout()) })
}

// fleetChanged takes the new fleet and plans, with the failures telemetry
// shows in it.
func (l *Loop) fleetChanged(ctx context.Context) {
	l.readFleet()
	l.plan(ctx, l.newTelemetryFailures(), nil)
}

func (l *Loop) leading() bool { return l.cfg.Leading() }

// readFleet takes the fleet with telemetry once the telemetry runner has
// published one, else the sources'.
func (l *Loop) readFleet() {
	if f, version := l.cfg.Hub.Telemetry.Get(); version > 0 {
		l.fleet = f
		return
	}
	l.fleet, _ = l.cfg.Hub.Fleet.Get()
}

// newTelemetryFailures are the failures the telemetry fleet shows that
// were not reported yet.
func (l *Loop) newTelemetryFailures() []dr.Failure {
	f, version := l.cfg.Hub.Telemetry.Get()
	if version == 0 {
		return nil
	}
	found := telemetryFailures(f, l.cfg.Now())
	var out []dr.Failure
	for _, name := range slices.Sorted(maps.Keys(found)) {
		if !l.telemetryDown[name] {
			out = append(out, found[name])
		}
	}
	maps.DeleteFunc(l.telemetryDown, func(name string, _ bool) bool {
		_, still := found[name]
		return !still
	})
	for name := range found {
		l.telemetryDown[name] = true
	}
	return out
}

// readState takes the DR state on the hub (the leader's, or this loop's
// own) and reports whether it differs from the one the loop holds.
func (l *Loop) readState() bool {
	s, _ := l.cfg.Hub.DR.Get()
	if s == l.state || reflect.DeepEqual(s, l.state) {
		return false
	}
	l.state = s
	return true
}

// interval is the probe cadence: the configured one, else the policy's
// healthCheckInterval.
func (l *Loop) interval() time.Duration {
	if l.cfg.ProbeInterval > 0 {
		return l.cfg.ProbeInterval
	}
	return l.healthCheckInterval()
}

func (l *Loop) healthCheckInterval() time.Duration {
	if l.policy != nil && l.policy.AZFailover != nil && l.policy.AZFailover.HealthCheckInterval > 0 {
		return l.policy.AZFailover.HealthCheckInterval.D()
	}
	return drpolicy.DefaultHealthCheckInterval
}

func (l *Loop) failoverThreshold() int {
	if l.policy != nil && l.policy.AZFailover != nil && l.policy.AZFailover.FailoverThreshold > 0 {
		return l.policy.AZFailover.FailoverThreshold
	}
	return drpolicy.DefaultFailoverThreshold
}

// probeTimeout bounds one probe: the interval, within [500 ms, 5 s].
func (l *Loop) probeTimeout() time.Duration {
	return min(max(l.interval(), 500*time.Millisecond), 5*time.Second)
}

// plan runs the planner on what the loop knows and the failures reported
// since the last plan, publishes the state it decides and starts its
// actions. Reported failures wait for a fleet and a policy; a replica
// that does not lead drops them.
func (l *Loop) plan(ctx context.Context, failures []dr.Failure, recovered []string) {
	if !l.leading() {
		l.takeReported()
		return
	}
	if l.fleet == nil || l.policy == nil {
		l.mu.Lock()
		l.pending = append(l.pending, failures...)
		l.mu.Unlock()
		return
	}
	failures = append(l.takeReported(), failures...)
	now := l.cfg.Now()
	for i := range failures {
		if failures[i].At.IsZero() {
			failures[i].At = now
		}
	}
	d := dr.Plan(dr.Input{
		Fleet: l.fleet, Policy: l.policy, State: l.state, Failures: failures, Recovered: recovered,
		InFlight: slices.SortedFunc(maps.Values(l.inFlight), func(a, b dr.Action) int { return cmp.Compare(a.Key(), b.Key()) }),
		Now:      now,
	})
	l.logNotes(d.Notes)
	l.publish(d.State, now)
	l.start(ctx, d.Actions)
}

// publish makes s the DR state on the hub. An incident whose failed
// instance s takes out of service is stamped drained now: the state that
// takes it out of EDS is the one published here.
func (l *Loop) publish(s *dr.State, now time.Time) {
	s = stampDrained(s, now)
	l.recordIncidents(l.state, s)
	l.state = s
	l.cfg.Hub.DR.Publish(s)
	l.metrics.CheckpointLags(s.CheckpointLags())
}

// stampDrained returns s with DrainedAt set to now on the incidents whose
// instance s marks unhealthy; s itself, which may be published already, is
// left alone.
func stampDrained(s *dr.State, now time.Time) *dr.State {
	out := s
	for i, inc := range s.Incidents {
		if st, ok := s.Instance(inc.Instance); !ok || !inc.DrainedAt.IsZero() || st.Health != topology.HealthUnhealthy {
			continue
		}
		if out == s {
			copied := *s
			copied.Incidents = slices.Clone(s.Incidents)
			out = &copied
		}
		out.Incidents[i].DrainedAt = now
	}
	return out
}

// recordIncidents logs, measures and writes the incidents whose stages
// changed.
func (l *Loop) recordIncidents(before, after *dr.State) {
	for _, inc := range after.Incidents {
		prev := previousIncident(before, inc.ID)
		if reflect.DeepEqual(prev, inc) {
			continue
		}
		l.metrics.StageReached(prev, inc)
		l.cfg.Logger.Info("dr incident", "id", inc.ID, "model", inc.Model, "instance", inc.Instance, "failure", inc.Failure,
			"stage", stage(inc), "replacement", inc.Replacement, "note", inc.Note)
	}
	if l.incidents == nil {
		return
	}
	if err := l.incidents.Record(after.Incidents); err != nil {
		l.cfg.Logger.Error("incident log not written", "error", err)
	}
}

func previousIncident(s *dr.State, id string) dr.Incident {
	if s != nil {
		for _, inc := range s.Incidents {
			if inc.ID == id {
				return inc
			}
		}
	}
	return dr.Incident{}
}

// stage names the latest stage an incident reached.
func stage(inc dr.Incident) string {
	switch {
	case !inc.RestoredAt.IsZero():
		return "restored"
	case !inc.PromotedReadyAt.IsZero():
		return "promoted"
	case !inc.PromotionStartedAt.IsZero():
		return "promotion-started"
	case !inc.DrainedAt.IsZero():
		return "drained"
	default:
		return "detected"
	}
}

func (l *Loop) logNotes(notes []string) {
	joined := strings.Join(notes, "\n")
	if joined == l.notes {
		return
	}
	l.notes = joined
	for _, n := range notes {
		l.cfg.Logger.Warn("dr plan", "note", n)
	}
}

// start hands the actions for the Actuator to the dispatcher; state-only
// ones are done already (published) and logged.
func (l *Loop) start(ctx context.Context, actions []dr.Action) {
	for _, a := range actions {
		switch {
		case a.Kind.StateOnly():
			l.logAction("dr action done", a)
		case l.disp == nil && !l.unacted[a.Key()]:
			l.unacted[a.Key()] = true
			l.logAction("dr action not carried out: no actuator", a)
		}
	}
	if l.disp == nil {
		return
	}
	for _, a := range l.disp.Start(ctx, actions) {
		l.inFlight[a.Key()] = a
		l.logAction("dr action started", a)
	}
}

func (l *Loop) logAction(msg string, a dr.Action) {
	l.cfg.Logger.Info(msg, "kind", a.Kind, "model", a.Model, "instance", a.Instance, "zone", a.Zone,
		"tier", a.Tier, "node", a.Node, "incident", a.Incident, "reason", a.Reason)
}

// complete folds an Actuator's answer into the state and plans the next
// step (a load makes a wake possible; a failed action is asked for again
// once its backoff ends).
func (l *Loop) complete(ctx context.Context, r Result) {
	delete(l.inFlight, r.Action.Key())
	l.metrics.ActionDone(r)
	if r.Err != nil {
		l.cfg.Logger.Warn("dr action failed; retried after a backoff", "kind", r.Action.Kind, "instance", r.Action.Instance, "error", r.Err)
	} else {
		l.logAction("dr action finished", r.Action)
	}
	if !l.leading() {
		return
	}
	now := l.cfg.Now()
	if r.Err == nil {
		l.publish(dr.Complete(l.state, r.Action, r.Instance, nil, now), now)
	}
	l.plan(ctx, nil, nil)
}

func (l *Loop) failBack(ctx context.Context, zone string) error {
	if !l.leading() {
		return errors.New("dr loop: this replica does not lead; fail back on the leader")
	}
	now := l.cfg.Now()
	s, err := dr.FailBack(l.state, zone, now)
	if err != nil {
		return err
	}
	l.cfg.Logger.Info("dr fail-back", "zone", zone)
	l.publish(s, now)
	l.plan(ctx, nil, nil)
	return nil
}

// probeKind is why an instance is probed.
type probeKind int

const (
	// probeInService: a hot or loading instance in service; its failures
	// go through the detector.
	probeInService probeKind = iota
	// probeDrained: an instance taken out of service; only its recovery
	// matters, and it rests on a deep probe.
	probeDrained
	// probeCheckpoint: a warm standby, asleep; only the checkpoint it
	// holds matters (RPO).
	probeCheckpoint
)

// probeTarget is one instance to probe.
type probeTarget struct {
	name, model, node, addr string
	kind                    probeKind
	// api is the health API the instance answered in before, if known.
	api API
	// deep asks for a deep probe after a good health probe.
	deep bool
	// deepProbe is the model's known completion for a server that speaks
	// OpenAI's API, nil when the policy gives none.
	deepProbe *drpolicy.DeepProbe
}

// probeOutcome is what probing one target found.
type probeOutcome struct {
	result ProbeResult
	model  string
	kind   probeKind
	// addr and api: the address probed and the health API that answered.
	addr string
	api  API
	// checkpoint is the one the instance reported, if any.
	checkpoint *dr.Checkpoint
	// settling is an instance still loading or waking: neither up nor down.
	settling bool
}

// targets are the instances of the effective fleet to probe: hot and
// loading ones (each in-service hot one deep-probed at most once per
// healthCheckInterval, a drained one at every probe) and warm ones for
// their checkpoints.
func (l *Loop) targets() []probeTarget {
	if l.fleet == nil || l.policy == nil {
		return nil
	}
	f, _ := dr.Effective(l.fleet, l.policy, l.state)
	now := l.cfg.Now()
	var out []probeTarget
	listed := make(map[string]bool, len(f.Instances))
	for _, in := range f.Instances {
		listed[in.Name] = true
		t := probeTarget{name: in.Name, model: in.Model, node: in.Node, addr: net.JoinHostPort(in.Address, strconv.Itoa(int(in.Port)))}
		if known := l.apis[in.Name]; known.addr == t.addr {
			t.api = known.api
		}
		if m, ok := l.policy.Model(in.Model); ok {
			t.deepProbe = m.DeepProbe
		}
		switch {
		case in.Tier == topology.TierWarm:
			t.kind = probeCheckpoint
		case in.Tier != topology.TierHot && in.Health != topology.HealthLoading:
			continue
		case in.Health == topology.HealthUnhealthy || in.Health == topology.HealthDraining:
			t.kind, t.deep = probeDrained, in.Tier == topology.TierHot
		case in.Serving() && now.Sub(l.lastDeep[in.Name]) >= l.healthCheckInterval():
			t.deep = true
			l.lastDeep[in.Name] = now
		}
		out = append(out, t)
	}
	maps.DeleteFunc(l.lastDeep, func(name string, _ time.Time) bool { return !listed[name] })
	maps.DeleteFunc(l.apis, func(name string, _ instanceAPI) bool { return !listed[name] })
	return out
}

// probeAll probes every target at once and returns when all answered.
func probeAll(ctx context.Context, c *http.Client, targets []probeTarget, timeout time.Duration) []probeOutcome {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := make([]probeOutcome, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { out[i] = probeOne(ctx, c, t) })
	}
	wg.Wait()
	return out
}

func probeOne(ctx context.Context, c *http.Client, t probeTarget) probeOutcome {
	h, err := ProbeHealthAs(ctx, c, t.addr, t.api)
	o := probeOutcome{result: ProbeResult{Instance: t.name, Node: t.node, Err: err}, model: t.model, kind: t.kind,
		addr: t.addr, api: h.API, checkpoint: h.Checkpoint}
	if err != nil {
		o.settling = h.Status == "loading" || h.Status == "waking"
		return o
	}
	switch {
	case !t.deep:
	case h.API == APIModelsim:
		o.result.Corrupt, o.result.Err = ProbeDeep(ctx, c, t.addr, t.model)
	case h.API == APIVLLM && t.deepProbe != nil:
		o.result.Corrupt, o.result.Err = ProbeCompletion(ctx, c, t.addr, *t.deepProbe)
	}
	return o
}

// observe folds a probe round in: checkpoints into the state, in-service
// instances through the detector, drained ones that answer well as
// recovered; then plans.
func (l *Loop) observe(ctx context.Context, outcomes []probeOutcome) {
	if !l.leading() {
		return
	}
	var inService []ProbeResult
	var recovered []string
	for _, o := range outcomes {
		l.learnAPI(o)
		if o.checkpoint != nil {
			l.state = dr.WithCheckpoint(l.state, o.result.Instance, o.model, *o.checkpoint)
		}
		switch {
		case o.kind == probeDrained:
			l.detector.Forget(o.result.Instance)
			if o.result.Err == nil && !o.result.Corrupt {
				recovered = append(recovered, o.result.Instance)
			}
		case o.kind == probeInService && !o.settling:
			inService = append(inService, o.result)
		}
	}
	l.detector.Threshold = l.failoverThreshold()
	round := l.detector.Observe(inService, l.cfg.Now())
	l.guard(round.Held, len(inService))
	l.plan(ctx, round.Failures, recovered)
}

// learnAPI remembers the health API an instance answered in, logging it
// the first time, so its next probes ask that API alone.
func (l *Loop) learnAPI(o probeOutcome) {
	if o.api == APIUnknown || l.apis[o.result.Instance] == (instanceAPI{o.addr, o.api}) {
		return
	}
	l.apis[o.result.Instance] = instanceAPI{o.addr, o.api}
	l.cfg.Logger.Info("dr probe: health API found", "instance", o.result.Instance, "address", o.addr, "api", o.api)
}

func (l *Loop) guard(held bool, probed int) {
	l.metrics.GuardHeld(held)
	if held != l.held {
		if held {
			l.cfg.Logger.Error("dr guard: too many instances fail at once to trust the probes; keeping the last known state",
				"probed", probed, "guardShare", l.cfg.GuardShare)
		} else {
			l.cfg.Logger.Info("dr guard released: probes are trusted again")
		}
	}
	l.held = held
}
