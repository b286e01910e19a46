package controller

import (
	"fmt"
	"maps"
	"slices"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
)

// maxLoggedNames bounds each list in a change's log line: a first load of
// thousands of models names the first few and counts the rest.
const maxLoggedNames = 10

// changeAttrs name, as log attributes, what differs between the inputs
// last translated and the new ones: models added to or removed from the
// policy, and endpoints (serving instances) added or removed. Names are
// sorted; an empty list is left out; a long one is cut to maxLoggedNames
// and says how many more there are.
func changeAttrs(oldFleet, newFleet *topology.Fleet, oldPolicy, newPolicy *drpolicy.Policy) []any {
	var attrs []any
	add := func(key string, names []string) {
		if len(names) > maxLoggedNames {
			names = append(names[:maxLoggedNames:maxLoggedNames], fmt.Sprintf("and %d more", len(names)-maxLoggedNames))
		}
		if len(names) > 0 {
			attrs = append(attrs, key, names)
		}
	}
	oldModels, newModels := modelNames(oldPolicy), modelNames(newPolicy)
	add("modelsAdded", missingFrom(oldModels, newModels))
	add("modelsRemoved", missingFrom(newModels, oldModels))
	oldEndpoints, newEndpoints := endpointNames(oldFleet), endpointNames(newFleet)
	add("endpointsAdded", missingFrom(oldEndpoints, newEndpoints))
	add("endpointsRemoved", missingFrom(newEndpoints, oldEndpoints))
	return attrs
}

func modelNames(p *drpolicy.Policy) map[string]bool {
	names := map[string]bool{}
	if p != nil {
		for _, m := range p.Models {
			names[m.Name] = true
		}
	}
	return names
}

func endpointNames(f *topology.Fleet) map[string]bool {
	names := map[string]bool{}
	if f != nil {
		for _, in := range f.Instances {
			if in.Serving() {
				names[in.Name] = true
			}
		}
	}
	return names
}

// missingFrom lists, sorted, the names in b that a lacks.
func missingFrom(a, b map[string]bool) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(b)) {
		if !a[name] {
			out = append(out, name)
		}
	}
	return out
}
