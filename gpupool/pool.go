// Package gpupool owns the shared GPU pool's accounting — per-GPU memory
// with overcommit, Volcano-like tenant queues, placement scoring. (Endpoint
// weights from telemetry live with the telemetry source, in
// topology/telemetry/weights.)
//
// Everything here is pure: no goroutines, no clocks (callers pass the time
// in), no I/O, no randomness. A Pool is a value its caller
// owns; their methods mutate them and they are not safe for concurrent use.
//
// # Memory accounting
//
// Every GPU has a capacity (memoryTotalMiB), a measured use (memoryUsedMiB,
// from telemetry) and a reservation (memoryReservedMiB from the fleet plus
// what this pool placed). Its limit is floor(capacity × overcommit). The load
// of a GPU is max(used, reserved): reservations count before a model has
// loaded, and measured use counts when something we did not place (or a
// model larger than its reservation) holds more. A GPU accepts a request of
// m MiB when load + m <= limit. The pool total is the sum of the limits.
//
// Only GPUs with a known capacity whose GPU and node health are neither
// unhealthy nor draining take placements.
package gpupool

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/inferxds/inferxds/internal/fielderr"
	"github.com/inferxds/inferxds/topology"
)

// DefaultOvercommit is the seed design's memory overcommit ratio.
const DefaultOvercommit = 1.5

// Queue is a tenant's share of the pool, modelled on a Volcano Queue.
type Queue struct {
	Name string
	// Weight is the tenant's relative share when capacity is contended; the
	// pool reports it back for the planner that picks what to reclaim.
	Weight     int
	Capability Capability
	// Reclaimable says whether the tenant's placements may be taken back
	// when another tenant needs the capacity.
	Reclaimable bool
}

// Capability caps what a tenant may hold; a zero field is unlimited.
type Capability struct {
	// GPUs counts the GPUs of every placement (a 4-GPU placement counts 4),
	// however many other placements share those GPUs.
	GPUs      int
	MemoryMiB int64
}

// Pool is the GPU memory and tenant accounting of one fleet.
type Pool struct {
	gpus       []gpuState // sorted by node name, then GPU index
	nodes      []nodeSpan // sorted by name
	zones      map[string]bool
	queues     map[string]*queueState
	placements map[uint64]placed
	lastID     uint64
}

type gpuState struct {
	node, zone  string
	index       int
	capacity    int64
	limit       int64
	used        int64
	reserved    int64
	schedulable bool
	models      map[string]int // model → instances holding it here
}

// nodeSpan is the range gpus[first:end] of one node's GPUs.
type nodeSpan struct {
	name, zone string
	first, end int
}

type queueState struct {
	queue     Queue
	gpus      int
	memoryMiB int64
	count     int
}

// placed is a live placement with the positions of its GPUs in Pool.gpus.
type placed struct {
	placement Placement
	slots     []int
	adopted   bool // an instance already in the fleet (see Adopt)
}

// NewPool builds a pool from a validated fleet's GPUs. Hot instances mark
// their model as present on their GPUs; the fleet's reserved memory is a
// baseline that no tenant is charged for. Every problem with the queues or
// the overcommit ratio (which must be at least 1) is reported.
func NewPool(fleet *topology.Fleet, queues []Queue, overcommit float64) (*Pool, error) {
	pr := fielderr.NewProblems(fielderr.NoFile{})
	if !(overcommit >= 1) || math.IsInf(overcommit, 1) {
		pr.Add("overcommit", "must be a finite ratio of at least 1 (got %v)", overcommit)
	}
	states := newQueues(pr, queues)
	if err := pr.Err(); err != nil {
		return nil, fmt.Errorf("gpupool: %w", err)
	}
	p := &Pool{zones: make(map[string]bool), queues: states, placements: make(map[uint64]placed)}
	p.addGPUs(fleet, overcommit)
	p.addModels(fleet.Instances)
	return p, nil
}

func newQueues(pr *fielderr.Problems, queues []Queue) map[string]*queueState {
	names := make([]string, len(queues))
	for i, q := range queues {
		names[i] = q.Name
		at := fmt.Sprintf("queues[%d]", i)
		if q.Weight < 0 {
			pr.Add(at+".weight", "must not be negative (got %d)", q.Weight)
		}
		if q.Capability.GPUs < 0 {
			pr.Add(at+".capability.gpus", "must not be negative (got %d)", q.Capability.GPUs)
		}
		if q.Capability.MemoryMiB < 0 {
			pr.Add(at+".capability.memoryMiB", "must not be negative (got %d)", q.Capability.MemoryMiB)
		}
	}
	good := pr.Names("queue", "queues[%d].name", names, topology.ValidateName)
	states := make(map[string]*queueState, len(good))
	for _, q := range queues {
		if good[q.Name] {
			states[q.Name] = &queueState{queue: q}
		}
	}
	return states
}

func (p *Pool) addGPUs(fleet *topology.Fleet, overcommit float64) {
	for _, z := range fleet.Zones {
		p.zones[z.Name] = true
	}
	for _, n := range fleet.Nodes {
		for _, g := range n.GPUs {
			p.gpus = append(p.gpus, gpuState{
				node: n.Name, zone: n.Zone, index: g.Index,
				capacity: g.MemoryTotalMiB, limit: int64(float64(g.MemoryTotalMiB) * overcommit),
				used: g.MemoryUsedMiB, reserved: g.MemoryReservedMiB,
				schedulable: g.MemoryTotalMiB > 0 && acceptsWork(n.Health) && acceptsWork(g.Health),
				models:      make(map[string]int),
			})
		}
	}
	slices.SortFunc(p.gpus, func(a, b gpuState) int {
		return cmp.Or(cmp.Compare(a.node, b.node), cmp.Compare(a.index, b.index))
	})
	for i, g := range p.gpus {
		if len(p.nodes) == 0 || p.nodes[len(p.nodes)-1].name != g.node {
			p.nodes = append(p.nodes, nodeSpan{name: g.node, zone: g.zone, first: i})
		}
		p.nodes[len(p.nodes)-1].end = i + 1
	}
}

func acceptsWork(h topology.Health) bool {
	return h != topology.HealthUnhealthy && h != topology.HealthDraining
}

func (p *Pool) addModels(instances []topology.Instance) {
	for _, in := range instances {
		if in.Tier != topology.TierHot {
			continue
		}
		for _, index := range in.GPUs {
			if slot, ok := p.slot(in.Node, index); ok {
				p.gpus[slot].models[in.Model]++
			}
		}
	}
}

// node returns the named node's span and whether the pool has it.
func (p *Pool) node(name string) (nodeSpan, bool) {
	i, ok := slices.BinarySearchFunc(p.nodes, name, func(n nodeSpan, s string) int { return cmp.Compare(n.name, s) })
	if !ok {
		return nodeSpan{}, false
	}
	return p.nodes[i], true
}

// slot returns the position of a node's GPU in p.gpus.
func (p *Pool) slot(node string, index int) (int, bool) {
	span, ok := p.node(node)
	if !ok {
		return 0, false
	}
	for i := span.first; i < span.end; i++ {
		if p.gpus[i].index == index {
			return i, true
		}
	}
	return 0, false
}

func (g *gpuState) free() int64 { return g.limit - max(g.used, g.reserved) }
