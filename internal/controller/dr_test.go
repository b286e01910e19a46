package controller

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/internal/hub"
	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology"
)

// drHarness runs a controller with the real translator over a hub whose DR
// value it reads, serving the az-1 Envoy view.
type drHarness struct {
	hub *hub.Hub
	srv *fakeServer
	c   *Controller
}

func startDR(t *testing.T) *drHarness {
	t.Helper()
	h := &drHarness{hub: hub.New(nil), srv: newFakeServer()}
	h.c = New(h.srv, Config{
		Fleet: h.hub.Fleet, Policy: h.hub.Policy, DR: h.hub.DR, Translator: snapshot.NewTranslator(),
		Holdoff: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond,
	})
	runUntilCleanup(t, h.c)
	h.srv.connect(envoyAZ1)
	return h
}

// drFleet: m1's primary m1-a and hot standby m1-b, both serving in az-1.
func drFleet() (*topology.Fleet, *drpolicy.Policy) {
	f := &topology.Fleet{
		Zones: []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}},
		Nodes: []topology.Node{{Name: "n1", Zone: "az-1", GPUs: []topology.GPU{{Index: 0}, {Index: 1}}}},
		Instances: []topology.Instance{
			{Name: "m1-a", Model: "m1", Node: "n1", Zone: "az-1", Address: "10.0.0.1", Port: 8000, GPUs: []int{0},
				Tier: topology.TierHot, Role: topology.RolePrimary, Health: topology.HealthServing},
			{Name: "m1-b", Model: "m1", Node: "n1", Zone: "az-1", Address: "10.0.0.2", Port: 8000, GPUs: []int{1},
				Tier: topology.TierHot, Role: topology.RoleStandby, Health: topology.HealthServing},
		},
	}
	f.ApplyDefaults()
	p := &drpolicy.Policy{Models: []drpolicy.Model{{Name: "m1", HotStandby: 1}}}
	p.ApplyDefaults()
	return f, p
}

// endpointsServed is the m1 cluster's endpoints as the view's snapshot
// has them: "instance@priority", in order.
func (h *drHarness) endpointsServed(t *testing.T) string {
	t.Helper()
	h.srv.mu.Lock()
	defer h.srv.mu.Unlock()
	r := h.srv.served[envoyAZ1]
	if r == nil {
		t.Fatal("no snapshot for az-1/envoy")
	}
	var out []string
	for _, cla := range r.Endpoints {
		for _, loc := range cla.GetEndpoints() {
			for _, ep := range loc.GetLbEndpoints() {
				out = append(out, fmt.Sprintf("%s@%d", ep.GetEndpoint().GetHostname(), loc.GetPriority()))
			}
		}
	}
	return strings.Join(out, " ")
}

func TestControllerTranslatesThroughTheDRState(t *testing.T) {
	h := startDR(t)
	f, p := drFleet()
	h.hub.Policy.Publish(p)
	h.hub.Fleet.Publish(f)
	waitFor(t, h.c, generation(1))
	if got, want := h.endpointsServed(t), "m1-a@0 m1-b@1"; got != want {
		t.Fatalf("before any DR state: endpoints %q, want %q", got, want)
	}

	h.hub.DR.Publish(&dr.State{Instances: []dr.InstanceState{
		{Name: "m1-a", Model: "m1", Health: topology.HealthUnhealthy},
		{Name: "m1-b", Model: "m1", Role: topology.RolePrimary},
	}})
	s := waitFor(t, h.c, generation(2))
	if got, want := h.endpointsServed(t), "m1-b@0"; got != want {
		t.Errorf("primary failed, standby promoted: endpoints %q, want %q", got, want)
	}
	if s.DRVersion != 1 {
		t.Errorf("DRVersion = %d, want 1", s.DRVersion)
	}
}

// TestControllerIgnoresDRChangesTranslationDoesNotRead: incidents and
// checkpoints move nothing in EDS and cause no round.
func TestControllerIgnoresDRChangesTranslationDoesNotRead(t *testing.T) {
	h := startDR(t)
	f, p := drFleet()
	h.hub.Policy.Publish(p)
	h.hub.Fleet.Publish(f)
	drained := dr.State{Instances: []dr.InstanceState{{Name: "m1-a", Model: "m1", Health: topology.HealthUnhealthy}}}
	h.hub.DR.Publish(&drained)
	before := waitFor(t, h.c, func(s Status) bool { return s.DRVersion == 1 && generation(1)(s) })

	withIncident := drained
	withIncident.Incidents = []dr.Incident{{ID: "m1/m1-a/1", Model: "m1", Instance: "m1-a", Failure: dr.FailureProbe, DetectedAt: time.Unix(1, 0)}}
	withIncident.Instances = append([]dr.InstanceState{}, drained.Instances...)
	withIncident.Instances = append(withIncident.Instances, dr.InstanceState{Name: "m1-b", Model: "m1", Checkpoint: &dr.Checkpoint{ID: "ck-2", Time: time.Unix(2, 0)}})
	if !h.hub.DR.Publish(&withIncident) {
		t.Fatal("the hub saw no change")
	}
	after := waitFor(t, h.c, func(s Status) bool { return s.DRVersion == 2 })
	if after.Pending || after.Rounds != before.Rounds {
		t.Errorf("an incident and a checkpoint gave %d extra rounds (pending %v), want 0", after.Rounds-before.Rounds, after.Pending)
	}
	if got, want := h.endpointsServed(t), "m1-b@0"; got != want {
		t.Errorf("endpoints %q, want %q", got, want)
	}
}
