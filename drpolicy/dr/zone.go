package dr

import (
	"fmt"
	"time"

	"github.com/inferxds/inferxds/topology"
)

// StrategyActivePassive is the az_failover strategy under which the
// planner fails a zone over to the standby zone.
const StrategyActivePassive = "active-passive"

// failoverZone fails over the first active zone (by name) whose serving
// primaries, with the zone's own serving hot standbys that can replace
// them, are fewer than ZoneFailoverBelow of the fleet's primaries there:
// the standby zone becomes active and the failed one standby, a state
// change only, before any standby is raised. One zone fails over per plan,
// as there is one standby zone.
func (p *planner) failoverZone() {
	az := p.pol.AZFailover
	standby := p.standbyZone()
	if az == nil || az.Strategy != StrategyActivePassive || standby == "" {
		return
	}
	for _, z := range p.fleet.Zones {
		if src, serving := p.zonePrimaries(z.Name); z.Role != topology.ZoneStandby && src > 0 &&
			float64(serving) < p.opts.ZoneFailoverBelow*float64(src) {
			p.failover(z.Name, standby, serving, src)
			return
		}
	}
}

func (p *planner) standbyZone() string {
	for _, z := range p.fleet.Zones {
		if z.Role == topology.ZoneStandby {
			return z.Name
		}
	}
	return ""
}

// zonePrimaries counts the sources' primaries in a zone, and the zone's
// serving hot instances (primaries, and standbys that could replace them)
// up to that many.
func (p *planner) zonePrimaries(zone string) (src, serving int) {
	for _, in := range p.in.Fleet.Instances {
		if in.Zone == zone && in.Role == topology.RolePrimary {
			src++
		}
	}
	for _, in := range p.fleet.Instances {
		if in.Zone == zone && in.Serving() {
			serving++
		}
	}
	return src, min(serving, src)
}

func (p *planner) failover(failed, standby string, serving, src int) {
	p.checkStandbyCapacity(failed, standby)
	p.s.setZoneRole(failed, topology.ZoneStandby, p.configuredRole(failed))
	p.s.setZoneRole(standby, topology.ZoneActive, p.configuredRole(standby))
	p.refresh()
	p.emit(Action{Kind: ActionFailoverZone, Zone: failed,
		Reason: fmt.Sprintf("%d of %d primaries serving in %s; %s takes over", serving, src, failed, standby)})
}

func (p *planner) configuredRole(zone string) topology.ZoneRole {
	z, _ := p.in.Fleet.Zone(zone)
	return z.Role
}

// checkStandbyCapacity notes when the standby zone's healthy GPUs are
// fewer than the failed zone's primaries hold.
func (p *planner) checkStandbyCapacity(from, standby string) {
	need, have := 0, 0
	for _, in := range p.in.Fleet.Instances {
		if in.Zone == from && in.Role == topology.RolePrimary {
			need += max(1, len(in.GPUs))
		}
	}
	for _, n := range p.fleet.Nodes {
		if n.Zone == standby && !failed(n.Health) {
			have += len(n.GPUs)
		}
	}
	if have < need {
		p.note("standby zone %s lacks capacity: %d GPUs for the %d that %s's primaries hold", standby, have, need, from)
	}
}

// FailBack is the operator's command to return a failed-over zone to
// service: every zone takes its configured role again, the drains of the
// zone's failed instances are lifted and its open zone-outage incidents
// are restored at now. The planner never fails back by itself.
func FailBack(s *State, zone string, now time.Time) (*State, error) {
	if s == nil || !s.failedOver(zone) {
		return nil, fmt.Errorf("dr: zone %q has not failed over", zone)
	}
	out := s.clone()
	out.Zones = nil
	for i := range out.Incidents {
		inc := &out.Incidents[i]
		if inc.Zone != zone {
			continue
		}
		out.edit(inc.Instance, inc.Model, func(st *InstanceState) { st.Health = "" })
		if inc.Open() && inc.Failure == FailureAZOutage {
			inc.RestoredAt = now
		}
	}
	return out, nil
}

func (s *State) failedOver(zone string) bool {
	for _, z := range s.Zones {
		if z.Name == zone && z.Role == topology.ZoneStandby {
			return true
		}
	}
	return false
}
