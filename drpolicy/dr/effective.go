package dr

import (
	"slices"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
)

// Effective returns the fleet and policy as translation must see them:
// the state's instance overrides and added instances applied, its zone
// roles in place of the fleet's, and the policy's az_failover rewritten to
// agree with those roles. The result is sorted; the inputs are never
// changed; with no state they are returned as they are.
func Effective(f *topology.Fleet, p *drpolicy.Policy, s *State) (*topology.Fleet, *drpolicy.Policy) {
	if s == nil || (len(s.Instances) == 0 && len(s.Zones) == 0) {
		return f, p
	}
	out := &topology.Fleet{Zones: effectiveZones(f.Zones, s.Zones), Nodes: f.Nodes, Instances: effectiveInstances(f.Instances, s.Instances)}
	out.ApplyDefaults() // an added instance may leave defaults out
	out.Sort()
	if len(s.Zones) == 0 {
		return out, p
	}
	return out, effectivePolicy(p, out.Zones)
}

func effectiveZones(zones, overrides []topology.Zone) []topology.Zone {
	out := slices.Clone(zones)
	for i, z := range out {
		if j := slices.IndexFunc(overrides, func(o topology.Zone) bool { return o.Name == z.Name }); j >= 0 {
			out[i].Role = overrides[j].Role
		}
	}
	return out
}

func effectiveInstances(instances []topology.Instance, states []InstanceState) []topology.Instance {
	out := slices.Clone(instances)
	for i := range out {
		if st, ok := (&State{Instances: states}).Instance(out[i].Name); ok {
			out[i] = st.apply(out[i])
		}
	}
	for _, st := range states {
		if st.Added != nil && !slices.ContainsFunc(instances, func(in topology.Instance) bool { return in.Name == st.Name }) {
			out = append(out, st.apply(*st.Added))
		}
	}
	return out
}

// apply lays the state's non-empty fields over the source's instance.
func (st InstanceState) apply(in topology.Instance) topology.Instance {
	if st.Tier != "" {
		in.Tier = st.Tier
	}
	if st.Role != "" {
		in.Role = st.Role
	}
	if st.Health != "" {
		in.Health = st.Health
	}
	if st.Node != "" {
		in.Node, in.GPUs = st.Node, st.GPUs
	}
	return in
}

// effectivePolicy rewrites az_failover's active and standby zones to the
// effective zone roles, which translation checks agree.
func effectivePolicy(p *drpolicy.Policy, zones []topology.Zone) *drpolicy.Policy {
	if p == nil || p.AZFailover == nil {
		return p
	}
	az := *p.AZFailover
	az.ActiveZones, az.StandbyZone = nil, ""
	for _, z := range zones {
		if z.Role == topology.ZoneStandby {
			az.StandbyZone = z.Name
		} else {
			az.ActiveZones = append(az.ActiveZones, z.Name)
		}
	}
	out := *p
	out.AZFailover = &az
	return &out
}
