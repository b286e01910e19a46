package gpupool

import (
	"cmp"
	"slices"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
)

// TenantQueues are the policy's tenants as queues: gpuQuota caps the GPUs a
// tenant's instances hold (0 is unlimited), weight and reclaimable carry
// over.
func TenantQueues(pol *drpolicy.Policy) []Queue {
	queues := make([]Queue, len(pol.Tenants))
	for i, t := range pol.Tenants {
		queues[i] = Queue{Name: t.Name, Weight: t.Weight, Capability: Capability{GPUs: t.GPUQuota}, Reclaimable: t.Reclaimable}
	}
	return queues
}

// ModelTenants maps each model the policy gives a tenant to that tenant.
func ModelTenants(pol *drpolicy.Policy) map[string]string {
	tenants := make(map[string]string)
	for _, m := range pol.Models {
		if m.Tenant != "" {
			tenants[m.Name] = m.Tenant
		}
	}
	return tenants
}

// Adopt charges the instances already in the fleet to their tenants (by
// their model, through tenantOf) as placements: every hot instance (the tier
// that holds GPU memory) on GPUs of the pool counts its GPUs against its
// tenant's quota. Adopted instances are never refused, even beyond a quota: they are
// running; Usage shows a tenant over its quota and Schedule refuses it more.
// Their memory is already in the fleet's reservations, so adopting charges
// none. Instances of models without a tenant, or of a tenant with no queue,
// are adopted without a tenant.
func (p *Pool) Adopt(instances []topology.Instance, tenantOf map[string]string) []Placement {
	var adopted []Placement
	for _, in := range instances {
		if in.Tier != topology.TierHot || len(in.GPUs) == 0 {
			continue
		}
		slots, ok := p.slots(in.Node, in.GPUs)
		if !ok {
			continue
		}
		tenant := tenantOf[in.Model]
		if _, ok := p.queues[tenant]; !ok {
			tenant = ""
		}
		p.lastID++
		pl := Placement{
			ID: p.lastID, Model: in.Model, Tenant: tenant, Node: in.Node, Zone: in.Zone,
			GPUs: slices.Sorted(slices.Values(in.GPUs)), Instance: in.Name,
		}
		p.apply(placed{placement: pl, slots: slots, adopted: true})
		adopted = append(adopted, pl)
	}
	return adopted
}

// slots are the positions of a node's GPUs in p.gpus, or false when the
// pool lacks one of them.
func (p *Pool) slots(node string, indexes []int) ([]int, bool) {
	slots := make([]int, 0, len(indexes))
	for _, index := range indexes {
		s, ok := p.slot(node, index)
		if !ok {
			return nil, false
		}
		slots = append(slots, s)
	}
	return slots, true
}

// ReclaimCandidates are the placements of reclaimable tenants, which the DR
// planner may take back when another model needs their GPUs: the lightest
// tenant (lowest weight) first, then by tenant name and placement ID.
func (p *Pool) ReclaimCandidates() []Placement {
	var out []Placement
	for _, rec := range p.placements {
		if q, ok := p.queues[rec.placement.Tenant]; ok && q.queue.Reclaimable {
			out = append(out, rec.placement)
		}
	}
	slices.SortFunc(out, func(a, b Placement) int {
		qa, qb := p.queues[a.Tenant].queue, p.queues[b.Tenant].queue
		return cmp.Or(cmp.Compare(qa.Weight, qb.Weight), cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.ID, b.ID))
	})
	return out
}
