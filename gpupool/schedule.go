package gpupool

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// Errors a placement can fail with; each is wrapped with the request and,
// where there is one, the closest candidate.
var (
	ErrInvalidRequest     = errors.New("invalid request")
	ErrUnknownTenant      = errors.New("unknown tenant")
	ErrUnknownZone        = errors.New("unknown zone")
	ErrUnknownNode        = errors.New("unknown node")
	ErrUnknownPlacement   = errors.New("unknown placement")
	ErrQuotaExceeded      = errors.New("tenant quota exceeded")
	ErrNoSuitableGPU      = errors.New("no suitable GPU")
	ErrInsufficientMemory = errors.New("insufficient GPU memory")
)

// Score weights from the seed design: a GPU already holding the model gets
// modelBonus; free memory adds up to freeShareScore in proportion to its
// share of the GPU's limit.
const (
	modelBonus     = 50
	freeShareScore = 50
)

// Request asks for memory on one or more GPUs of one node.
type Request struct {
	Model string
	// Tenant names a Queue; empty means no queue and no quota.
	Tenant string
	// MemoryMiB is needed on each GPU.
	MemoryMiB int64
	// GPUs is how many GPUs of one node the model spans (tensor
	// parallelism); zero means one.
	GPUs int
	// Zone and Node, when set, restrict where the request may go.
	Zone string
	Node string
}

func (r Request) gpuCount() int { return max(r.GPUs, 1) }

func (r Request) String() string {
	s := fmt.Sprintf("model %q (%d×%d MiB", r.Model, r.gpuCount(), r.MemoryMiB)
	if r.Tenant != "" {
		s += ", tenant " + r.Tenant
	}
	if r.Zone != "" {
		s += ", zone " + r.Zone
	}
	if r.Node != "" {
		s += ", node " + r.Node
	}
	return s + ")"
}

// Placement is where a request went. ID identifies it to Release and
// Replace; the zero Placement is never valid.
type Placement struct {
	ID     uint64
	Model  string
	Tenant string
	Node   string
	Zone   string
	// GPUs are the node's GPU indexes, ascending.
	GPUs      []int
	MemoryMiB int64
	// Score is the mean placement score of the GPUs (0..100).
	Score float64
	// Instance names the fleet instance an adopted placement accounts for.
	Instance string
}

// candidate is a node's best GPUs for a request.
type candidate struct {
	slots []int
	score float64
}

// Schedule places a request on the best-scoring node that has enough
// schedulable GPUs with room for it: the mean over the chosen GPUs of
// 50 if the model is already there plus 50 × free/limit. Ties go to the
// first node by name and, within a node, to lower GPU indexes.
func (p *Pool) Schedule(req Request) (Placement, error) {
	if err := p.check(req); err != nil {
		return Placement{}, fmt.Errorf("gpupool: schedule %v: %w", req, err)
	}
	best, ok := p.best(req)
	if !ok {
		return Placement{}, fmt.Errorf("gpupool: schedule %v: %w", req, p.whyNoFit(req))
	}
	p.lastID++
	pl := placed{placement: p.describe(req, best), slots: best.slots}
	p.apply(pl)
	return pl.placement, nil
}

// Release returns a placement's memory and quota to the pool.
func (p *Pool) Release(pl Placement) error {
	rec, ok := p.placements[pl.ID]
	if !ok {
		return fmt.Errorf("gpupool: release placement %d of model %q: %w", pl.ID, pl.Model, ErrUnknownPlacement)
	}
	p.unapply(rec)
	return nil
}

// Replace moves a placement: it schedules req as if old were released and,
// when that succeeds, releases old. On failure the pool is unchanged.
func (p *Pool) Replace(old Placement, req Request) (Placement, error) {
	rec, ok := p.placements[old.ID]
	if !ok {
		return Placement{}, fmt.Errorf("gpupool: replace placement %d of model %q: %w", old.ID, old.Model, ErrUnknownPlacement)
	}
	p.unapply(rec)
	pl, err := p.Schedule(req)
	if err != nil {
		p.apply(rec)
		return Placement{}, err
	}
	return pl, nil
}

func (p *Pool) check(req Request) error {
	switch {
	case req.Model == "":
		return fmt.Errorf("%w: model is required", ErrInvalidRequest)
	case req.MemoryMiB <= 0:
		return fmt.Errorf("%w: memory must be positive", ErrInvalidRequest)
	case req.GPUs < 0:
		return fmt.Errorf("%w: GPU count must not be negative", ErrInvalidRequest)
	case req.Zone != "" && !p.zones[req.Zone]:
		return fmt.Errorf("%w %q", ErrUnknownZone, req.Zone)
	}
	if _, ok := p.node(req.Node); req.Node != "" && !ok {
		return fmt.Errorf("%w %q", ErrUnknownNode, req.Node)
	}
	if req.Tenant == "" {
		return nil
	}
	q, ok := p.queues[req.Tenant]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownTenant, req.Tenant)
	}
	return q.admit(req)
}

func (q *queueState) admit(req Request) error {
	limit := q.queue.Capability
	gpus, memory := req.gpuCount(), req.MemoryMiB*int64(req.gpuCount())
	if limit.GPUs > 0 && q.gpus+gpus > limit.GPUs {
		return fmt.Errorf("%w: tenant %s holds %d of %d GPUs and asks for %d more", ErrQuotaExceeded, q.queue.Name, q.gpus, limit.GPUs, gpus)
	}
	if limit.MemoryMiB > 0 && q.memoryMiB+memory > limit.MemoryMiB {
		return fmt.Errorf("%w: tenant %s holds %d of %d MiB and asks for %d more", ErrQuotaExceeded, q.queue.Name, q.memoryMiB, limit.MemoryMiB, memory)
	}
	return nil
}

// eligible lists the nodes the request may go to.
func (p *Pool) eligible(req Request) []nodeSpan {
	var spans []nodeSpan
	for _, n := range p.nodes {
		if (req.Zone == "" || n.zone == req.Zone) && (req.Node == "" || n.name == req.Node) {
			spans = append(spans, n)
		}
	}
	return spans
}

func (p *Pool) best(req Request) (candidate, bool) {
	var best candidate
	for _, n := range p.eligible(req) {
		c, ok := p.bestOnNode(n, req)
		if ok && (best.slots == nil || c.score > best.score) {
			best = c
		}
	}
	return best, best.slots != nil
}

// bestOnNode picks the node's highest-scoring GPUs that fit the request.
func (p *Pool) bestOnNode(n nodeSpan, req Request) (candidate, bool) {
	fits := make([]int, 0, n.end-n.first)
	for i := n.first; i < n.end; i++ {
		if g := &p.gpus[i]; g.schedulable && g.free() >= req.MemoryMiB {
			fits = append(fits, i)
		}
	}
	if len(fits) < req.gpuCount() {
		return candidate{}, false
	}
	slices.SortStableFunc(fits, func(a, b int) int { return cmp.Compare(p.score(b, req.Model), p.score(a, req.Model)) })
	chosen := fits[:req.gpuCount()]
	slices.Sort(chosen)
	total := 0.0
	for _, s := range chosen {
		total += p.score(s, req.Model)
	}
	return candidate{slots: chosen, score: total / float64(len(chosen))}, true
}

func (p *Pool) score(slot int, model string) float64 {
	g := &p.gpus[slot]
	s := freeShareScore * float64(g.free()) / float64(g.limit)
	if g.models[model] > 0 {
		s += modelBonus
	}
	return s
}

// whyNoFit tells a request that fits nowhere whether no node has enough
// schedulable GPUs or whether they are all too full, naming the closest node.
func (p *Pool) whyNoFit(req Request) error {
	want := req.gpuCount()
	var closest nodeSpan
	var closestFree []int64 // closest's free memory per schedulable GPU, most first
	most := 0
	for _, n := range p.eligible(req) {
		free := p.freeDescending(n)
		most = max(most, len(free))
		if len(free) >= want && (closestFree == nil || free[want-1] > closestFree[want-1]) {
			closest, closestFree = n, free
		}
	}
	if closestFree == nil {
		return fmt.Errorf("%w: no eligible node has %d schedulable GPUs (most on one node: %d)", ErrNoSuitableGPU, want, most)
	}
	return fmt.Errorf("%w: needs %d MiB on each of %d GPUs; best candidate node %s has %d MiB free on its %d emptiest",
		ErrInsufficientMemory, req.MemoryMiB, want, closest.name, closestFree[want-1], want)
}

// freeDescending lists the free memory of a node's schedulable GPUs, most first.
func (p *Pool) freeDescending(n nodeSpan) []int64 {
	var free []int64
	for i := n.first; i < n.end; i++ {
		if p.gpus[i].schedulable {
			free = append(free, p.gpus[i].free())
		}
	}
	slices.SortFunc(free, func(a, b int64) int { return cmp.Compare(b, a) })
	return free
}

func (p *Pool) describe(req Request, c candidate) Placement {
	indexes := make([]int, len(c.slots))
	for i, s := range c.slots {
		indexes[i] = p.gpus[s].index
	}
	g := p.gpus[c.slots[0]]
	return Placement{
		ID: p.lastID, Model: req.Model, Tenant: req.Tenant, Node: g.node, Zone: g.zone,
		GPUs: indexes, MemoryMiB: req.MemoryMiB, Score: c.score,
	}
}

// apply charges a placement to its GPUs and tenant; unapply undoes it.
func (p *Pool) apply(rec placed) {
	p.charge(rec, 1)
	p.placements[rec.placement.ID] = rec
}

func (p *Pool) unapply(rec placed) {
	p.charge(rec, -1)
	delete(p.placements, rec.placement.ID)
}

func (p *Pool) charge(rec placed, sign int) {
	pl := rec.placement
	for _, s := range rec.slots {
		if rec.adopted {
			break // the fleet's reservations and hot models already count it
		}
		g := &p.gpus[s]
		g.reserved += int64(sign) * pl.MemoryMiB
		g.models[pl.Model] += sign
		if g.models[pl.Model] == 0 {
			delete(g.models, pl.Model)
		}
	}
	if q, ok := p.queues[pl.Tenant]; ok {
		q.gpus += sign * len(rec.slots)
		q.memoryMiB += int64(sign*len(rec.slots)) * pl.MemoryMiB
		q.count += sign
	}
}
