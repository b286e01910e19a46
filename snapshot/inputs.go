package snapshot

import (
	"cmp"
	"slices"

	"github.com/inferxds/inferxds/topology"
)

// SameFleetInputs reports whether translation reads the same from two
// fleets: the zones and their roles, and of each instance what decides
// whether and where it is an endpoint (name, model, zone, address, port,
// tier, role, health, weight). Nodes, GPU readings, instance load and
// telemetry age are not read, so fleets that differ only there translate
// alike. A nil fleet counts as empty, as in Translate.
func SameFleetInputs(a, b *topology.Fleet) bool {
	a, b = cmp.Or(a, &topology.Fleet{}), cmp.Or(b, &topology.Fleet{})
	return slices.Equal(a.Zones, b.Zones) &&
		slices.EqualFunc(a.Instances, b.Instances, func(x, y topology.Instance) bool {
			return instanceInput(x) == instanceInput(y)
		})
}

// translatedInstance is what translation reads of an instance.
type translatedInstance struct {
	name, model, zone, address string
	port, weight               uint32
	tier                       topology.Tier
	role                       topology.Role
	health                     topology.Health
}

func instanceInput(in topology.Instance) translatedInstance {
	return translatedInstance{
		name: in.Name, model: in.Model, zone: in.Zone, address: in.Address,
		port: in.Port, weight: in.Weight, tier: in.Tier, role: in.Role, health: in.Health,
	}
}
