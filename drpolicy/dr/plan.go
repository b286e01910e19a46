package dr

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
)

// Input is everything one plan reads.
type Input struct {
	// Fleet is the sources' fleet with telemetry, not yet through Effective.
	Fleet  *topology.Fleet
	Policy *drpolicy.Policy
	State  *State
	// Failures are the failures found since the last plan.
	Failures []Failure
	// Recovered are instances a probe found serving again.
	Recovered []string
	// InFlight are actions the Actuator is still carrying out.
	InFlight []Action
	Now      time.Time
	Options  Options
}

// Options tune the planner; zero fields take the defaults.
type Options struct {
	// Overcommit is the GPU memory overcommit ratio placements use
	// (default 1).
	Overcommit float64
	// ZoneFailoverBelow is the share of an active zone's primaries that must
	// still serve; below it the zone fails over (default 0.5).
	ZoneFailoverBelow float64
	// KeepResolved is how many resolved incidents are kept (default 20).
	KeepResolved int
	// PromotionLimit is how many failed primaries of one model may start
	// being replaced within PromotionWindow (defaults 5 and 1 minute); a
	// negative limit is none. It keeps a model whose replacements keep
	// failing from churning through its standbys.
	PromotionLimit  int
	PromotionWindow time.Duration
}

func (o Options) withDefaults() Options {
	if o.Overcommit == 0 {
		o.Overcommit = 1
	}
	if o.ZoneFailoverBelow == 0 {
		o.ZoneFailoverBelow = 0.5
	}
	if o.KeepResolved == 0 {
		o.KeepResolved = 20
	}
	if o.PromotionLimit == 0 {
		o.PromotionLimit = 5
	}
	if o.PromotionWindow == 0 {
		o.PromotionWindow = time.Minute
	}
	return o
}

// Decision is what one plan decided.
type Decision struct {
	// State is the next state, with the state-only actions applied.
	State *State
	// Actions are every action asked for, in order; the Actuator carries
	// out those that are not StateOnly.
	Actions []Action
	// Notes say what the plan could not do, or did in a lesser way.
	Notes []string
}

// planner is one Plan call's working set.
type planner struct {
	in    Input
	opts  Options
	s     *State
	fleet *topology.Fleet   // effective: in.Fleet through s
	pol   *drpolicy.Policy  // effective
	busy  map[string]Action // by instance: in flight or asked for now
	out   Decision
}

// Plan decides the next recovery steps: failed instances are drained,
// primaries replaced from the standby chain, standbys backfilled, a failed
// active zone failed over, and incidents kept. It is pure: the same input
// gives the same decision. Without a fleet or a policy it decides nothing.
func Plan(in Input) Decision {
	if in.Fleet == nil || in.Policy == nil {
		return Decision{State: in.State.clone()}
	}
	p := &planner{in: in, opts: in.Options.withDefaults(), s: in.State.clone(), busy: make(map[string]Action)}
	for _, a := range in.InFlight {
		p.busy[a.Instance] = a
	}
	p.refresh()
	p.recordFailures()
	p.recordRecovered()
	p.failoverZone()
	p.recoverModels()
	p.closeIncidents()
	p.s.Sort()
	p.out.State = p.s
	return p.out
}

// refresh recomputes the effective fleet and policy after a state change.
func (p *planner) refresh() {
	p.fleet, p.pol = Effective(p.in.Fleet, p.in.Policy, p.s)
}

// emit records an action; one that reaches the Actuator makes its
// instance busy for the rest of the plan.
func (p *planner) emit(a Action) {
	p.out.Actions = append(p.out.Actions, a)
	if !a.Kind.StateOnly() {
		p.busy[a.Instance] = a
	}
}

func (p *planner) note(format string, args ...any) {
	p.out.Notes = append(p.out.Notes, fmt.Sprintf(format, args...))
}

func (p *planner) instance(name string) (topology.Instance, bool) {
	i, ok := slices.BinarySearchFunc(p.fleet.Instances, name, func(in topology.Instance, n string) int { return cmp.Compare(in.Name, n) })
	if !ok {
		return topology.Instance{}, false
	}
	return p.fleet.Instances[i], true
}

// recoverModels recovers every model, the most critical first.
func (p *planner) recoverModels() {
	for _, m := range p.modelsByCriticality() {
		p.recover(m)
	}
}

// recover brings one model back to its policy: primaries first, then an
// emergency instance when nothing is left, then the standby chain.
func (p *planner) recover(m drpolicy.Model) {
	p.replacePrimaries(m)
	if p.count(m.Name, true).primaries == 0 && p.target(m.Name) > 0 {
		p.createEmergency(m)
	}
	p.fillStandbys(m)
}

// criticalityRank orders criticalities, most critical first.
func criticalityRank(c drpolicy.Criticality) int {
	switch c {
	case drpolicy.CriticalityCritical:
		return 0
	case drpolicy.CriticalityHigh:
		return 1
	case drpolicy.CriticalityLow:
		return 3
	default:
		return 2
	}
}

func (p *planner) modelsByCriticality() []drpolicy.Model {
	models := slices.Clone(p.in.Policy.Models)
	slices.SortStableFunc(models, func(a, b drpolicy.Model) int {
		return cmp.Or(cmp.Compare(criticalityRank(a.Priority), criticalityRank(b.Priority)), cmp.Compare(a.Name, b.Name))
	})
	return models
}

func (p *planner) model(name string) (drpolicy.Model, bool) {
	i := slices.IndexFunc(p.in.Policy.Models, func(m drpolicy.Model) bool { return m.Name == name })
	if i < 0 {
		return drpolicy.Model{}, false
	}
	return p.in.Policy.Models[i], true
}
