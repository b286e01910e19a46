package dr

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology"
)

// TestPlanSettles follows a crash through the engine's loop, round by
// round: the actions asked for, planned again while in flight (nothing
// new), completed by an actuator; until a plan asks for nothing, with the
// incident restored.
func TestPlanSettles(t *testing.T) {
	tests := []struct {
		name        string
		edit        func(*topology.Fleet, *drpolicy.Policy)
		replacement string
		rounds      int
	}{
		{name: "hot standby promoted", replacement: "llama-h1", rounds: 1},
		{name: "warm standby woken as the primary, the chain refilled up", edit: without("llama-h1"), replacement: "llama-w1", rounds: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, p := loadFixture(t)
			if tt.edit != nil {
				tt.edit(f, p)
			}
			in := Input{Fleet: f, Policy: p, Failures: []Failure{crash("llama-a1")}, Now: t0}
			s := settle(t, in, tt.rounds)
			inc := s.Incidents[0]
			if inc.Replacement != tt.replacement || inc.RestoredAt.IsZero() || inc.PromotedReadyAt.IsZero() {
				t.Errorf("incident %+v: want %s replacing, ready, restored", inc, tt.replacement)
			}
			ef, ep := Effective(f, p, s)
			if got := describeInstance(ef, tt.replacement); got != "hot primary serving" {
				t.Errorf("%s is %q, want a serving hot primary", tt.replacement, got)
			}
			if _, err := snapshot.Translate(ef, ep, "az-1"); err != nil {
				t.Error(err)
			}
		})
	}
}

// settle plans, checks that planning again with the actions in flight asks
// for nothing, completes them, and repeats until a plan asks for nothing
// (which must take the given number of rounds). It returns the last state.
func settle(t *testing.T, in Input, rounds int) *State {
	t.Helper()
	for round := 0; ; round++ {
		d := Plan(in)
		if len(d.Actions) == 0 {
			if round != rounds {
				t.Errorf("settled after %d rounds, want %d", round, rounds)
			}
			return d.State
		}
		if round == rounds {
			t.Fatalf("round %d still asks for %v", round, describeActions(d.Actions))
		}
		inFlight := actuated(d.Actions)
		in.Failures, in.State, in.InFlight, in.Now = nil, d.State, inFlight, in.Now.Add(time.Second)
		if again := Plan(in); len(again.Actions) != 0 || !reflect.DeepEqual(again.State, d.State) {
			t.Fatalf("round %d planned again with its actions in flight: asked for %v", round, describeActions(again.Actions))
		}
		for i, a := range inFlight {
			in.State = Complete(in.State, a, topology.Instance{Address: "127.0.0.1", Port: uint32(9000 + i)}, nil, in.Now)
		}
		in.InFlight, in.Now = nil, in.Now.Add(time.Second)
	}
}

func actuated(actions []Action) []Action {
	var out []Action
	for _, a := range actions {
		if !a.Kind.StateOnly() {
			out = append(out, a)
		}
	}
	return out
}

func TestCompleteFailedActionIsAskedAgain(t *testing.T) {
	f, p := loadFixture(t)
	d := Plan(Input{Fleet: f, Policy: p, Failures: []Failure{crash("llama-a1")}, Now: t0})
	wake := actuated(d.Actions)[0]
	s := Complete(d.State, wake, topology.Instance{}, errors.New("wake_up: connection refused"), t0)
	if !reflect.DeepEqual(s, d.State) {
		t.Fatal("a failed action changed the state")
	}
	again := Plan(Input{Fleet: f, Policy: p, State: s, InFlight: actuated(d.Actions)[1:], Now: t0.Add(time.Second)})
	if got := describeActions(again.Actions); len(got) != 1 || got[0] != "wake llama-w1@n1[2]" {
		t.Errorf("after the wake failed, asked for %q; want the wake again", got)
	}
}

func TestCompleteRecordsCreatedInstance(t *testing.T) {
	a := Action{Kind: ActionCreate, Model: "m", Instance: "m-emergency-1", Zone: "az-1", Node: "n1", GPUs: []int{3}, Tier: topology.TierHot, Emergency: true, Incident: "m/x/1"}
	s := &State{Incidents: []Incident{{ID: "m/x/1", Model: "m", Replacement: "m-emergency-1"}}}
	got := Complete(s, a, topology.Instance{Address: "127.0.0.1", Port: 9100}, nil, t0)
	st, ok := got.Instance("m-emergency-1")
	want := topology.Instance{Name: "m-emergency-1", Model: "m", Zone: "az-1", Node: "n1", GPUs: []int{3}, Address: "127.0.0.1", Port: 9100,
		Tier: topology.TierHot, Role: topology.RolePrimary}
	if !ok || st.Added == nil || !reflect.DeepEqual(*st.Added, want) {
		t.Errorf("recorded %+v, want Added %+v", st, want)
	}
	if !got.Incidents[0].PromotedReadyAt.Equal(t0) || !s.Incidents[0].PromotedReadyAt.IsZero() {
		t.Errorf("incident %+v (input %+v): want ready at %v, input untouched", got.Incidents[0], s.Incidents[0], t0)
	}
}

func TestCompleteRefreshesAnAddedInstance(t *testing.T) {
	create := Action{Kind: ActionCreate, Model: "m", Instance: "m-cold-1", Zone: "az-1", Tier: topology.TierCold}
	s := Complete(&State{}, create, topology.Instance{Address: "127.0.0.1", Port: 9100, Health: topology.HealthUnknown}, nil, t0)
	wake := Action{Kind: ActionWake, Model: "m", Instance: "m-cold-1", Node: "n1", GPUs: []int{2}, Tier: topology.TierHot}
	s = Complete(s, wake, topology.Instance{Address: "127.0.0.1", Port: 9100, Health: topology.HealthServing}, nil, t0)
	st, _ := s.Instance("m-cold-1")
	if in := st.apply(*st.Added); in.Tier != topology.TierHot || in.Health != topology.HealthServing || in.Node != "n1" {
		t.Errorf("woken created instance is %+v, want hot and serving on n1", in)
	}
}

const reclaimFleet = `
zones: [{name: az-1, role: active}]
nodes:
  - {name: n1, zone: az-1, gpus: [{index: 0, memoryTotalMiB: 81920}, {index: 1, memoryTotalMiB: 81920}]}
instances:
  - {name: crit-a1, model: crit, node: n1, gpus: [0], address: 10.0.0.1, port: 8000}
  - {name: batch-a1, model: batch, node: n1, gpus: [1], address: 10.0.0.2, port: 8000}
  - {name: crit-w1, model: crit, node: n1, address: 10.0.0.3, port: 8000, role: standby, tier: warm}
`

func TestPlanReclaimsForCriticalModels(t *testing.T) {
	tests := []struct {
		name        string
		priority    string
		wantActions []string
		wantNotes   []string
	}{
		{name: "critical: the reclaimable tenant's instance stopped", priority: "critical",
			wantActions: []string{"stop batch-a1", "wake crit-w1@n1[1]"},
			wantNotes:   []string{"crit: stopping batch-a1 of reclaimable tenants", "batch: no GPUs for another instance"}},
		{name: "normal: nothing reclaimed", priority: "normal",
			wantNotes: []string{"crit: no GPUs for another instance"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := topology.ParseFleet("fleet.yaml", []byte(reclaimFleet))
			if err != nil {
				t.Fatal(err)
			}
			p, err := drpolicy.Parse("policy.yaml", []byte(`
tenants: [{name: batch, weight: 1, reclaimable: true}]
models:
  - {name: crit, priority: `+tt.priority+`, hotStandby: 1, warmStandby: 0, coldStandby: 0}
  - {name: batch, priority: low, tenant: batch, hotStandby: 0, warmStandby: 0, coldStandby: 0}
`))
			if err != nil {
				t.Fatal(err)
			}
			d := Plan(Input{Fleet: f, Policy: p, Now: t0})
			if got := describeActions(d.Actions); len(got) != len(tt.wantActions) || (len(got) > 0 && !reflect.DeepEqual(got, tt.wantActions)) {
				t.Errorf("actions %q, want %q", got, tt.wantActions)
			}
			for _, want := range tt.wantNotes {
				if !containsNote(d.Notes, want) {
					t.Errorf("no note contains %q; notes %q", want, d.Notes)
				}
			}
		})
	}
}

func TestFailBack(t *testing.T) {
	f, p := loadFixture(t)
	d := Plan(Input{Fleet: f, Policy: p, Failures: []Failure{outage("llama-a1"), outage("llama-a2")}, Now: t0})
	if _, err := FailBack(d.State, "az-2", t0); err == nil {
		t.Error("failing back a zone that never failed over: no error")
	}
	if _, err := FailBack(nil, "az-1", t0); err == nil {
		t.Error("failing back with no state: no error")
	}
	before := d.State.clone()
	s, err := FailBack(d.State, "az-1", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d.State, before) {
		t.Error("FailBack changed its input")
	}
	ef, ep := Effective(f, p, s)
	r, err := snapshot.Translate(ef, ep, "az-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := priorities(t, r, "llama-2-7b"); !reflect.DeepEqual(got[0], []string{"llama-a1", "llama-a2"}) {
		t.Errorf("after failing back az-1 sees %v first, want its own primaries", got[0])
	}
	for _, inc := range s.Incidents {
		if !inc.RestoredAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("zone outage incident %+v not restored by the fail-back", inc)
		}
	}
}

func containsNote(notes []string, want string) bool {
	return slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, want) })
}

func TestPlanWithoutSources(t *testing.T) {
	s := settled(nil)
	d := Plan(Input{State: s, Failures: []Failure{crash("llama-a1")}, Now: t0})
	if len(d.Actions) != 0 || !reflect.DeepEqual(d.State, s) {
		t.Errorf("with no fleet or policy: asked for %v, state changed %v", d.Actions, !reflect.DeepEqual(d.State, s))
	}
}
