package gpupool

import (
	"cmp"
	"slices"
)

// Usage is a snapshot of the pool's accounting, sorted for output.
type Usage struct {
	// GPUs are sorted by node name, then GPU index.
	GPUs []GPUUsage
	// Tenants are sorted by name; requests without a tenant are not listed.
	Tenants []TenantUsage
	// LimitMiB and ReservedMiB sum the GPUs' limits and reservations.
	LimitMiB    int64
	ReservedMiB int64
}

// GPUUsage is one GPU's accounting. FreeMiB is LimitMiB − max(UsedMiB,
// ReservedMiB) and may be negative when telemetry reports more use than the
// limit allows.
type GPUUsage struct {
	Node        string
	Zone        string
	Index       int
	CapacityMiB int64
	LimitMiB    int64
	UsedMiB     int64
	ReservedMiB int64
	FreeMiB     int64
	Schedulable bool
	// Models lists the models held on the GPU, sorted.
	Models []string
}

// TenantUsage is what one tenant holds.
type TenantUsage struct {
	Queue      Queue
	GPUs       int
	MemoryMiB  int64
	Placements int
}

// Usage reports the pool's accounting per GPU and per tenant.
func (p *Pool) Usage() Usage {
	u := Usage{GPUs: make([]GPUUsage, len(p.gpus))}
	for i := range p.gpus {
		g := &p.gpus[i]
		u.GPUs[i] = g.usage()
		u.LimitMiB += g.limit
		u.ReservedMiB += g.reserved
	}
	for _, q := range p.queues {
		u.Tenants = append(u.Tenants, TenantUsage{Queue: q.queue, GPUs: q.gpus, MemoryMiB: q.memoryMiB, Placements: q.count})
	}
	slices.SortFunc(u.Tenants, func(a, b TenantUsage) int { return cmp.Compare(a.Queue.Name, b.Queue.Name) })
	return u
}

func (g *gpuState) usage() GPUUsage {
	models := make([]string, 0, len(g.models))
	for m := range g.models {
		models = append(models, m)
	}
	slices.Sort(models)
	return GPUUsage{
		Node: g.node, Zone: g.zone, Index: g.index,
		CapacityMiB: g.capacity, LimitMiB: g.limit, UsedMiB: g.used, ReservedMiB: g.reserved,
		FreeMiB: g.free(), Schedulable: g.schedulable, Models: models,
	}
}
