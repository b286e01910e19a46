package snapshot

import (
	"slices"

	"github.com/inferxds/inferxds/topology"
)

// fleetMemo is what the Translator last read of the fleet, shared by every
// zone: it tells a call which models' instances changed, so that the
// others' endpoints are neither gathered nor compared again. It holds a
// copy, not the caller's fleet, so a fleet modified in place between calls
// is still seen as changed.
type fleetMemo struct {
	instances []translatedInstance // in fleet order
	zones     []topology.Zone
	byModel   map[string][]int // each model's instance positions
	gen       uint64           // counts the changes observed
	// changed names the models whose instances differ between gen-1 and
	// gen; nil when any may have (instances added, removed or moved to
	// another model, zones changed, or the first fleet).
	changed map[string]bool
}

// observe brings the memo up to f.
func (m *fleetMemo) observe(f *topology.Fleet) {
	if m.gen == 0 || len(f.Instances) != len(m.instances) || !slices.Equal(f.Zones, m.zones) {
		m.reset(f)
		return
	}
	var changed map[string]bool
	for i := range f.Instances {
		in := instanceInput(f.Instances[i])
		if in == m.instances[i] {
			continue
		}
		if in.model != m.instances[i].model {
			m.reset(f)
			return
		}
		if changed == nil {
			changed = map[string]bool{}
		}
		changed[in.model] = true
		m.instances[i] = in
	}
	if changed != nil {
		m.gen++
		m.changed = changed
	}
}

func (m *fleetMemo) reset(f *topology.Fleet) {
	m.instances = make([]translatedInstance, len(f.Instances))
	m.byModel = map[string][]int{}
	for i := range f.Instances {
		m.instances[i] = instanceInput(f.Instances[i])
		m.byModel[f.Instances[i].Model] = append(m.byModel[f.Instances[i].Model], i)
	}
	m.zones = slices.Clone(f.Zones)
	m.gen++
	m.changed = nil
}

// unchangedSince reports whether model's instances are the same now as at
// generation gen.
func (m *fleetMemo) unchangedSince(gen uint64, model string) bool {
	return gen == m.gen || gen+1 == m.gen && m.changed != nil && !m.changed[model]
}
