package snapshot

import (
	"cmp"
	"fmt"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/inferxds/inferxds/topology"
)

// tierClass is where an endpoint falls before priorities are compacted:
// the lower the class, the sooner it takes traffic.
type tierClass uint8

const (
	classLocalPrimary  tierClass = iota // serving primaries in the group's zone
	classRemotePrimary                  // serving primaries in other active zones
	classHotStandby                     // serving hot standbys in active zones
	classStandbyZone                    // serving instances in standby-role zones
)

// zoneView is the fleet's zones as seen from one group (its local zone).
type zoneView struct {
	local string
	roles map[string]topology.ZoneRole
}

func newZoneView(f *topology.Fleet, group string) zoneView {
	roles := make(map[string]topology.ZoneRole, len(f.Zones))
	for _, z := range f.Zones {
		roles[z.Name] = z.Role
	}
	return zoneView{local: group, roles: roles}
}

// classify places a serving instance. A zone without a role counts as active.
func (v zoneView) classify(in *topology.Instance) (tierClass, error) {
	role, ok := v.roles[in.Zone]
	switch {
	case !ok:
		return 0, fmt.Errorf("instance %q: zone %q is not a fleet zone", in.Name, in.Zone)
	case role == topology.ZoneStandby:
		return classStandbyZone, nil
	case in.Role == topology.RoleStandby:
		return classHotStandby, nil
	case in.Zone == v.local:
		return classLocalPrimary, nil
	default:
		return classRemotePrimary, nil
	}
}

// endpointInput is everything about one serving instance that reaches its
// endpoint. It is comparable, so the Translator's cache compares inputs
// exactly.
type endpointInput struct {
	name, zone, address string
	port, weight        uint32
	class               tierClass
	health              corev3.HealthStatus
}

func newEndpointInput(in *topology.Instance, class tierClass) endpointInput {
	health := corev3.HealthStatus_HEALTHY
	if in.Health == topology.HealthUnknown {
		health = corev3.HealthStatus_UNKNOWN
	}
	return endpointInput{
		name: in.Name, zone: in.Zone, address: in.Address,
		port: in.Port, weight: in.EffectiveWeight(),
		class: class, health: health,
	}
}

// sortEndpointInputs orders endpoints by class, zone and name, the order
// they appear in the ClusterLoadAssignment.
func sortEndpointInputs(eps []endpointInput) {
	slices.SortFunc(eps, compareEndpointInputs)
}

// compareEndpointInputs stops at the first difference (cmp.Or would compare
// every field first), which matters at ten thousand endpoints.
func compareEndpointInputs(a, b endpointInput) int {
	if a.class != b.class {
		return cmp.Compare(a.class, b.class)
	}
	if a.zone != b.zone {
		return cmp.Compare(a.zone, b.zone)
	}
	if a.name != b.name {
		return cmp.Compare(a.name, b.name)
	}
	if a.address != b.address {
		return cmp.Compare(a.address, b.address)
	}
	return cmp.Compare(a.port, b.port)
}

// loadAssignment groups sorted endpoints into one locality per (priority,
// zone). Priorities number the classes present from 0, without gaps.
func loadAssignment(cluster string, eps []endpointInput) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: cluster}
	var cur *endpointv3.LocalityLbEndpoints
	priority := uint32(0)
	for i, ep := range eps {
		if i > 0 && ep.class != eps[i-1].class {
			priority++
		}
		if cur == nil || cur.Priority != priority || cur.Locality.Zone != ep.zone {
			cur = &endpointv3.LocalityLbEndpoints{
				Locality:            &corev3.Locality{Zone: ep.zone},
				LoadBalancingWeight: wrapperspb.UInt32(0),
				Priority:            priority,
			}
			cla.Endpoints = append(cla.Endpoints, cur)
		}
		cur.LbEndpoints = append(cur.LbEndpoints, lbEndpoint(ep))
		cur.LoadBalancingWeight.Value += ep.weight
	}
	return cla
}

func lbEndpoint(ep endpointInput) *endpointv3.LbEndpoint {
	return &endpointv3.LbEndpoint{
		HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address:  socketAddress(ep.address, ep.port),
			Hostname: ep.name,
		}},
		HealthStatus:        ep.health,
		LoadBalancingWeight: wrapperspb.UInt32(ep.weight),
	}
}
