package dr

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
)

// counts are a model's usable instances by what they do.
type counts struct{ primaries, hot, warm, cold int }

func (c *counts) add(role topology.Role, tier topology.Tier, active bool) {
	switch {
	case role == topology.RolePrimary && tier == topology.TierHot && active:
		c.primaries++
	case role == topology.RoleStandby && tier == topology.TierHot:
		c.hot++
	case role == topology.RoleStandby && tier == topology.TierWarm:
		c.warm++
	case role == topology.RoleStandby && tier == topology.TierCold:
		c.cold++
	}
}

func failed(h topology.Health) bool {
	return h == topology.HealthUnhealthy || h == topology.HealthDraining
}

// count counts a model's instances that have not failed. With pending, an
// instance an action is under way for counts as what it becomes: at the
// action's tier, and as a primary when it is being raised to replace one.
func (p *planner) count(model string, pending bool) counts {
	var c counts
	for _, in := range p.fleet.Instances {
		if in.Model == model && !failed(in.Health) {
			c.add(in.Role, p.tierOf(in, pending), p.active(in.Zone))
		}
	}
	if pending {
		for _, a := range p.busy {
			if _, listed := p.instance(a.Instance); !listed && a.Model == model && a.Kind == ActionCreate {
				c.add(a.CreatedRole(), a.Tier, p.active(a.Zone))
			}
		}
	}
	return c
}

func (p *planner) tierOf(in topology.Instance, pending bool) topology.Tier {
	a, busy := p.busy[in.Name]
	switch {
	case !pending || !busy:
		return in.Tier
	case in.Role == topology.RolePrimary && (a.Kind == ActionWake || a.Kind == ActionLoad):
		return topology.TierHot
	default:
		return a.Tier
	}
}

// active reports whether a zone carries traffic now.
func (p *planner) active(zone string) bool {
	z, ok := p.fleet.Zone(zone)
	return ok && z.Role != topology.ZoneStandby
}

// target is how many primaries the sources give a model in their active
// zones: what a recovery restores.
func (p *planner) target(model string) int {
	n := 0
	for _, in := range p.in.Fleet.Instances {
		if z, ok := p.in.Fleet.Zone(in.Zone); in.Model == model && in.Role == topology.RolePrimary && ok && z.Role != topology.ZoneStandby {
			n++
		}
	}
	return n
}

// replacePrimaries raises standbys until the model has its primaries
// back: a hot standby is promoted at once, a warm one woken as a primary,
// a cold one loaded (the next plan wakes it).
func (p *planner) replacePrimaries(m drpolicy.Model) {
	for p.count(m.Name, true).primaries < p.target(m.Name) {
		if !p.raisePrimary(m) {
			return
		}
	}
}

func (p *planner) raisePrimary(m drpolicy.Model) bool {
	inc := p.unreplaced(m.Name)
	if inc != nil && p.promotionsHeld(m) {
		return false
	}
	zone := ""
	if inc != nil {
		zone = inc.Zone
	}
	if in, ok := p.choose(m, p.candidates(m.Name, topology.TierHot, zone, false)); ok {
		p.promote(m, in, inc)
		return true
	}
	if in, ok := p.choose(m, p.candidates(m.Name, topology.TierWarm, zone, true)); ok {
		return p.wake(m, in, inc, true)
	}
	if in, ok := p.choose(m, p.candidates(m.Name, topology.TierCold, zone, true)); ok {
		p.load(m, in, inc, true)
		return true
	}
	return false
}

// promotionsHeld reports, and notes, a model that started PromotionLimit
// replacements within PromotionWindow: no new one starts until the oldest
// leaves the window.
func (p *planner) promotionsHeld(m drpolicy.Model) bool {
	if p.opts.PromotionLimit < 0 {
		return false
	}
	started := 0
	for _, inc := range p.s.Incidents {
		if at := inc.PromotionStartedAt; inc.Model == m.Name && !at.IsZero() && p.in.Now.Sub(at) < p.opts.PromotionWindow {
			started++
		}
	}
	if started < p.opts.PromotionLimit {
		return false
	}
	p.note("%s: promotion held: %d replacements started in the last %v (limit %d)", m.Name, started, p.opts.PromotionWindow, p.opts.PromotionLimit)
	return true
}

// candidates are a model's instances that may be raised from tier: not
// failed, no action under way, hot ones only standbys that serve. Raising
// to primary puts earlier raises (primaries already) first, then the
// failed primary's zone, other active zones, the standby zone; then the
// freshest checkpoint and the name.
func (p *planner) candidates(model string, tier topology.Tier, zone string, anyRole bool) []topology.Instance {
	var out []topology.Instance
	for _, in := range p.fleet.Instances {
		_, busy := p.busy[in.Name]
		ok := in.Model == model && in.Tier == tier && !failed(in.Health) && !busy &&
			(in.Role == topology.RoleStandby || anyRole) && (tier != topology.TierHot || in.Serving())
		if ok {
			out = append(out, in)
		}
	}
	slices.SortFunc(out, func(a, b topology.Instance) int {
		return cmp.Or(cmp.Compare(roleRank(a.Role), roleRank(b.Role)), cmp.Compare(p.zoneRank(a.Zone, zone), p.zoneRank(b.Zone, zone)),
			p.checkpointTime(b.Name).Compare(p.checkpointTime(a.Name)), cmp.Compare(a.Name, b.Name))
	})
	return out
}

func roleRank(r topology.Role) int {
	if r == topology.RolePrimary {
		return 0
	}
	return 1
}

func (p *planner) zoneRank(zone, prefer string) int {
	switch {
	case !p.active(zone):
		return 2
	case zone == prefer:
		return 0
	default:
		return 1
	}
}

func (p *planner) checkpointTime(name string) time.Time {
	if st, ok := p.s.Instance(name); ok && st.Checkpoint != nil {
		return st.Checkpoint.Time
	}
	return time.Time{}
}

// choose takes the first candidate whose checkpoint is within the model's
// RPO of the freshest any of its instances reported, noting those passed
// over; with none within it, the first.
func (p *planner) choose(m drpolicy.Model, cands []topology.Instance) (topology.Instance, bool) {
	if len(cands) == 0 {
		return topology.Instance{}, false
	}
	freshest := p.freshest(m.Name)
	for i, in := range cands {
		if lag := freshest.Sub(p.checkpointTime(in.Name)); freshest.IsZero() || lag <= m.RPO.D() {
			p.noteLagging(m, cands[:i], freshest, in.Name)
			return in, true
		}
	}
	p.note("%s: every standby's checkpoint lags the freshest by more than rpo %v; raising %s", m.Name, m.RPO.D(), cands[0].Name)
	return cands[0], true
}

func (p *planner) noteLagging(m drpolicy.Model, skipped []topology.Instance, freshest time.Time, chosen string) {
	for _, in := range skipped {
		p.note("%s: standby %s checkpoint lags the freshest by %v > rpo %v; raising %s instead",
			m.Name, in.Name, freshest.Sub(p.checkpointTime(in.Name)), m.RPO.D(), chosen)
	}
}

func (p *planner) freshest(model string) time.Time {
	var t time.Time
	for _, st := range p.s.Instances {
		if st.Model == model && st.Checkpoint != nil && st.Checkpoint.Time.After(t) {
			t = st.Checkpoint.Time
		}
	}
	return t
}

// promote makes a serving hot standby a primary: a state change only.
func (p *planner) promote(m drpolicy.Model, in topology.Instance, inc *Incident) {
	p.s.edit(in.Name, m.Name, func(st *InstanceState) { st.Role = topology.RolePrimary })
	p.refresh()
	id := p.startPromotion(inc, in.Name)
	if inc := p.s.incident(id); inc != nil {
		inc.PromotedReadyAt = p.in.Now
	}
	p.emit(Action{Kind: ActionPromote, Model: m.Name, Instance: in.Name, Zone: in.Zone, Tier: topology.TierHot,
		Incident: id, Reason: "primaries below the fleet's: promote hot standby"})
}

// wake asks for a warm instance to be loaded onto GPUs of its node, as a
// primary or to refill the hot standbys.
func (p *planner) wake(m drpolicy.Model, in topology.Instance, inc *Incident, asPrimary bool) bool {
	pl, ok := p.place(m, in.Zone, in.Node, inc)
	if !ok {
		return false
	}
	id, reason := p.raise(m, in, inc, asPrimary, "hot standbys below hotStandby")
	p.emit(Action{Kind: ActionWake, Model: m.Name, Instance: in.Name, Zone: pl.Zone, Tier: topology.TierHot,
		Node: pl.Node, GPUs: pl.GPUs, Incident: id, Reason: "wake: " + reason})
	return true
}

// load asks for a cold instance's weights to be loaded into host memory.
func (p *planner) load(m drpolicy.Model, in topology.Instance, inc *Incident, asPrimary bool) {
	id, reason := p.raise(m, in, inc, asPrimary, "warm standbys below what the chain needs")
	p.emit(Action{Kind: ActionLoad, Model: m.Name, Instance: in.Name, Zone: in.Zone, Tier: topology.TierWarm,
		Incident: id, Reason: "load: " + reason})
}

// raise makes an instance raised in place of a primary a primary in the
// state now (it serves as one once its action completes) and returns the
// incident it serves and why.
func (p *planner) raise(m drpolicy.Model, in topology.Instance, inc *Incident, asPrimary bool, standbyReason string) (string, string) {
	if !asPrimary {
		return p.openIncidentID(m.Name), standbyReason
	}
	p.s.edit(in.Name, m.Name, func(st *InstanceState) { st.Role = topology.RolePrimary })
	p.refresh()
	return p.startPromotion(inc, in.Name), "primaries below the fleet's and no hot standby"
}

// fillStandbys keeps the chain full: warm standbys woken for missing hot
// ones, cold ones loaded for missing warm ones (and for hot ones no warm
// one can feed), cold ones created for the rest.
func (p *planner) fillStandbys(m drpolicy.Model) {
	c := p.count(m.Name, true)
	for c.hot < m.HotStandby {
		in, ok := p.first(p.candidates(m.Name, topology.TierWarm, "", false))
		if !ok || !p.wake(m, in, nil, false) {
			break
		}
		c = p.count(m.Name, true)
	}
	short := max(0, m.HotStandby-c.hot)
	for c.warm < m.WarmStandby+short {
		in, ok := p.first(p.candidates(m.Name, topology.TierCold, "", false))
		if !ok {
			break
		}
		p.load(m, in, nil, false)
		c = p.count(m.Name, true)
	}
	short = max(0, m.WarmStandby+short-c.warm)
	for ; c.cold < m.ColdStandby+short; c.cold++ {
		p.createCold(m, p.coldReason(m, c.cold, short))
	}
}

// coldReason says why a cold standby is created: to keep coldStandby, or,
// beyond it, to be loaded for the warm (and, through them, hot) standbys
// the chain lacks with no cold one left to load.
func (p *planner) coldReason(m drpolicy.Model, cold, warmShort int) string {
	if cold < m.ColdStandby {
		return fmt.Sprintf("cold standbys below coldStandby %d", m.ColdStandby)
	}
	return fmt.Sprintf("warm standbys missing for the chain: %d (warmStandby %d, hotStandby %d), and no cold standby to load: created to be loaded",
		warmShort, m.WarmStandby, m.HotStandby)
}

func (p *planner) first(cands []topology.Instance) (topology.Instance, bool) {
	if len(cands) == 0 {
		return topology.Instance{}, false
	}
	return cands[0], true
}

// createCold asks for a new cold standby in the active zone holding the
// fewest of the model's instances.
func (p *planner) createCold(m drpolicy.Model, reason string) {
	p.emit(Action{Kind: ActionCreate, Model: m.Name, Instance: p.freeName(m.Name, "cold"), Zone: p.sparsestZone(m.Name),
		Tier: topology.TierCold, Incident: p.openIncidentID(m.Name), Reason: reason})
}

// createEmergency asks for a new hot primary when nothing is left to raise.
func (p *planner) createEmergency(m drpolicy.Model) {
	inc := p.unreplaced(m.Name)
	if inc != nil && p.promotionsHeld(m) {
		return
	}
	pl, ok := p.placeInActiveZone(m, inc)
	if !ok {
		return
	}
	name := p.freeName(m.Name, "emergency")
	p.emit(Action{Kind: ActionCreate, Model: m.Name, Instance: name, Zone: pl.Zone, Tier: topology.TierHot,
		Node: pl.Node, GPUs: pl.GPUs, Emergency: true, Incident: p.startPromotion(inc, name),
		Reason: "no primary serving and no standby left"})
}

// freeName is <model>-<kind>-<n> with the smallest n no instance or
// action uses.
func (p *planner) freeName(model, kind string) string {
	for n := 1; ; n++ {
		name := fmt.Sprintf("%s-%s-%d", model, kind, n)
		_, listed := p.instance(name)
		if _, busy := p.busy[name]; !listed && !busy {
			return name
		}
	}
}

func (p *planner) sparsestZone(model string) string {
	best, fewest := "", -1
	for _, z := range p.fleet.Zones {
		n := 0
		for _, in := range p.fleet.Instances {
			if in.Model == model && in.Zone == z.Name {
				n++
			}
		}
		if p.active(z.Name) && (fewest < 0 || n < fewest) {
			best, fewest = z.Name, n
		}
	}
	return best
}
