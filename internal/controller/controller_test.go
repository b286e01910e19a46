package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/internal/hub"
	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology"
	"github.com/inferxds/inferxds/xds"
)

var (
	envoyAZ1 = snapshot.View{Zone: "az-1", Client: snapshot.ClientEnvoy}
	grpcAZ2  = snapshot.View{Zone: "az-2", Client: snapshot.ClientGRPC}
)

// fakeServer stands in for *xds.Server: tests connect and disconnect views
// by hand and read what was set.
type fakeServer struct {
	registry *prometheus.Registry
	changed  chan struct{}

	mu        sync.Mutex
	zones     []string
	connected []snapshot.View
	served    map[snapshot.View]*snapshot.Resources
	rejected  map[string]int
}

func newFakeServer() *fakeServer {
	return &fakeServer{
		registry: prometheus.NewRegistry(),
		changed:  make(chan struct{}, 1),
		served:   map[snapshot.View]*snapshot.Resources{},
		rejected: map[string]int{},
	}
}

func (s *fakeServer) SetZones(zones []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.zones = zones
}

func (s *fakeServer) SetView(v snapshot.View, r *snapshot.Resources) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.served[v] = r
	return true, nil
}

func (s *fakeServer) DropView(v snapshot.View) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.served, v)
	return true
}

func (s *fakeServer) ConnectedViews() []snapshot.View {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]snapshot.View(nil), s.connected...)
}

func (s *fakeServer) ViewsChanged() <-chan struct{}  { return s.changed }
func (s *fakeServer) Registry() *prometheus.Registry { return s.registry }

func (s *fakeServer) RecordRejected(stage string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejected[stage]++
}

// connect makes views the connected ones, as nodes arriving and leaving
// would.
func (s *fakeServer) connect(views ...snapshot.View) {
	s.mu.Lock()
	s.connected = views
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *fakeServer) servedVersion(v snapshot.View) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.served[v]; r != nil {
		return r.Versions.Endpoints
	}
	return ""
}

// fakeTranslator counts calls per view and can be made to fail; the
// endpoint version it returns names the fleet's weights.
type fakeTranslator struct {
	mu      sync.Mutex
	calls   map[snapshot.View]int
	fail    error
	forgets []string
	// entered, when set, is closed as the next translation starts, which
	// then waits until release is closed.
	entered, release chan struct{}
}

func (tr *fakeTranslator) TranslateView(f *topology.Fleet, _ *drpolicy.Policy, v snapshot.View) (*snapshot.Resources, error) {
	tr.mu.Lock()
	entered, release := tr.entered, tr.release
	tr.entered, tr.release = nil, nil
	tr.mu.Unlock()
	if entered != nil {
		close(entered)
		<-release
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.calls == nil {
		tr.calls = map[snapshot.View]int{}
	}
	tr.calls[v]++
	if tr.fail != nil {
		return nil, tr.fail
	}
	return &snapshot.Resources{Versions: snapshot.Versions{Endpoints: weightsOf(f)}}, nil
}

func (tr *fakeTranslator) Forget(zone string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.forgets = append(tr.forgets, zone)
}

// holdNext makes the next translation wait for release; the returned
// channel is closed when it has started.
func (tr *fakeTranslator) holdNext(release chan struct{}) <-chan struct{} {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.entered, tr.release = make(chan struct{}), release
	return tr.entered
}

func (tr *fakeTranslator) count(v snapshot.View) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.calls[v]
}

func (tr *fakeTranslator) setFail(err error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.fail = err
}

func weightsOf(f *topology.Fleet) string {
	var out string
	for _, in := range f.Instances {
		out += fmt.Sprintf("%s=%d,", in.Name, in.Weight)
	}
	return out
}

type harness struct {
	hub *hub.Hub
	srv *fakeServer
	tr  *fakeTranslator
	c   *Controller
}

// start runs a controller over a fresh hub and fakeServer until the test
// ends.
func start(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{hub: hub.New(nil), srv: newFakeServer(), tr: &fakeTranslator{}}
	cfg.Fleet, cfg.Policy, cfg.Translator = h.hub.Fleet, h.hub.Policy, h.tr
	cfg.Holdoff = cmp.Or(cfg.Holdoff, 20*time.Millisecond)
	cfg.MaxDelay = cmp.Or(cfg.MaxDelay, 200*time.Millisecond)
	h.c = New(h.srv, cfg)
	runUntilCleanup(t, h.c)
	return h
}

// runUntilCleanup runs c until the test ends.
func runUntilCleanup(t *testing.T, c *Controller) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// waitFor waits (30 s at most, a hang guard) for an event after which ok
// holds.
func waitFor(t *testing.T, c *Controller, ok func(Status) bool) Status {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		updated := c.Updated()
		if s := c.Status(); ok(s) {
			return s
		}
		select {
		case <-updated:
		case <-timeout:
			t.Fatalf("controller status never matched: %+v", c.Status())
		}
	}
}

func generation(n uint64) func(Status) bool {
	return func(s Status) bool { return s.Generation >= n && !s.Pending }
}

func fleetRead(version uint64) func(Status) bool {
	return func(s Status) bool { return s.FleetVersion >= version }
}

// testFleet: model m1 serves in az-1 and az-2, model m2 only in az-1; the
// nodes report GPU telemetry.
func testFleet() *topology.Fleet {
	return &topology.Fleet{
		Zones: []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}, {Name: "az-2", Role: topology.ZoneActive}},
		Nodes: []topology.Node{
			{Name: "n1", Zone: "az-1", GPUs: []topology.GPU{{Index: 0, Health: topology.HealthServing}}},
			{Name: "n2", Zone: "az-2", GPUs: []topology.GPU{{Index: 0, Health: topology.HealthServing}}},
		},
		Instances: []topology.Instance{
			servingInstance("m1-a", "m1", "n1", "az-1"),
			servingInstance("m1-b", "m1", "n2", "az-2"),
			servingInstance("m2-a", "m2", "n1", "az-1"),
		},
	}
}

func servingInstance(name, model, node, zone string) topology.Instance {
	return topology.Instance{
		Name: name, Model: model, Node: node, Zone: zone, Address: "10.0.0.1", Port: 8000, GPUs: []int{0},
		Tier: topology.TierHot, Role: topology.RolePrimary, Health: topology.HealthServing,
	}
}

func TestControllerTranslatesOnlyConnectedViews(t *testing.T) {
	h := start(t, Config{})
	h.srv.connect(envoyAZ1)
	h.hub.Policy.Publish(&drpolicy.Policy{})
	h.hub.Fleet.Publish(testFleet())
	s := waitFor(t, h.c, generation(1))

	if got := h.tr.count(envoyAZ1); got != 1 {
		t.Errorf("az-1/envoy translated %d times, want 1", got)
	}
	for _, v := range []snapshot.View{grpcAZ2, {Zone: "az-2", Client: snapshot.ClientEnvoy}, {}} {
		if got := h.tr.count(v); got != 0 {
			t.Errorf("view %s without nodes translated %d times, want 0", v, got)
		}
	}
	if len(s.Views) != 1 || s.Views[0] != "az-1/envoy" {
		t.Errorf("Views = %v, want [az-1/envoy]", s.Views)
	}
	h.srv.mu.Lock()
	zones := fmt.Sprint(h.srv.zones)
	h.srv.mu.Unlock()
	if zones != "[az-1 az-2]" {
		t.Errorf("server zones %s, want the fleet's [az-1 az-2]", zones)
	}
}

// TestControllerCoalescesABurst: updates that arrive while a round is
// translating are applied together in one more round, from the latest.
func TestControllerCoalescesABurst(t *testing.T) {
	h := start(t, Config{})
	release := make(chan struct{})
	translating := h.tr.holdNext(release)
	h.srv.connect(envoyAZ1)
	h.hub.Policy.Publish(&drpolicy.Policy{})
	h.hub.Fleet.Publish(testFleet())
	select {
	case <-translating:
	case <-time.After(30 * time.Second):
		t.Fatal("the controller never translated")
	}
	var last *topology.Fleet
	for i := range 50 {
		last = testFleet()
		last.Instances[0].Weight = uint32(i + 1)
		h.hub.Fleet.Publish(last)
	}
	close(release)
	s := waitFor(t, h.c, func(s Status) bool { return s.FleetVersion == 51 && generation(2)(s) })

	if s.Generation != 2 || h.tr.count(envoyAZ1) != 2 {
		t.Errorf("50 updates during a round gave %d rounds and %d translations in all, want 2 and 2", s.Generation, h.tr.count(envoyAZ1))
	}
	if got, want := h.srv.servedVersion(envoyAZ1), weightsOf(last); got != want {
		t.Errorf("az-1/envoy serves %q, want the last update's %q", got, want)
	}
}

// TestControllerIgnoresTelemetryTranslationDoesNotRead: scrapes that change
// GPU readings, instance load and telemetry age cause no round; a change of
// health does.
func TestControllerIgnoresTelemetryTranslationDoesNotRead(t *testing.T) {
	h := start(t, Config{})
	h.srv.connect(envoyAZ1)
	h.hub.Policy.Publish(&drpolicy.Policy{})
	h.hub.Fleet.Publish(testFleet())
	before := waitFor(t, h.c, generation(1))

	const scrapes = 20
	var version uint64
	for i := range scrapes {
		f := testFleet()
		f.Nodes[0].TelemetryAge = time.Duration(i+1) * time.Second
		f.Nodes[0].GPUs[0].UtilizationPct = float64(i)
		f.Nodes[1].GPUs[0].MemoryUsedMiB = int64(1000 + i)
		f.Instances[1].Load = topology.Load{QueueDepth: float64(i), KVCacheUsage: float64(i) / scrapes}
		if !h.hub.Fleet.Publish(f) {
			t.Fatalf("scrape %d: the hub saw no change", i)
		}
		_, version = h.hub.Fleet.Get()
	}
	after := waitFor(t, h.c, fleetRead(version))
	if after.Pending || after.Rounds != before.Rounds {
		t.Errorf("%d scrapes of readings translation does not use gave %d extra rounds (pending %v), want 0",
			scrapes, after.Rounds-before.Rounds, after.Pending)
	}
	t.Logf("%d scrapes of irrelevant readings: %d extra rounds", scrapes, after.Rounds-before.Rounds)

	drained := testFleet()
	drained.Instances[0].Health = topology.HealthDraining
	h.hub.Fleet.Publish(drained)
	s := waitFor(t, h.c, generation(before.Generation+1))
	if s.Rounds != before.Rounds+1 || h.tr.count(envoyAZ1) != 2 {
		t.Errorf("a drain gave %d rounds and %d translations in all, want 1 more round and 2 translations",
			s.Rounds-before.Rounds, h.tr.count(envoyAZ1))
	}
}

func TestControllerKeepsLastSnapshotWhenTranslateFails(t *testing.T) {
	h := start(t, Config{})
	h.srv.connect(envoyAZ1, grpcAZ2)
	h.hub.Policy.Publish(&drpolicy.Policy{})
	h.hub.Fleet.Publish(testFleet())
	waitFor(t, h.c, generation(1))
	good := h.srv.servedVersion(envoyAZ1)

	errBad := errors.New("model m9: no such tenant")
	h.tr.setFail(errBad)
	changed := testFleet()
	changed.Instances[0].Weight = 7
	h.hub.Fleet.Publish(changed)
	s := waitFor(t, h.c, func(s Status) bool { return len(s.Failing) == 2 })

	if got := h.srv.servedVersion(envoyAZ1); got != good {
		t.Errorf("az-1/envoy serves %q after a failed translation, want the last good %q", got, good)
	}
	for _, e := range s.Failing {
		if !errors.Is(e.Err, errBad) || len(e.Inputs) != 1 || e.Inputs[0] != InputFleet {
			t.Errorf("view %s failing with %v (inputs %v), want the translate error caused by the fleet", e.View, e.Err, e.Inputs)
		}
	}
	h.srv.mu.Lock()
	rejected := h.srv.rejected[xds.StageTranslate]
	h.srv.mu.Unlock()
	if rejected != 2 {
		t.Errorf("rejected at translate = %d, want 2", rejected)
	}

	h.tr.setFail(nil)
	changed = testFleet()
	changed.Instances[0].Weight = 8
	h.hub.Fleet.Publish(changed)
	if failing := waitFor(t, h.c, func(s Status) bool { return len(s.Failing) == 0 }).Failing; len(failing) != 0 {
		t.Errorf("Failing after recovery = %v, want none", failing)
	}
}

func TestControllerBuildsANewlyConnectedViewAlone(t *testing.T) {
	h := start(t, Config{})
	h.srv.connect(envoyAZ1)
	h.hub.Policy.Publish(&drpolicy.Policy{})
	h.hub.Fleet.Publish(testFleet())
	waitFor(t, h.c, generation(1))

	h.srv.connect(envoyAZ1, grpcAZ2)
	waitFor(t, h.c, func(s Status) bool { return len(s.Views) == 2 })
	if got := h.tr.count(grpcAZ2); got != 1 {
		t.Errorf("az-2/grpc translated %d times on connect, want 1", got)
	}
	if got := h.tr.count(envoyAZ1); got != 1 {
		t.Errorf("a new view re-translated az-1/envoy (%d calls), want 1", got)
	}
}

func TestControllerDropsAViewAfterItsGracePeriod(t *testing.T) {
	h := start(t, Config{ViewGrace: time.Millisecond})
	h.srv.connect(envoyAZ1, grpcAZ2)
	h.hub.Policy.Publish(&drpolicy.Policy{})
	h.hub.Fleet.Publish(testFleet())
	waitFor(t, h.c, generation(1))

	h.srv.connect(envoyAZ1)
	s := waitFor(t, h.c, func(s Status) bool { return s.Dropped == 1 })
	if len(s.Views) != 1 || s.Views[0] != "az-1/envoy" {
		t.Errorf("Views after the drop = %v, want [az-1/envoy]", s.Views)
	}
	if got := h.srv.servedVersion(grpcAZ2); got != "" {
		t.Errorf("the dropped view still has a snapshot on the server")
	}
	h.tr.mu.Lock()
	forgets := fmt.Sprint(h.tr.forgets)
	h.tr.mu.Unlock()
	if forgets != "[az-2]" {
		t.Errorf("translator forgot %s, want [az-2]", forgets)
	}

	h.srv.connect(envoyAZ1, grpcAZ2)
	waitFor(t, h.c, func(s Status) bool { return len(s.Views) == 2 })
	if got := h.tr.count(grpcAZ2); got != 2 {
		t.Errorf("az-2/grpc translated %d times, want again on reconnect (2)", got)
	}
}
