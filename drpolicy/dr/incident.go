package dr

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
)

// recordFailures drains each newly failed instance (a state change only)
// and opens its incident. A failure of an instance already drained with
// an incident open is the same failure seen again.
func (p *planner) recordFailures() {
	for _, f := range p.in.Failures {
		in, ok := p.instance(f.Instance)
		switch {
		case !ok:
			p.note("failure of unknown instance %s ignored", f.Instance)
		case in.Health == topology.HealthUnhealthy && p.openFor(in.Name) != nil:
		default:
			p.drain(in, f)
		}
	}
}

func (p *planner) drain(in topology.Instance, f Failure) {
	detected := f.At
	if detected.IsZero() {
		detected = p.in.Now
	}
	inc := Incident{
		ID: fmt.Sprintf("%s/%s/%d", in.Model, in.Name, detected.UnixMilli()), Model: in.Model, Instance: in.Name,
		Zone: in.Zone, Failure: f.Type, FaultAt: f.FaultAt, DetectedAt: detected,
	}
	p.s.edit(in.Name, in.Model, func(st *InstanceState) { st.Health = topology.HealthUnhealthy })
	if p.s.incident(inc.ID) == nil {
		p.s.Incidents = append(p.s.Incidents, inc)
		p.s.Sort()
	}
	p.refresh()
	reason := string(f.Type)
	if f.Detail != "" {
		reason += ": " + f.Detail
	}
	p.emit(Action{Kind: ActionDrain, Model: in.Model, Instance: in.Name, Zone: in.Zone, Incident: inc.ID, Reason: reason})
}

// recordRecovered lifts the drain of instances serving again, except
// primaries: a failed primary has been (or is being) replaced, and
// bringing it back would flap traffic.
func (p *planner) recordRecovered() {
	for _, name := range p.in.Recovered {
		if st, ok := p.s.Instance(name); ok && st.Health == topology.HealthUnhealthy && p.roleOf(name) != topology.RolePrimary {
			p.s.edit(name, st.Model, func(st *InstanceState) { st.Health = "" })
		}
	}
	p.refresh()
}

func (p *planner) roleOf(name string) topology.Role {
	in, _ := p.instance(name)
	return in.Role
}

// openFor is the open incident of an instance, or nil.
func (p *planner) openFor(instance string) *Incident {
	for i := range p.s.Incidents {
		if inc := &p.s.Incidents[i]; inc.Open() && inc.Instance == instance {
			return inc
		}
	}
	return nil
}

// unreplaced is the model's earliest open incident no replacement was
// raised for yet, or nil.
func (p *planner) unreplaced(model string) *Incident {
	var found *Incident
	for i := range p.s.Incidents {
		inc := &p.s.Incidents[i]
		if inc.Open() && inc.Model == model && inc.Replacement == "" && (found == nil || inc.DetectedAt.Before(found.DetectedAt)) {
			found = inc
		}
	}
	return found
}

// replacedBy is the open incident the named instance is being raised
// for, or nil.
func (p *planner) replacedBy(instance string) *Incident {
	for i := range p.s.Incidents {
		if inc := &p.s.Incidents[i]; inc.Open() && inc.Replacement == instance {
			return inc
		}
	}
	return nil
}

// openIncidentID is the ID of the model's earliest open incident, or "".
func (p *planner) openIncidentID(model string) string {
	var found *Incident
	for i := range p.s.Incidents {
		if inc := &p.s.Incidents[i]; inc.Open() && inc.Model == model && (found == nil || inc.DetectedAt.Before(found.DetectedAt)) {
			found = inc
		}
	}
	if found == nil {
		return ""
	}
	return found.ID
}

// startPromotion records on the incident (if any) the instance raised in
// its failed instance's place, and returns the incident's ID. An instance
// raised again (its earlier action failed) keeps the incident it was
// first raised for.
func (p *planner) startPromotion(inc *Incident, replacement string) string {
	if prior := p.replacedBy(replacement); prior != nil {
		inc = prior
	}
	if inc == nil {
		return ""
	}
	inc.Replacement = replacement
	if inc.PromotionStartedAt.IsZero() {
		inc.PromotionStartedAt = p.in.Now
	}
	return inc.ID
}

// closeIncidents marks restored the open incidents of every model whose
// primaries and standbys are all back to policy, and forgets the oldest
// resolved ones beyond KeepResolved.
func (p *planner) closeIncidents() {
	for i := range p.s.Incidents {
		inc := &p.s.Incidents[i]
		if m, ok := p.model(inc.Model); ok && inc.Open() && p.restored(m) {
			inc.RestoredAt = p.in.Now
		}
	}
	p.s.Incidents = keepResolved(p.s.Incidents, p.opts.KeepResolved)
}

func (p *planner) restored(m drpolicy.Model) bool {
	c := p.count(m.Name, false)
	return c.primaries >= p.target(m.Name) && c.hot >= m.HotStandby && c.warm >= m.WarmStandby && c.cold >= m.ColdStandby
}

// keepResolved drops all but the keep most recently restored resolved
// incidents.
func keepResolved(incs []Incident, keep int) []Incident {
	var resolved []Incident
	for _, inc := range incs {
		if !inc.Open() {
			resolved = append(resolved, inc)
		}
	}
	if len(resolved) <= keep {
		return incs
	}
	slices.SortFunc(resolved, func(a, b Incident) int {
		return cmp.Or(b.RestoredAt.Compare(a.RestoredAt), cmp.Compare(b.ID, a.ID))
	})
	drop := resolved[keep:]
	return slices.DeleteFunc(incs, func(inc Incident) bool {
		return slices.ContainsFunc(drop, func(d Incident) bool { return d.ID == inc.ID })
	})
}
