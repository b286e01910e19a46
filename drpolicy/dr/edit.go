package dr

import (
	"cmp"
	"slices"

	"github.com/inferxds/inferxds/topology"
)

// clone copies the state deeply enough that editing the copy's slices
// leaves s alone (an Added instance is replaced, never edited in place).
func (s *State) clone() *State {
	if s == nil {
		return &State{}
	}
	return &State{Instances: slices.Clone(s.Instances), Zones: slices.Clone(s.Zones), Incidents: slices.Clone(s.Incidents)}
}

// edit changes the named instance's record, adding it where there is none
// and dropping it when nothing is left to say.
func (s *State) edit(name, model string, fn func(*InstanceState)) {
	i, ok := slices.BinarySearchFunc(s.Instances, name, func(x InstanceState, n string) int { return cmp.Compare(x.Name, n) })
	if !ok {
		s.Instances = slices.Insert(s.Instances, i, InstanceState{Name: name, Model: model})
	}
	fn(&s.Instances[i])
	if s.Instances[i].empty() {
		s.Instances = slices.Delete(s.Instances, i, i+1)
	}
}

func (st InstanceState) empty() bool {
	return st.Tier == "" && st.Role == "" && st.Health == "" && st.Added == nil &&
		st.Node == "" && st.Checkpoint == nil
}

// setZoneRole records a zone's role, dropping the record when the role is
// the fleet's own.
func (s *State) setZoneRole(zone string, role, configured topology.ZoneRole) {
	s.Zones = slices.DeleteFunc(s.Zones, func(z topology.Zone) bool { return z.Name == zone })
	if role != configured {
		s.Zones = append(s.Zones, topology.Zone{Name: zone, Role: role})
	}
	s.Sort()
}

// incident returns the incident with the given ID for editing, or nil.
func (s *State) incident(id string) *Incident {
	i, ok := slices.BinarySearchFunc(s.Incidents, id, func(x Incident, id string) int { return cmp.Compare(x.ID, id) })
	if !ok {
		return nil
	}
	return &s.Incidents[i]
}

// WithCheckpoint returns s with the checkpoint an instance reported
// recorded. s is left alone, and returned as it is when that checkpoint is
// already recorded.
func WithCheckpoint(s *State, instance, model string, c Checkpoint) *State {
	if s != nil {
		if st, ok := s.Instance(instance); ok && st.Checkpoint != nil && st.Checkpoint.ID == c.ID && st.Checkpoint.Time.Equal(c.Time) {
			return s
		}
	}
	out := s.clone()
	out.edit(instance, model, func(st *InstanceState) { st.Checkpoint = &c })
	return out
}
