package snapshot

import (
	"fmt"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
)

// benchZones are the zones of a generated fleet: two active, one standby.
var benchZones = []string{"az-1", "az-2", "az-3"}

// generatedInput is a fleet of models × endpoints per model, the endpoints
// dealt round-robin over benchZones; every fifth one is a hot standby.
func generatedInput(models, endpointsPerModel int) (*topology.Fleet, *drpolicy.Policy) {
	fleet := &topology.Fleet{Zones: []topology.Zone{
		{Name: "az-1", Role: topology.ZoneActive},
		{Name: "az-2", Role: topology.ZoneActive},
		{Name: "az-3", Role: topology.ZoneStandby},
	}}
	pol := &drpolicy.Policy{AZFailover: &drpolicy.AZFailover{
		Strategy: "active-passive", ActiveZones: []string{"az-1", "az-2"}, StandbyZone: "az-3",
	}}
	for m := range models {
		model := fmt.Sprintf("model-%04d", m)
		pol.Models = append(pol.Models, drpolicy.Model{Name: model, Mirror: mirrorEveryTenth(m, models)})
		for e := range endpointsPerModel {
			in := topology.Instance{
				Name:    fmt.Sprintf("%s-%02d", model, e),
				Model:   model,
				Zone:    benchZones[e%len(benchZones)],
				Address: fmt.Sprintf("10.%d.%d.%d", m/250, m%250, e),
				Port:    8000,
				Weight:  uint32(1 + e%4),
			}
			if e%5 == 4 {
				in.Role = topology.RoleStandby
			}
			fleet.Instances = append(fleet.Instances, in)
		}
	}
	fleet.ApplyDefaults()
	pol.ApplyDefaults()
	return fleet, pol
}

func mirrorEveryTenth(m, models int) *drpolicy.Mirror {
	if m%10 != 0 || models < 2 {
		return nil
	}
	return &drpolicy.Mirror{Model: fmt.Sprintf("model-%04d", (m+1)%models), Percent: 5}
}
