package dr

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology"
)

// TestEffectiveTranslates checks what a proxy in a zone is sent once the
// state is applied: each priority's endpoints for llama-2-7b.
func TestEffectiveTranslates(t *testing.T) {
	tests := []struct {
		name  string
		state *State
		group string
		want  [][]string // endpoints by EDS priority
	}{
		{name: "no state: local primaries, remote, hot standby, standby zone", group: "az-1",
			want: [][]string{{"llama-a1", "llama-a2"}, {"llama-b1"}, {"llama-h1"}, {"llama-z1"}}},
		{name: "a drained primary is in no priority", group: "az-1",
			state: &State{Instances: []InstanceState{{Name: "llama-a1", Model: "llama-2-7b", Health: topology.HealthUnhealthy}}},
			want:  [][]string{{"llama-a2"}, {"llama-b1"}, {"llama-h1"}, {"llama-z1"}}},
		{name: "a promoted standby is a local primary in its zone", group: "az-2",
			state: &State{Instances: []InstanceState{
				{Name: "llama-b1", Model: "llama-2-7b", Health: topology.HealthUnhealthy},
				{Name: "llama-h1", Model: "llama-2-7b", Role: topology.RolePrimary},
			}},
			want: [][]string{{"llama-h1"}, {"llama-a1", "llama-a2"}, {"llama-z1"}}},
		{name: "a promoted standby is a remote primary elsewhere", group: "az-1",
			state: &State{Instances: []InstanceState{{Name: "llama-h1", Model: "llama-2-7b", Role: topology.RolePrimary}}},
			want:  [][]string{{"llama-a1", "llama-a2"}, {"llama-b1", "llama-h1"}, {"llama-z1"}}},
		{name: "a woken warm standby is a hot standby", group: "az-1",
			state: &State{Instances: []InstanceState{{Name: "llama-w1", Model: "llama-2-7b", Tier: topology.TierHot}}},
			want:  [][]string{{"llama-a1", "llama-a2"}, {"llama-b1"}, {"llama-w1", "llama-h1"}, {"llama-z1"}}},
		{name: "a failed-over zone's instances move ahead of the failed one's", group: "az-3",
			state: &State{Zones: []topology.Zone{{Name: "az-1", Role: topology.ZoneStandby}, {Name: "az-3", Role: topology.ZoneActive}}},
			want:  [][]string{{"llama-z1"}, {"llama-b1"}, {"llama-h1"}, {"llama-a1", "llama-a2"}}},
		{name: "an added instance is an endpoint", group: "az-1",
			state: &State{Instances: []InstanceState{{Name: "llama-x1", Model: "llama-2-7b", Added: &topology.Instance{
				Name: "llama-x1", Model: "llama-2-7b", Node: "n1", Zone: "az-1", GPUs: []int{2}, Address: "10.0.1.9", Port: 8000,
				Tier: topology.TierHot, Role: topology.RolePrimary}}}},
			want: [][]string{{"llama-a1", "llama-a2", "llama-x1"}, {"llama-b1"}, {"llama-h1"}, {"llama-z1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, p := loadFixture(t)
			ef, ep := Effective(f, p, tt.state)
			r, err := snapshot.Translate(ef, ep, tt.group)
			if err != nil {
				t.Fatal(err)
			}
			if err := snapshot.Validate(r); err != nil {
				t.Fatal(err)
			}
			if got := priorities(t, r, "llama-2-7b"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("endpoints by priority %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEffectiveKeepsInputs(t *testing.T) {
	f, p := loadFixture(t)
	if ef, ep := Effective(f, p, nil); ef != f || ep != p {
		t.Error("nil state: inputs not returned as they are")
	}
	if ef, ep := Effective(f, p, &State{}); ef != f || ep != p {
		t.Error("empty state: inputs not returned as they are")
	}
	f0, p0 := loadFixture(t)
	s := &State{
		Instances: []InstanceState{{Name: "llama-a1", Model: "llama-2-7b", Health: topology.HealthUnhealthy}},
		Zones:     []topology.Zone{{Name: "az-1", Role: topology.ZoneStandby}, {Name: "az-3", Role: topology.ZoneActive}},
	}
	_, ep := Effective(f, p, s)
	if !reflect.DeepEqual(f, f0) || !reflect.DeepEqual(p, p0) {
		t.Error("Effective changed its inputs")
	}
	if !slices.Equal(ep.AZFailover.ActiveZones, []string{"az-2", "az-3"}) || ep.AZFailover.StandbyZone != "az-1" {
		t.Errorf("az_failover %+v does not follow the zone roles", *ep.AZFailover)
	}
}

// priorities lists each EDS priority's endpoint hostnames for a cluster,
// in EDS order (zone, then name).
func priorities(t *testing.T, r *snapshot.Resources, cluster string) [][]string {
	t.Helper()
	for _, cla := range r.Endpoints {
		if cla.GetClusterName() != cluster {
			continue
		}
		var out [][]string
		for _, loc := range cla.GetEndpoints() {
			for len(out) <= int(loc.GetPriority()) {
				out = append(out, nil)
			}
			for _, ep := range loc.GetLbEndpoints() {
				out[loc.GetPriority()] = append(out[loc.GetPriority()], ep.GetEndpoint().GetHostname())
			}
		}
		return out
	}
	t.Fatalf("no endpoints for %s", cluster)
	return nil
}

func TestEffectiveSortsAddedInstances(t *testing.T) {
	f, p := loadFixture(t)
	added := &topology.Instance{Name: "a-first", Model: "llama-2-7b", Zone: "az-1", Address: "10.0.1.9", Port: 8000}
	ef, _ := Effective(f, p, &State{Instances: []InstanceState{{Name: "a-first", Model: "llama-2-7b", Added: added}}})
	if ef.Instances[0].Name != "a-first" {
		t.Errorf("effective fleet starts with %q; an added instance must take its place in name order", ef.Instances[0].Name)
	}
}

func TestWithCheckpointRecordsOnlyAChange(t *testing.T) {
	ck := Checkpoint{ID: "ck-1", Time: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	s := WithCheckpoint(nil, "a", "m", ck)
	if st, ok := s.Instance("a"); !ok || st.Checkpoint == nil || st.Checkpoint.ID != "ck-1" {
		t.Fatalf("state %+v, want a at ck-1", s)
	}
	if again := WithCheckpoint(s, "a", "m", ck); again != s {
		t.Error("the same checkpoint again made a new state")
	}
	next := WithCheckpoint(s, "a", "m", Checkpoint{ID: "ck-2", Time: ck.Time.Add(time.Minute)})
	if st, _ := next.Instance("a"); st.Checkpoint.ID != "ck-2" {
		t.Errorf("a at %+v, want ck-2", st.Checkpoint)
	}
	if st, _ := s.Instance("a"); st.Checkpoint.ID != "ck-1" {
		t.Errorf("the earlier state changed to %+v", st.Checkpoint)
	}
}
