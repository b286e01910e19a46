package dr

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
)

var t0 = time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)

// planCase is one planning scenario on the test fleet: what changed, and
// what the planner must ask for and record.
type planCase struct {
	name      string
	edit      func(*topology.Fleet, *drpolicy.Policy)
	state     *State
	failures  []Failure
	recovered []string
	inFlight  []Action
	opts      Options
	// wantActions are the actions in order, as "kind instance" with the
	// placement after '@' for the ones that take GPUs; nil is not checked.
	wantActions []string
	// wantInstances are instances as the next state shows them:
	// "tier role health".
	wantInstances map[string]string
	// wantNotes are fragments that some note must contain.
	wantNotes []string
	check     func(*testing.T, Decision)
}

func crash(instance string) Failure {
	return Failure{Instance: instance, Type: FailureProcessCrash, At: t0, FaultAt: t0.Add(-time.Second)}
}

func TestPlan(t *testing.T) {
	for _, c := range planCases() {
		t.Run(c.name, func(t *testing.T) { runPlanCase(t, c) })
	}
}

func runPlanCase(t *testing.T, c planCase) {
	t.Helper()
	f, p := loadFixture(t)
	if c.edit != nil {
		c.edit(f, p)
	}
	in := Input{Fleet: f, Policy: p, State: c.state, Failures: c.failures, Recovered: c.recovered, InFlight: c.inFlight, Now: t0, Options: c.opts}
	d := Plan(in)
	if got := describeActions(d.Actions); c.wantActions != nil && !slices.Equal(got, c.wantActions) {
		t.Errorf("actions:\n got %q\nwant %q", got, c.wantActions)
	}
	ef, _ := Effective(f, p, d.State)
	for name, want := range c.wantInstances {
		if got := describeInstance(ef, name); got != want {
			t.Errorf("%s is %q, want %q", name, got, want)
		}
	}
	for _, want := range c.wantNotes {
		if !containsNote(d.Notes, want) {
			t.Errorf("no note contains %q; notes: %q", want, d.Notes)
		}
	}
	if c.check != nil {
		c.check(t, d)
	}
	if again := Plan(in); !reflect.DeepEqual(again, d) {
		t.Errorf("the same input planned twice differs:\n%+v\n%+v", d, again)
	}
}

func describeActions(actions []Action) []string {
	out := make([]string, len(actions))
	for i, a := range actions {
		out[i] = string(a.Kind) + " " + a.Instance
		if a.Kind == ActionFailoverZone {
			out[i] += a.Zone
		}
		if a.Node != "" && a.Kind != ActionStop {
			out[i] += fmt.Sprintf("@%s%v", a.Node, a.GPUs)
		}
	}
	return out
}

func describeInstance(f *topology.Fleet, name string) string {
	i := slices.IndexFunc(f.Instances, func(in topology.Instance) bool { return in.Name == name })
	if i < 0 {
		return "absent"
	}
	in := f.Instances[i]
	return fmt.Sprintf("%s %s %s", in.Tier, in.Role, in.Health)
}

func withPolicy(hot, warm, cold int) func(*topology.Fleet, *drpolicy.Policy) {
	return func(_ *topology.Fleet, p *drpolicy.Policy) {
		p.Models[0].HotStandby, p.Models[0].WarmStandby, p.Models[0].ColdStandby = hot, warm, cold
	}
}

func without(names ...string) func(*topology.Fleet, *drpolicy.Policy) {
	return func(f *topology.Fleet, _ *drpolicy.Policy) {
		f.Instances = slices.DeleteFunc(f.Instances, func(in topology.Instance) bool { return slices.Contains(names, in.Name) })
	}
}

// withHotStandby adds a serving hot standby of llama-2-7b on one GPU of a
// node.
func withHotStandby(name, node string, gpu int) func(*topology.Fleet, *drpolicy.Policy) {
	return func(f *topology.Fleet, _ *drpolicy.Policy) {
		n, _ := f.Node(node)
		f.Instances = append(f.Instances, topology.Instance{Name: name, Model: "llama-2-7b", Node: node, Zone: n.Zone, GPUs: []int{gpu},
			Address: "10.0.9." + fmt.Sprint(gpu), Port: 8000, Tier: topology.TierHot, Role: topology.RoleStandby, Health: topology.HealthServing})
		f.Sort()
	}
}

func noZoneFailover(_ *topology.Fleet, p *drpolicy.Policy) { p.AZFailover = nil }

func both(edits ...func(*topology.Fleet, *drpolicy.Policy)) func(*topology.Fleet, *drpolicy.Policy) {
	return func(f *topology.Fleet, p *drpolicy.Policy) {
		for _, e := range edits {
			e(f, p)
		}
	}
}

func outage(instance string) Failure {
	return Failure{Instance: instance, Type: FailureAZOutage, At: t0}
}

// settled is the state once llama-a1's crash was recovered from: llama-h1
// promoted, llama-w1 woken, llama-c1 loaded and a cold standby created; fn
// changes it further.
func settled(fn func(*State)) *State {
	s := &State{
		Instances: []InstanceState{
			{Name: "llama-2-7b-cold-1", Model: "llama-2-7b", Added: &topology.Instance{Name: "llama-2-7b-cold-1", Model: "llama-2-7b",
				Zone: "az-2", Address: "10.0.2.9", Port: 8000, Tier: topology.TierCold, Role: topology.RoleStandby}},
			{Name: "llama-a1", Model: "llama-2-7b", Health: topology.HealthUnhealthy},
			{Name: "llama-c1", Model: "llama-2-7b", Tier: topology.TierWarm},
			{Name: "llama-h1", Model: "llama-2-7b", Role: topology.RolePrimary},
			{Name: "llama-w1", Model: "llama-2-7b", Tier: topology.TierHot, Node: "n1", GPUs: []int{2}},
		},
		Incidents: []Incident{{ID: "llama-2-7b/llama-a1/1", Model: "llama-2-7b", Instance: "llama-a1", Zone: "az-1", Replacement: "llama-h1", DetectedAt: t0}},
	}
	if fn != nil {
		fn(s)
	}
	return s
}

func checkpoints(lags map[string]time.Duration) *State {
	s := &State{}
	for name, lag := range lags {
		s.Instances = append(s.Instances, InstanceState{Name: name, Model: "llama-2-7b", Checkpoint: &Checkpoint{ID: name, Time: t0.Add(-lag)}})
	}
	s.Sort()
	return s
}

func planCases() []planCase {
	return []planCase{
		{name: "nothing failed and the chain is full: nothing to do",
			wantActions: []string{}},
		{name: "crashed primary: drained, the hot standby promoted, the chain refilled",
			failures: []Failure{crash("llama-a1")},
			wantActions: []string{"drain llama-a1", "promote llama-h1", "wake llama-w1@n1[2]", "load llama-c1",
				"create llama-2-7b-cold-1"},
			wantInstances: map[string]string{"llama-a1": "hot primary unhealthy", "llama-h1": "hot primary serving"},
			check: func(t *testing.T, d Decision) {
				want := Incident{ID: fmt.Sprintf("llama-2-7b/llama-a1/%d", t0.UnixMilli()), Model: "llama-2-7b", Instance: "llama-a1",
					Zone: "az-1", Failure: FailureProcessCrash, Replacement: "llama-h1", FaultAt: t0.Add(-time.Second), DetectedAt: t0,
					PromotionStartedAt: t0, PromotedReadyAt: t0}
				if len(d.State.Incidents) != 1 || !reflect.DeepEqual(d.State.Incidents[0], want) {
					t.Errorf("incidents %+v, want [%+v]", d.State.Incidents, want)
				}
				if a := d.Actions[4]; a.Zone != "az-2" || a.Tier != topology.TierCold || len(a.GPUs) != 0 {
					t.Errorf("cold standby created as %+v, want in az-2 (fewest llama instances), cold, no GPUs", a)
				}
			}},
		{name: "no hot standby: a warm one woken as the primary",
			edit: without("llama-h1"), failures: []Failure{crash("llama-a1")},
			wantActions: []string{"drain llama-a1", "wake llama-w1@n1[2]", "load llama-c1",
				"create llama-2-7b-cold-1", "create llama-2-7b-cold-2"},
			wantInstances: map[string]string{"llama-w1": "warm primary serving"},
			check: func(t *testing.T, d Decision) {
				if inc := d.State.Incidents[0]; inc.Replacement != "llama-w1" || !inc.PromotedReadyAt.IsZero() || !inc.PromotionStartedAt.Equal(t0) {
					t.Errorf("incident %+v: want llama-w1 replacing, promotion started, not ready", inc)
				}
			}},
		{name: "only a cold standby: loaded as the primary, woken by a later plan",
			edit: both(without("llama-h1", "llama-w1", "llama-z1"), withPolicy(0, 0, 0)), failures: []Failure{crash("llama-a1")},
			wantActions:   []string{"drain llama-a1", "load llama-c1"},
			wantInstances: map[string]string{"llama-c1": "cold primary serving"}},
		{name: "the failed primary's zone is preferred",
			edit:        withHotStandby("llama-h0", "n1", 3),
			failures:    []Failure{crash("llama-a1")},
			wantActions: []string{"drain llama-a1", "promote llama-h0"}},
		{name: "a zone's only primary fails: a hot standby in the zone replaces it, no zone failover",
			edit:        withHotStandby("llama-h2", "n2", 2),
			failures:    []Failure{crash("llama-b1")},
			wantActions: []string{"drain llama-b1", "promote llama-h1"}},
		{name: "a standby lagging the freshest checkpoint by more than rpo is passed over",
			edit:        withHotStandby("llama-h0", "n1", 3),
			state:       checkpoints(map[string]time.Duration{"llama-a2": 0, "llama-h0": 2 * time.Minute, "llama-h1": 10 * time.Second}),
			failures:    []Failure{crash("llama-a1")},
			wantActions: []string{"drain llama-a1", "promote llama-h1"},
			wantNotes:   []string{"standby llama-h0 checkpoint lags the freshest by 2m0s > rpo 1m0s"}},
		{name: "rpo 0: a standby one second behind is passed over while one at the freshest checkpoint exists",
			edit:        both(withHotStandby("llama-h0", "n1", 3), func(_ *topology.Fleet, p *drpolicy.Policy) { p.Models[0].RPO = 0 }),
			state:       checkpoints(map[string]time.Duration{"llama-a2": 0, "llama-h0": time.Second, "llama-h1": 0}),
			failures:    []Failure{crash("llama-a1")},
			wantActions: []string{"drain llama-a1", "promote llama-h1"},
			wantNotes:   []string{"standby llama-h0 checkpoint lags the freshest by 1s > rpo 0s"}},
		{name: "warm standbys below policy: a cold one loaded and a cold one created",
			edit: withPolicy(1, 2, 1), wantActions: []string{"load llama-c1", "create llama-2-7b-cold-1"}},
		{name: "coldStandby 0 and nothing to load for the hot standby: the cold one created says it is to be loaded",
			edit: both(without("llama-w1", "llama-c1"), withPolicy(1, 0, 0)), failures: []Failure{crash("llama-a1")},
			wantActions: []string{"drain llama-a1", "promote llama-h1", "create llama-2-7b-cold-1"},
			check: func(t *testing.T, d Decision) {
				reason := d.Actions[2].Reason
				if strings.Contains(reason, "coldStandby 0") || !strings.Contains(reason, "no cold standby to load") {
					t.Errorf("create reason %q: want why a cold standby is created beyond coldStandby 0", reason)
				}
			}},
		{name: "a warm standby raised once and its wake failed: woken again for the same incident",
			edit: without("llama-h1"),
			state: &State{
				Instances: []InstanceState{{Name: "llama-a1", Model: "llama-2-7b", Health: topology.HealthUnhealthy}, {Name: "llama-w1", Model: "llama-2-7b", Role: topology.RolePrimary}},
				Incidents: []Incident{{ID: "llama-2-7b/llama-a1/1", Model: "llama-2-7b", Instance: "llama-a1", Replacement: "llama-w1", DetectedAt: t0, PromotionStartedAt: t0}},
			},
			wantActions: []string{"wake llama-w1@n1[2]", "load llama-c1", "create llama-2-7b-cold-1", "create llama-2-7b-cold-2"},
			check: func(t *testing.T, d Decision) {
				if a := d.Actions[0]; a.Incident != "llama-2-7b/llama-a1/1" {
					t.Errorf("wake %+v: want it for the incident llama-w1 replaces", a)
				}
			}},
		{name: "promotions rate-limited: a model that started PromotionLimit replacements in the window waits",
			state: &State{Incidents: []Incident{
				{ID: "llama-2-7b/llama-b1/1", Model: "llama-2-7b", Instance: "llama-b1", Replacement: "llama-x", DetectedAt: t0.Add(-30 * time.Second), PromotionStartedAt: t0.Add(-30 * time.Second)},
				{ID: "llama-2-7b/llama-b1/2", Model: "llama-2-7b", Instance: "llama-b1", Replacement: "llama-y", DetectedAt: t0.Add(-90 * time.Second), PromotionStartedAt: t0.Add(-90 * time.Second), RestoredAt: t0.Add(-80 * time.Second)},
			}},
			opts: Options{PromotionLimit: 1}, failures: []Failure{crash("llama-a1")},
			wantActions: []string{"drain llama-a1"},
			wantNotes:   []string{"llama-2-7b: promotion held: 1 replacements started in the last 1m0s (limit 1)"}},
		{name: "promotions rate-limited: one outside the window does not count",
			state: &State{Incidents: []Incident{
				{ID: "llama-2-7b/llama-b1/2", Model: "llama-2-7b", Instance: "llama-b1", Replacement: "llama-y", DetectedAt: t0.Add(-90 * time.Second), PromotionStartedAt: t0.Add(-90 * time.Second), RestoredAt: t0.Add(-80 * time.Second)},
			}},
			opts: Options{PromotionLimit: 1}, failures: []Failure{crash("llama-a1")},
			wantActions: []string{"drain llama-a1", "promote llama-h1", "wake llama-w1@n1[2]", "load llama-c1", "create llama-2-7b-cold-1"}},
		{name: "cold standbys below policy: created with the next free name",
			edit: withPolicy(1, 1, 3), wantActions: []string{"create llama-2-7b-cold-1", "create llama-2-7b-cold-2"}},
		{name: "nothing left to raise: an emergency instance in an active zone",
			edit:        both(without("llama-a2", "llama-b1", "llama-h1", "llama-w1", "llama-c1", "llama-z1"), withPolicy(0, 0, 0), noZoneFailover),
			failures:    []Failure{crash("llama-a1")},
			wantActions: []string{"drain llama-a1", "create llama-2-7b-emergency-1@n1[1]"},
			check: func(t *testing.T, d Decision) {
				if a := d.Actions[1]; !a.Emergency || a.Tier != topology.TierHot || d.State.Incidents[0].Replacement != a.Instance {
					t.Errorf("emergency create %+v, incident %+v", a, d.State.Incidents[0])
				}
			}},
		{name: "recovered: a standby's drain lifted, a replaced primary's kept",
			state: settled(func(s *State) {
				s.edit("llama-c1", "llama-2-7b", func(st *InstanceState) { st.Health = topology.HealthUnhealthy })
			}),
			recovered:     []string{"llama-a1", "llama-c1"},
			wantActions:   []string{},
			wantInstances: map[string]string{"llama-a1": "hot primary unhealthy", "llama-c1": "warm standby serving"}},
		{name: "the chain back to policy: the incident restored",
			state: settled(nil), wantActions: []string{},
			check: func(t *testing.T, d Decision) {
				if inc := d.State.Incidents[0]; !inc.RestoredAt.Equal(t0) {
					t.Errorf("incident %+v not restored at %v", inc, t0)
				}
			}},
		{name: "the chain still short: the incident stays open",
			state: settled(func(s *State) {
				s.edit("llama-c1", "llama-2-7b", func(st *InstanceState) { st.Health = topology.HealthUnhealthy })
			}),
			wantActions: []string{"load llama-2-7b-cold-1", "create llama-2-7b-cold-2"},
			check: func(t *testing.T, d Decision) {
				if !d.State.Incidents[0].RestoredAt.IsZero() {
					t.Errorf("incident %+v restored with no warm standby", d.State.Incidents[0])
				}
			}},
		{name: "resolved incidents beyond KeepResolved: the oldest dropped",
			state: settled(func(s *State) {
				for h := 1; h <= 3; h++ {
					s.Incidents = append(s.Incidents, Incident{ID: fmt.Sprintf("old-%d", h), Model: "llama-2-7b", RestoredAt: t0.Add(-time.Duration(h) * time.Hour)})
				}
				s.Sort()
			}),
			opts: Options{KeepResolved: 2}, wantActions: []string{},
			check: func(t *testing.T, d Decision) {
				var ids []string
				for _, inc := range d.State.Incidents {
					ids = append(ids, inc.ID)
				}
				if want := []string{"llama-2-7b/llama-a1/1", "old-1"}; !slices.Equal(ids, want) {
					t.Errorf("incidents kept %v, want %v", ids, want)
				}
			}},
		{name: "zone outage: the zone fails over, then the chain recovers in the zones left",
			failures: []Failure{outage("llama-a1"), outage("llama-a2"), outage("llama-w1")},
			wantActions: []string{"drain llama-a1", "drain llama-a2", "drain llama-w1", "failover-zone az-1", "promote llama-h1",
				"load llama-c1", "create llama-2-7b-cold-1", "create llama-2-7b-cold-2"},
			check: func(t *testing.T, d Decision) {
				want := []topology.Zone{{Name: "az-1", Role: topology.ZoneStandby}, {Name: "az-3", Role: topology.ZoneActive}}
				if !reflect.DeepEqual(d.State.Zones, want) {
					t.Errorf("zones %v, want %v", d.State.Zones, want)
				}
				if len(d.Notes) != 0 {
					t.Errorf("notes %q, want none (az-3 has room)", d.Notes)
				}
			}},
		{name: "zone outage with a small standby zone: failed over, and noted",
			edit: func(f *topology.Fleet, _ *drpolicy.Policy) {
				f.Nodes[2].GPUs = f.Nodes[2].GPUs[:1]
			},
			failures:  []Failure{outage("llama-a1"), outage("llama-a2")},
			wantNotes: []string{"standby zone az-3 lacks capacity: 1 GPUs for the 2 that az-1's primaries hold"}},
		{name: "a failed-over zone recovering does not fail back by itself",
			state: settled(func(s *State) {
				s.setZoneRole("az-1", topology.ZoneStandby, topology.ZoneActive)
				s.setZoneRole("az-3", topology.ZoneActive, topology.ZoneStandby)
			}),
			recovered: []string{"llama-a1", "llama-a2"},
			check: func(t *testing.T, d Decision) {
				if len(d.State.Zones) != 2 || slices.ContainsFunc(d.Actions, func(a Action) bool { return a.Kind == ActionFailoverZone }) {
					t.Errorf("zones %v after %v: want az-1 still failed over", d.State.Zones, d.Actions)
				}
			}},
		{name: "a repeated failure report opens nothing new",
			state: &State{
				Instances: []InstanceState{{Name: "llama-a1", Model: "llama-2-7b", Health: topology.HealthUnhealthy}, {Name: "llama-h1", Model: "llama-2-7b", Role: topology.RolePrimary}},
				Incidents: []Incident{{ID: "llama-2-7b/llama-a1/1", Model: "llama-2-7b", Instance: "llama-a1", Replacement: "llama-h1", DetectedAt: t0}},
			},
			inFlight: []Action{{Kind: ActionWake, Model: "llama-2-7b", Instance: "llama-w1", Node: "n1", GPUs: []int{2}, Tier: topology.TierHot},
				{Kind: ActionLoad, Model: "llama-2-7b", Instance: "llama-c1", Tier: topology.TierWarm},
				{Kind: ActionCreate, Model: "llama-2-7b", Instance: "llama-2-7b-cold-1", Zone: "az-2", Tier: topology.TierCold}},
			failures:    []Failure{crash("llama-a1")},
			wantActions: []string{},
			check: func(t *testing.T, d Decision) {
				if len(d.State.Incidents) != 1 {
					t.Errorf("incidents %+v, want the one open", d.State.Incidents)
				}
			}},
	}
}
