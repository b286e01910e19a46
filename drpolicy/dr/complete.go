package dr

import (
	"time"

	"github.com/inferxds/inferxds/topology"
)

// Complete folds an Actuator's result into the state: the tier the
// instance reached and where it runs, a created instance recorded as
// Added, and the incident's PromotedReadyAt when the instance replaces a
// failed one. An error leaves the state as it was, so the next plan asks
// again.
func Complete(s *State, a Action, got topology.Instance, err error, now time.Time) *State {
	if err != nil || a.Kind.StateOnly() {
		return s
	}
	out := s.clone()
	if a.Kind == ActionCreate {
		out.edit(a.Instance, a.Model, func(st *InstanceState) { st.Added = created(a, got) })
	} else {
		out.edit(a.Instance, a.Model, func(st *InstanceState) {
			st.reached(a, got)
			if st.Added != nil {
				st.Added = refreshed(*st.Added, got)
			}
		})
	}
	if inc := out.incident(a.Incident); inc != nil && inc.Replacement == a.Instance && inc.PromotedReadyAt.IsZero() && a.Tier == topology.TierHot {
		inc.PromotedReadyAt = now
	}
	return out
}

// reached records the tier an instance reached, and where a wake put it.
func (st *InstanceState) reached(a Action, got topology.Instance) {
	st.Tier = a.Tier
	st.Health = ""
	if a.Kind == ActionWake {
		st.Node, st.GPUs = orElse(got.Node, a.Node), got.GPUs
		if len(st.GPUs) == 0 {
			st.GPUs = a.GPUs
		}
	}
}

// refreshed is an instance the engine added, as the Actuator's answer to a
// later action says it now runs: its health and, when given, address.
func refreshed(in, got topology.Instance) *topology.Instance {
	if got.Health != "" {
		in.Health = got.Health
	}
	if got.Address != "" {
		in.Address, in.Port = got.Address, got.Port
	}
	return &in
}

// created is the instance a create made, with what the action asked for
// wherever the Actuator's answer leaves a field out.
func created(a Action, got topology.Instance) *topology.Instance {
	in := got
	in.Name, in.Model, in.Tier, in.Role = a.Instance, a.Model, a.Tier, a.CreatedRole()
	in.Zone, in.Node = orElse(got.Zone, a.Zone), orElse(got.Node, a.Node)
	if len(in.GPUs) == 0 {
		in.GPUs = a.GPUs
	}
	return &in
}

func orElse(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
