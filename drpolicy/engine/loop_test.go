package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/internal/hub"
	"github.com/inferxds/inferxds/internal/testlog"
	"github.com/inferxds/inferxds/internal/testpoll"
	"github.com/inferxds/inferxds/topology"
)

// modelServer answers /healthz and the deep probe as a model server does;
// a test makes it fail and counts the probes it answered failing.
type modelServer struct {
	addr string

	mu           sync.Mutex
	status       string
	corrupt      bool
	checkpoint   string
	failedProbes int
	probes       int
}

func newModelServer(t *testing.T) *modelServer {
	t.Helper()
	m := &modelServer{status: "serving", checkpoint: "ck-1"}
	srv := httptest.NewServer(http.HandlerFunc(m.serveHTTP))
	t.Cleanup(srv.Close)
	m.addr = strings.TrimPrefix(srv.URL, "http://")
	return m
}

func (m *modelServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	status, ck, corrupt := m.status, m.checkpoint, m.corrupt
	if r.URL.Path == "/healthz" {
		m.probes++
		if status != "serving" {
			m.failedProbes++
		}
	}
	m.mu.Unlock()
	code := http.StatusOK
	if status != "serving" {
		code = http.StatusServiceUnavailable
	}
	switch {
	case r.URL.Path == "/healthz":
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"status":%q,"checkpoint":{"id":%q,"time":"2026-12-01T10:00:00Z"}}`, status, ck)
	case strings.HasSuffix(r.URL.Path, "/predict"):
		var in struct {
			Input string `json:"input"`
		}
		json.NewDecoder(r.Body).Decode(&in)
		if corrupt {
			in.Input = strings.ToUpper(in.Input)
		}
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"output": in.Input})
	default:
		http.NotFound(w, r)
	}
}

func (m *modelServer) set(status string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status = status
}

func (m *modelServer) setCorrupt() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.corrupt = true
}

func (m *modelServer) counts() (probes, failed int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.probes, m.failedProbes
}

func (m *modelServer) hostPort(t *testing.T) (string, uint32) {
	t.Helper()
	host, port, err := net.SplitHostPort(m.addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return host, uint32(p)
}

const threshold = 3

// testPolicy: one model m1 with the given standby counts, probed every
// round and down after threshold failures.
func testPolicy(hot, warm, cold int) *drpolicy.Policy {
	p := &drpolicy.Policy{
		Models: []drpolicy.Model{{Name: "m1", Priority: drpolicy.CriticalityCritical, HotStandby: hot, WarmStandby: warm, ColdStandby: cold}},
		AZFailover: &drpolicy.AZFailover{Strategy: "active-passive", ActiveZones: []string{"az-1"},
			HealthCheckInterval: drpolicy.Duration(10 * time.Millisecond), FailoverThreshold: threshold},
	}
	p.ApplyDefaults()
	return p
}

// fleetOf: zone az-1, node n1 with four GPUs, and the instances given.
func fleetOf(instances ...topology.Instance) *topology.Fleet {
	f := &topology.Fleet{
		Zones:     []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}},
		Nodes:     []topology.Node{{Name: "n1", Zone: "az-1", GPUs: []topology.GPU{{Index: 0, MemoryTotalMiB: 1000}, {Index: 1, MemoryTotalMiB: 1000}, {Index: 2, MemoryTotalMiB: 1000}, {Index: 3, MemoryTotalMiB: 1000}}}},
		Instances: instances,
	}
	f.ApplyDefaults()
	f.Sort()
	return f
}

func instance(t *testing.T, name string, m *modelServer, tier topology.Tier, role topology.Role, gpu int) topology.Instance {
	host, port := "127.0.0.1", uint32(1)
	if m != nil {
		host, port = m.hostPort(t)
	}
	in := topology.Instance{Name: name, Model: "m1", Node: "n1", Zone: "az-1", Address: host, Port: port, Tier: tier, Role: role, Health: topology.HealthServing}
	if tier == topology.TierHot {
		in.GPUs = []int{gpu}
	}
	return in
}

type loopHarness struct {
	hub      *hub.Hub
	loop     *Loop
	registry *prometheus.Registry
	log      *testlog.Buffer
}

func startLoop(t *testing.T, f *topology.Fleet, p *drpolicy.Policy, cfg Config) *loopHarness {
	t.Helper()
	h := &loopHarness{hub: hub.New(nil), registry: prometheus.NewRegistry(), log: &testlog.Buffer{}}
	cfg.Hub, cfg.Registry, cfg.IncidentLog = h.hub, h.registry, h.log
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = 10 * time.Millisecond
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.loop = l
	h.hub.Policy.Publish(p)
	h.hub.Fleet.Publish(f)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return h
}

// waitState waits (30 s at most, a hang guard) for a published DR state
// for which ok holds, and returns it.
func (h *loopHarness) waitState(t *testing.T, what string, ok func(*dr.State) bool) *dr.State {
	t.Helper()
	changed, stop := h.hub.DR.Subscribe()
	defer stop()
	timeout := time.After(30 * time.Second)
	for {
		if s, v := h.hub.DR.Get(); v > 0 && ok(s) {
			return s
		}
		select {
		case <-changed:
		case <-timeout:
			s, _ := h.hub.DR.Get()
			t.Fatalf("never reached: %s; state %+v", what, s)
		}
	}
}

// effective is what state s makes of instance name: "tier role health".
func (h *loopHarness) effective(s *dr.State, name string) string {
	f, _ := h.hub.Fleet.Get()
	p, _ := h.hub.Policy.Get()
	ef, _ := dr.Effective(f, p, s)
	for _, in := range ef.Instances {
		if in.Name == name {
			return fmt.Sprintf("%s %s %s", in.Tier, in.Role, in.Health)
		}
	}
	return "absent"
}

func TestLoopDrainsAFailedPrimaryAndPromotesTheHotStandby(t *testing.T) {
	primary, standby := newModelServer(t), newModelServer(t)
	f := fleetOf(instance(t, "m1-a", primary, topology.TierHot, topology.RolePrimary, 0),
		instance(t, "m1-b", standby, topology.TierHot, topology.RoleStandby, 1))
	h := startLoop(t, f, testPolicy(1, 0, 0), Config{GuardShare: 0.5})
	h.waitState(t, "both checkpoints recorded", func(s *dr.State) bool {
		a, okA := s.Instance("m1-a")
		b, okB := s.Instance("m1-b")
		return okA && okB && a.Checkpoint != nil && b.Checkpoint != nil && a.Checkpoint.ID == "ck-1"
	})

	primary.set("failing")
	s := h.waitState(t, "m1-a drained", func(s *dr.State) bool { return h.effective(s, "m1-a") == "hot primary unhealthy" })
	if _, failed := primary.counts(); failed < threshold {
		t.Errorf("m1-a drained after %d failed probes, want at least failoverThreshold %d", failed, threshold)
	}
	if got := h.effective(s, "m1-b"); got != "hot primary serving" {
		t.Errorf("m1-b is %q, want the promoted primary", got)
	}
	if len(s.Incidents) != 1 {
		t.Fatalf("incidents %+v, want one", s.Incidents)
	}
	inc := s.Incidents[0]
	if inc.Instance != "m1-a" || inc.Failure != dr.FailureProbe || inc.Replacement != "m1-b" {
		t.Errorf("incident %+v: want m1-a's probe failure replaced by m1-b", inc)
	}
	stages := []time.Time{inc.DetectedAt, inc.DrainedAt, inc.PromotionStartedAt, inc.PromotedReadyAt}
	for i, at := range stages {
		if at.IsZero() || (i > 0 && at.Before(stages[i-1])) {
			t.Errorf("stages detected, drained, promotion started, ready = %v: each must be set, in order", stages)
			break
		}
	}
	logged := parseIncidents(t, h.log.String())
	if len(logged) == 0 || !logged[len(logged)-1].DrainedAt.Equal(inc.DrainedAt) {
		t.Errorf("incident log %+v, want its last line to be the drained incident", logged)
	}
	if n := testutil.CollectAndCount(h.registry, "inferxds_dr_recovery_seconds"); n == 0 {
		t.Error("no recovery-time series after an incident")
	}
}

func TestLoopGuardHoldsWhenMostInstancesFail(t *testing.T) {
	servers := []*modelServer{newModelServer(t), newModelServer(t), newModelServer(t)}
	f := fleetOf(instance(t, "m1-a", servers[0], topology.TierHot, topology.RolePrimary, 0),
		instance(t, "m1-b", servers[1], topology.TierHot, topology.RolePrimary, 1),
		instance(t, "m1-c", servers[2], topology.TierHot, topology.RoleStandby, 2))
	h := startLoop(t, f, testPolicy(1, 0, 0), Config{GuardShare: 0.5})
	h.waitState(t, "checkpoints recorded", func(s *dr.State) bool { return len(s.Instances) == 3 })

	servers[0].set("failing")
	servers[1].set("failing")
	// A round starts only once the one before was folded in: a probe
	// beyond threshold+1 means threshold+1 failing rounds were observed.
	testpoll.Until(t, "failing rounds past the threshold", func() bool {
		_, a := servers[0].counts()
		_, b := servers[1].counts()
		return a >= threshold+2 && b >= threshold+2
	})
	s, _ := h.hub.DR.Get()
	if len(s.Incidents) != 0 || h.effective(s, "m1-a") != "hot primary serving" {
		t.Errorf("2 of 3 failing at once: incidents %+v, m1-a %q; want the last known state kept", s.Incidents, h.effective(s, "m1-a"))
	}
	if got := testutil.ToFloat64(h.loop.metrics.guardHeld); got != 1 {
		t.Errorf("inferxds_dr_guard_held = %v, want 1", got)
	}

	servers[1].set("serving")
	h.waitState(t, "m1-a drained once the guard released", func(s *dr.State) bool { return h.effective(s, "m1-a") == "hot primary unhealthy" })
	if got := testutil.ToFloat64(h.loop.metrics.guardHeld); got != 0 {
		t.Errorf("inferxds_dr_guard_held = %v after one of three failing, want 0", got)
	}
}

// fakeActuator answers each action with the instance the test prepared,
// or an error, and records what it was asked.
type fakeActuator struct {
	mu      sync.Mutex
	asked   []dr.Action
	answers map[dr.ActionKind]topology.Instance
	fail    error
}

func (a *fakeActuator) Do(_ context.Context, act dr.Action) (topology.Instance, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked = append(a.asked, act)
	if a.fail != nil {
		return topology.Instance{}, a.fail
	}
	return a.answers[act.Kind], nil
}

func (a *fakeActuator) kinds() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, act := range a.asked {
		out = append(out, string(act.Kind)+" "+act.Instance)
	}
	return out
}

func TestLoopWakesAWarmStandbyThroughTheActuator(t *testing.T) {
	primary, woken := newModelServer(t), newModelServer(t)
	f := fleetOf(instance(t, "m1-a", primary, topology.TierHot, topology.RolePrimary, 0),
		instance(t, "m1-w", woken, topology.TierWarm, topology.RoleStandby, 0))
	host, port := woken.hostPort(t)
	act := &fakeActuator{answers: map[dr.ActionKind]topology.Instance{
		dr.ActionWake:   {Address: host, Port: port, Node: "n1", GPUs: []int{1}},
		dr.ActionCreate: {Address: "127.0.0.1", Port: 1, Zone: "az-1"},
	}}
	h := startLoop(t, f, testPolicy(0, 1, 0), Config{Actuator: act})

	primary.set("failing")
	s := h.waitState(t, "m1-w woken as the primary", func(s *dr.State) bool { return h.effective(s, "m1-w") == "hot primary serving" })
	if st, _ := s.Instance("m1-w"); st.Node != "n1" || fmt.Sprint(st.GPUs) != "[1]" {
		t.Errorf("m1-w placed at %s %v, want where the actuator put it (n1 [1])", st.Node, st.GPUs)
	}
	inc := s.Incidents[0]
	if inc.Replacement != "m1-w" || inc.PromotedReadyAt.IsZero() || inc.PromotedReadyAt.Before(inc.PromotionStartedAt) {
		t.Errorf("incident %+v: want m1-w ready after its promotion started", inc)
	}
	s = h.waitState(t, "the incident restored", func(s *dr.State) bool { return !s.Incidents[0].RestoredAt.IsZero() })
	if got := h.effective(s, "m1-cold-1"); got != "warm standby serving" {
		t.Errorf("m1-cold-1 is %q, want the warm standby created and loaded in place of the woken one", got)
	}
	asked := act.kinds()
	if !slices.Contains(asked, "wake m1-w") || slices.Index(asked, "create m1-cold-1") < 0 ||
		slices.Index(asked, "load m1-cold-1") < slices.Index(asked, "create m1-cold-1") {
		t.Errorf("actuator asked %q, want the wake, and the create before the load", asked)
	}
}

func TestLoopRetriesAFailedActionAndKeepsTheState(t *testing.T) {
	primary, woken := newModelServer(t), newModelServer(t)
	f := fleetOf(instance(t, "m1-a", primary, topology.TierHot, topology.RolePrimary, 0),
		instance(t, "m1-w", woken, topology.TierWarm, topology.RoleStandby, 0))
	act := &fakeActuator{fail: fmt.Errorf("no GPU free")}
	h := startLoop(t, f, testPolicy(0, 1, 0), Config{Actuator: act})

	primary.set("failing")
	h.waitState(t, "m1-a drained", func(s *dr.State) bool { return h.effective(s, "m1-a") == "hot primary unhealthy" })
	testpoll.Until(t, "the wake asked for again after its backoff", func() bool {
		n := 0
		for _, k := range act.kinds() {
			if k == "wake m1-w" {
				n++
			}
		}
		return n >= 2
	})
	s, _ := h.hub.DR.Get()
	if got := h.effective(s, "m1-w"); got == "hot primary serving" {
		t.Errorf("m1-w is %q though every wake failed", got)
	}
	if got := testutil.ToFloat64(h.loop.metrics.actions.WithLabelValues("wake", "error")); got < 1 {
		t.Errorf("failed wakes counted %v, want at least 1", got)
	}
}

func TestLoopNotLeadingDoesNothing(t *testing.T) {
	primary := newModelServer(t)
	primary.set("failing")
	f := fleetOf(instance(t, "m1-a", primary, topology.TierHot, topology.RolePrimary, 0))
	act := &fakeActuator{}
	h := startLoop(t, f, testPolicy(0, 0, 1), Config{Actuator: act, Leading: func() bool { return false }})
	leader := &dr.State{Instances: []dr.InstanceState{{Name: "m1-a", Model: "m1", Health: topology.HealthUnhealthy}}}
	h.hub.DR.Publish(leader)
	if err := h.loop.FailBack("az-1"); err == nil {
		t.Error("fail-back on a replica that does not lead succeeded")
	}
	if probes, _ := primary.counts(); probes != 0 {
		t.Errorf("a replica that does not lead probed %d times", probes)
	}
	if s, _ := h.hub.DR.Get(); s != leader || len(act.kinds()) != 0 {
		t.Errorf("state %+v, actions %q: want the leader's state kept and nothing actuated", s, act.kinds())
	}
}

func TestLoopReportedFailureIsDrained(t *testing.T) {
	primary, standby := newModelServer(t), newModelServer(t)
	f := fleetOf(instance(t, "m1-a", primary, topology.TierHot, topology.RolePrimary, 0),
		instance(t, "m1-b", standby, topology.TierHot, topology.RoleStandby, 1))
	h := startLoop(t, f, testPolicy(1, 0, 0), Config{ProbeInterval: time.Hour})
	faultAt := time.Now().Add(-time.Second)
	h.loop.Report(dr.Failure{Instance: "m1-a", Type: dr.FailureGPU, FaultAt: faultAt})
	s := h.waitState(t, "m1-a drained", func(s *dr.State) bool { return h.effective(s, "m1-a") == "hot primary unhealthy" })
	if inc := s.Incidents[0]; inc.Failure != dr.FailureGPU || !inc.FaultAt.Equal(faultAt) || inc.DetectedAt.IsZero() {
		t.Errorf("incident %+v: want the GPU failure with its fault time", inc)
	}
}

func TestLoopReportsTelemetryFailures(t *testing.T) {
	a, b, c := newModelServer(t), newModelServer(t), newModelServer(t)
	f := fleetOf(instance(t, "m1-a", a, topology.TierHot, topology.RolePrimary, 0),
		instance(t, "m1-b", b, topology.TierHot, topology.RoleStandby, 1),
		instance(t, "m1-c", c, topology.TierHot, topology.RoleStandby, 2))
	f.Nodes = append(f.Nodes, topology.Node{Name: "n2", Zone: "az-1"})
	f.Instances[2].Node = "n2"
	h := startLoop(t, f, testPolicy(1, 0, 0), Config{ProbeInterval: time.Hour})

	xid := fleetOf(f.Instances...)
	xid.Nodes = f.Nodes
	xid.Nodes[0].GPUs = append([]topology.GPU(nil), f.Nodes[0].GPUs...)
	xid.Nodes[0].GPUs[0].Health, xid.Nodes[0].GPUs[0].LastXID = topology.HealthUnhealthy, 79
	xid.Instances = append([]topology.Instance(nil), f.Instances...)
	xid.Instances[0].Health = topology.HealthUnhealthy
	h.hub.Telemetry.Publish(xid)
	s := h.waitState(t, "m1-a's GPU failure recorded", func(s *dr.State) bool { return len(s.Incidents) == 1 })
	if inc := s.Incidents[0]; inc.Instance != "m1-a" || inc.Failure != dr.FailureGPU || inc.Replacement != "m1-b" {
		t.Errorf("incident %+v: want m1-a's GPU failure, m1-b promoted", inc)
	}

	down := fleetOf(xid.Instances...)
	down.Nodes = append([]topology.Node(nil), xid.Nodes...)
	down.Nodes[1].Health = topology.HealthUnhealthy
	h.hub.Telemetry.Publish(down)
	s = h.waitState(t, "n2 down recorded", func(s *dr.State) bool { return len(s.Incidents) == 2 })
	for _, inc := range s.Incidents {
		if inc.Instance == "m1-a" && inc.Failure != dr.FailureGPU || inc.Instance == "m1-c" && inc.Failure != dr.FailureNodeDown {
			t.Errorf("incident %+v: want m1-a's GPU failure once and m1-c's node down", inc)
		}
	}
}

func TestLoopFailsAZoneOverAndBackOnlyOnCommand(t *testing.T) {
	primary, remote := newModelServer(t), newModelServer(t)
	f := fleetOf(instance(t, "m1-a", primary, topology.TierHot, topology.RolePrimary, 0),
		instance(t, "m1-z", remote, topology.TierHot, topology.RolePrimary, 0))
	f.Zones = append(f.Zones, topology.Zone{Name: "az-2", Role: topology.ZoneStandby})
	f.Nodes = append(f.Nodes, topology.Node{Name: "n2", Zone: "az-2", GPUs: []topology.GPU{{Index: 0, MemoryTotalMiB: 1000}}})
	f.Instances[1].Node, f.Instances[1].Zone = "n2", "az-2"
	p := testPolicy(0, 0, 0)
	p.AZFailover.StandbyZone = "az-2"
	h := startLoop(t, f, p, Config{})
	if err := h.loop.FailBack("az-1"); err == nil {
		t.Error("fail-back of a zone that never failed over succeeded")
	}

	primary.set("failing")
	h.waitState(t, "az-1 failed over to az-2", func(s *dr.State) bool { return len(s.Zones) == 2 })
	primary.set("serving")
	probes, _ := primary.counts()
	testpoll.Until(t, "probes of the recovered primary", func() bool {
		n, _ := primary.counts()
		return n >= probes+2
	})
	if s, _ := h.hub.DR.Get(); len(s.Zones) != 2 {
		t.Fatalf("zones %v: the loop failed back by itself", s.Zones)
	}

	if err := h.loop.FailBack("az-1"); err != nil {
		t.Fatal(err)
	}
	s := h.waitState(t, "zones back to their roles", func(s *dr.State) bool { return len(s.Zones) == 0 })
	if got := h.effective(s, "m1-a"); got != "hot primary serving" {
		t.Errorf("m1-a after fail-back is %q, want serving as a primary again", got)
	}
}

func TestLoopDeepProbeFindsACorruptModel(t *testing.T) {
	primary, standby := newModelServer(t), newModelServer(t)
	f := fleetOf(instance(t, "m1-a", primary, topology.TierHot, topology.RolePrimary, 0),
		instance(t, "m1-b", standby, topology.TierHot, topology.RoleStandby, 1))
	h := startLoop(t, f, testPolicy(1, 0, 0), Config{})

	primary.setCorrupt()
	s := h.waitState(t, "m1-a drained", func(s *dr.State) bool { return h.effective(s, "m1-a") == "hot primary unhealthy" })
	if inc := s.Incidents[0]; inc.Failure != dr.FailureModelCorruption || inc.Replacement != "m1-b" {
		t.Errorf("incident %+v: want m1-a's model corruption, m1-b promoted", inc)
	}
	if _, failed := primary.counts(); failed != 0 {
		t.Errorf("m1-a's /healthz failed %d probes; corruption must be found by the deep probe alone", failed)
	}
}

func vllmInstance(t *testing.T, name string, v *vllmServer, role topology.Role, gpu int) topology.Instance {
	t.Helper()
	host, port, err := net.SplitHostPort(v.addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return topology.Instance{Name: name, Model: "m1", Node: "n1", Zone: "az-1", Address: host, Port: uint32(p),
		Tier: topology.TierHot, Role: role, Health: topology.HealthServing, GPUs: []int{gpu}}
}

func TestLoopProbesVLLMServers(t *testing.T) {
	primary, standby := newVLLMServer(t), newVLLMServer(t)
	f := fleetOf(vllmInstance(t, "m1-a", primary, topology.RolePrimary, 0), vllmInstance(t, "m1-b", standby, topology.RoleStandby, 1))
	h := startLoop(t, f, testPolicy(1, 0, 0), Config{GuardShare: 0.9})

	// A round starts only once the one before was folded in: threshold+2
	// probes mean threshold+1 serving rounds were judged.
	testpoll.Until(t, "rounds past the threshold", func() bool { return primary.count("GET /health") >= threshold+2 })
	if s, _ := h.hub.DR.Get(); s != nil && len(s.Incidents) != 0 {
		t.Fatalf("serving vLLM instances: incidents %+v, want none", s.Incidents)
	}
	if n := primary.count("GET /healthz"); n != 1 {
		t.Errorf("m1-a was asked /healthz %d times; once its API is known, want only vLLM's", n)
	}
	if n := primary.count("POST /v1/models/m1/predict") + primary.count("POST /v1/completions"); n != 0 {
		t.Errorf("m1-a was deep-probed %d times; vLLM has no deep probe without one in the policy", n)
	}

	primary.set(http.StatusServiceUnavailable, false)
	s := h.waitState(t, "m1-a drained", func(s *dr.State) bool { return h.effective(s, "m1-a") == "hot primary unhealthy" })
	if inc := s.Incidents[0]; inc.Failure != dr.FailureProbe || inc.Replacement != "m1-b" {
		t.Errorf("incident %+v: want m1-a's probe failure replaced by m1-b", inc)
	}
}

func TestLoopDrainsASleepingVLLMPrimary(t *testing.T) {
	primary, standby := newVLLMServer(t), newVLLMServer(t)
	f := fleetOf(vllmInstance(t, "m1-a", primary, topology.RolePrimary, 0), vllmInstance(t, "m1-b", standby, topology.RoleStandby, 1))
	h := startLoop(t, f, testPolicy(1, 0, 0), Config{GuardShare: 0.9})

	primary.set(http.StatusOK, true)
	s := h.waitState(t, "m1-a drained", func(s *dr.State) bool { return h.effective(s, "m1-a") == "hot primary unhealthy" })
	if got := h.effective(s, "m1-b"); got != "hot primary serving" {
		t.Errorf("m1-b is %q, want the promoted primary", got)
	}
	if n := primary.count("GET /is_sleeping"); n < threshold {
		t.Errorf("m1-a drained after %d /is_sleeping answers, want at least failoverThreshold %d", n, threshold)
	}
}

func TestLoopDeepProbeFindsACorruptVLLMModel(t *testing.T) {
	primary, standby := newVLLMServer(t), newVLLMServer(t)
	f := fleetOf(vllmInstance(t, "m1-a", primary, topology.RolePrimary, 0), vllmInstance(t, "m1-b", standby, topology.RoleStandby, 1))
	p := testPolicy(1, 0, 0)
	p.Models[0].DeepProbe = &drpolicy.DeepProbe{Prompt: "The capital of France is", Expect: "Paris", MaxTokens: 4}
	h := startLoop(t, f, p, Config{})

	testpoll.Until(t, "m1-a deep-probed", func() bool { return primary.count("POST /v1/completions") > 0 })
	primary.setCompletion(" Lyon.")
	s := h.waitState(t, "m1-a drained", func(s *dr.State) bool { return h.effective(s, "m1-a") == "hot primary unhealthy" })
	if inc := s.Incidents[0]; inc.Failure != dr.FailureModelCorruption || inc.Replacement != "m1-b" {
		t.Errorf("incident %+v: want m1-a's model corruption, m1-b promoted", inc)
	}
}

func TestLoopFindsTheAPIAgainWhenAnInstanceMoves(t *testing.T) {
	sim, standby := newModelServer(t), newModelServer(t)
	simStandby := instance(t, "m1-b", standby, topology.TierHot, topology.RoleStandby, 1)
	h := startLoop(t, fleetOf(instance(t, "m1-a", sim, topology.TierHot, topology.RolePrimary, 0), simStandby), testPolicy(1, 0, 0), Config{})
	testpoll.Until(t, "m1-a probed as modelsim", func() bool { probes, _ := sim.counts(); return probes >= 2 })

	// m1-a comes back at a new address, served by vLLM: the modelsim API
	// learned at the old one must not be asked there.
	moved := newVLLMServer(t)
	h.hub.Fleet.Publish(fleetOf(vllmInstance(t, "m1-a", moved, topology.RolePrimary, 0), simStandby))
	testpoll.Until(t, "rounds past the threshold at the new address", func() bool { return moved.count("GET /health") >= threshold+2 })
	if s, _ := h.hub.DR.Get(); s != nil && len(s.Incidents) != 0 {
		t.Fatalf("incidents %+v after m1-a moved to a serving vLLM server, want none", s.Incidents)
	}
	if n := moved.count("GET /healthz"); n != 1 {
		t.Errorf("the new server was asked /healthz %d times, want once, to find its API", n)
	}
}
