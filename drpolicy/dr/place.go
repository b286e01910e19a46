package dr

import (
	"fmt"
	"slices"
	"strings"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/gpupool"
	"github.com/inferxds/inferxds/topology"
)

// place finds GPUs for one instance of the model in zone (or node, when
// set; "" is anywhere). When the pool is full and the model is critical or
// high, instances of less critical reclaimable tenants are stopped until it
// fits. A failure is noted, on the incident too.
func (p *planner) place(m drpolicy.Model, zone, node string, inc *Incident) (gpupool.Placement, bool) {
	req := p.request(m, zone, node)
	pl, err := p.schedule(req, nil)
	if err == nil {
		return pl, true
	}
	if pl, ok := p.reclaim(m, req); ok {
		return pl, true
	}
	p.note("%s: no GPUs for another instance: %v", m.Name, err)
	if inc != nil {
		inc.Note = "no GPU capacity: " + err.Error()
	}
	return gpupool.Placement{}, false
}

// placeInActiveZone places in the first active zone with room, else
// anywhere.
func (p *planner) placeInActiveZone(m drpolicy.Model, inc *Incident) (gpupool.Placement, bool) {
	for _, z := range p.fleet.Zones {
		if !p.active(z.Name) {
			continue
		}
		if pl, err := p.schedule(p.request(m, z.Name, ""), nil); err == nil {
			return pl, true
		}
	}
	return p.place(m, "", "", inc)
}

func (p *planner) request(m drpolicy.Model, zone, node string) gpupool.Request {
	req := gpupool.Request{Model: m.Name, Tenant: m.Tenant, GPUs: p.gpusPer(m), Zone: zone, Node: node, MemoryMiB: m.Resources.GPUMemoryMiB}
	if req.MemoryMiB == 0 {
		req.MemoryMiB = p.wholeGPU(node)
	}
	return req
}

// gpusPer is how many GPUs one instance of the model takes: its resources'
// count, else the most any of its instances holds, else one.
func (p *planner) gpusPer(m drpolicy.Model) int {
	if m.Resources.GPUs > 0 {
		return m.Resources.GPUs
	}
	n := 1
	for _, in := range p.fleet.Instances {
		if in.Model == m.Name {
			n = max(n, len(in.GPUs))
		}
	}
	return n
}

// wholeGPU is the memory request that only an empty GPU meets: the
// smallest GPU limit (on the node, when one is named). gpupool fits a
// zero-memory request anywhere, so a whole-GPU model cannot ask for 0.
func (p *planner) wholeGPU(node string) int64 {
	var least int64
	for _, n := range p.fleet.Nodes {
		for _, g := range n.GPUs {
			if lim := p.limit(g); lim > 0 && (node == "" || n.Name == node) && (least == 0 || lim < least) {
				least = lim
			}
		}
	}
	return least
}

func (p *planner) limit(g topology.GPU) int64 {
	return int64(float64(g.MemoryTotalMiB) * p.opts.Overcommit)
}

// schedule places req on a fresh pool of the GPUs that hot instances,
// actions under way and instances stopped are not holding.
func (p *planner) schedule(req gpupool.Request, stopped []string) (gpupool.Placement, error) {
	f := p.poolFleet(stopped)
	pool, err := gpupool.NewPool(f, gpupool.TenantQueues(p.in.Policy), p.opts.Overcommit)
	if err != nil {
		return gpupool.Placement{}, err
	}
	pool.Adopt(f.Instances, gpupool.ModelTenants(p.in.Policy))
	return pool.Schedule(req)
}

// reclaim stops instances of less critical reclaimable tenants, lightest
// tenant first, until req fits; only for critical and high models.
func (p *planner) reclaim(m drpolicy.Model, req gpupool.Request) (gpupool.Placement, bool) {
	if criticalityRank(m.Priority) > criticalityRank(drpolicy.CriticalityHigh) {
		return gpupool.Placement{}, false
	}
	var stopped []gpupool.Placement
	for _, c := range p.reclaimable(m) {
		stopped = append(stopped, c)
		if pl, err := p.schedule(req, instanceNames(stopped)); err == nil {
			p.stop(m, stopped)
			return pl, true
		}
	}
	return gpupool.Placement{}, false
}

func (p *planner) reclaimable(m drpolicy.Model) []gpupool.Placement {
	f := p.poolFleet(nil)
	pool, err := gpupool.NewPool(f, gpupool.TenantQueues(p.in.Policy), p.opts.Overcommit)
	if err != nil {
		return nil
	}
	pool.Adopt(f.Instances, gpupool.ModelTenants(p.in.Policy))
	return slices.DeleteFunc(pool.ReclaimCandidates(), func(c gpupool.Placement) bool {
		other, ok := p.model(c.Model)
		_, busy := p.busy[c.Instance]
		return busy || !ok || criticalityRank(other.Priority) <= criticalityRank(m.Priority)
	})
}

func (p *planner) stop(m drpolicy.Model, victims []gpupool.Placement) {
	names := strings.Join(instanceNames(victims), ", ")
	p.note("%s: stopping %s of reclaimable tenants to free GPUs", m.Name, names)
	for _, v := range victims {
		p.emit(Action{Kind: ActionStop, Model: v.Model, Instance: v.Instance, Zone: v.Zone, Node: v.Node, Tier: topology.TierCold,
			Reason: fmt.Sprintf("reclaimed for %s (%s): tenant %s is reclaimable", m.Name, m.Priority, v.Tenant)})
	}
}

func instanceNames(pls []gpupool.Placement) []string {
	names := make([]string, len(pls))
	for i, pl := range pls {
		names[i] = pl.Instance
	}
	return names
}

// poolFleet is the effective fleet as the GPU pool must see it: the hot
// instances (and the wakes and creates under way, where they go) on their
// GPUs, each GPU's reservation raised to what they hold.
func (p *planner) poolFleet(stopped []string) *topology.Fleet {
	var hot []topology.Instance
	for _, in := range p.fleet.Instances {
		if p.tierOf(in, true) == topology.TierHot && !slices.Contains(stopped, in.Name) {
			hot = append(hot, p.placedAt(in))
		}
	}
	hot = append(hot, p.creating()...)
	return &topology.Fleet{Zones: p.fleet.Zones, Nodes: p.reserve(hot), Instances: hot}
}

// placedAt is the instance on the GPUs an action under way gives it.
func (p *planner) placedAt(in topology.Instance) topology.Instance {
	if a, ok := p.busy[in.Name]; ok && a.Node != "" {
		in.Node, in.Zone, in.GPUs = a.Node, a.Zone, a.GPUs
	}
	in.Tier = topology.TierHot
	return in
}

// creating are the hot instances being created, in name order.
func (p *planner) creating() []topology.Instance {
	var out []topology.Instance
	for _, a := range p.busy {
		if _, listed := p.instance(a.Instance); !listed && a.Kind == ActionCreate && a.Tier == topology.TierHot {
			out = append(out, topology.Instance{Name: a.Instance, Model: a.Model, Node: a.Node, Zone: a.Zone, GPUs: a.GPUs, Tier: topology.TierHot})
		}
	}
	slices.SortFunc(out, func(a, b topology.Instance) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// reserve copies the nodes with each GPU's reservation at least what the
// instances on it hold: their model's gpuMemoryMiB, or the whole GPU.
func (p *planner) reserve(hot []topology.Instance) []topology.Node {
	held := make(map[string]int64)
	for _, in := range hot {
		for _, g := range in.GPUs {
			held[gpuKey(in.Node, g)] += p.holds(in.Model)
		}
	}
	nodes := slices.Clone(p.fleet.Nodes)
	for i := range nodes {
		nodes[i].GPUs = slices.Clone(nodes[i].GPUs)
		for j := range nodes[i].GPUs {
			g := &nodes[i].GPUs[j]
			if h, ok := held[gpuKey(nodes[i].Name, g.Index)]; ok {
				g.MemoryReservedMiB = max(g.MemoryReservedMiB, min(h, p.limit(*g)))
			}
		}
	}
	return nodes
}

// wholeGPUMiB stands for a whole GPU; reserve caps it at the GPU's limit.
const wholeGPUMiB = 1 << 50

// holds is the memory one instance of the model holds on each GPU.
func (p *planner) holds(model string) int64 {
	if m, ok := p.model(model); ok && m.Resources.GPUMemoryMiB > 0 {
		return m.Resources.GPUMemoryMiB
	}
	return wholeGPUMiB
}

func gpuKey(node string, index int) string { return fmt.Sprintf("%s/%d", node, index) }
