package gpupool

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/inferxds/inferxds/topology"
)

func fuzzPool(t *testing.T) *Pool {
	t.Helper()
	baseline := topology.GPU{Index: 0, MemoryTotalMiB: 16000, MemoryUsedMiB: 2000, MemoryReservedMiB: 1000}
	full := gpu(3, 8000, 8000)
	broken := gpu(1, 24000, 0)
	broken.Health = topology.HealthUnhealthy
	reserved := topology.GPU{Index: 0, MemoryTotalMiB: 24000, MemoryReservedMiB: 4000}
	f := &topology.Fleet{
		Zones: []topology.Zone{{Name: "zone-a", Role: topology.ZoneActive}, {Name: "zone-b", Role: topology.ZoneStandby}},
		Nodes: []topology.Node{
			{Name: "node-a", Zone: "zone-a", GPUs: []topology.GPU{baseline, gpu(1, 16000, 0)}},
			{Name: "node-b", Zone: "zone-a", GPUs: []topology.GPU{gpu(0, 8000, 0), gpu(1, 8000, 0), gpu(2, 8000, 0), full}},
			{Name: "node-c", Zone: "zone-b", GPUs: []topology.GPU{reserved, broken}},
		},
		Instances: []topology.Instance{{Name: "m0-1", Model: "m0", Node: "node-a", GPUs: []int{0}, Address: "10.0.0.1", Port: 8000}},
	}
	f.ApplyDefaults()
	queues := []Queue{
		{Name: "t0", Capability: Capability{GPUs: 3}},
		{Name: "t1", Capability: Capability{MemoryMiB: 20000}},
		{Name: "t2", Capability: Capability{GPUs: 4, MemoryMiB: 30000}},
	}
	p, err := NewPool(f, queues, DefaultOvercommit)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fuzzRequest spreads three bytes over models, tenants ("" included),
// sizes up to about 64 GiB, 0..3 GPUs and zones ("" included).
func fuzzRequest(a, b, c byte) Request {
	tenants := []string{"", "t0", "t1", "t2"}
	zones := []string{"", "zone-a", "zone-b"}
	return Request{
		Model:     fmt.Sprintf("m%d", a%4),
		Tenant:    tenants[a/4%4],
		MemoryMiB: int64(b)*250 + 1,
		GPUs:      int(c % 4),
		Zone:      zones[c/4%3],
	}
}

// maxFuzzOps bounds a run: the ledger check is linear in live placements,
// so megabyte inputs would spend the fuzzing time on a few executions.
const maxFuzzOps = 64

// FuzzScheduleRelease runs schedule, release and replace operations, four
// bytes each, and checks the accounting against its own ledger after each.
func FuzzScheduleRelease(f *testing.F) {
	f.Add([]byte{0, 20, 1, 0, 0, 40, 2, 0, 1, 0, 0, 0})
	f.Add([]byte{4, 30, 3, 0, 4, 30, 3, 0, 8, 80, 0, 0, 2, 0, 1, 2, 3, 0, 0, 0})
	f.Add([]byte{12, 60, 2, 4, 12, 60, 2, 8, 0, 255, 0, 0, 5, 100, 1, 0, 2, 1, 60, 9})
	f.Fuzz(func(t *testing.T, ops []byte) {
		ops = ops[:min(len(ops), 4*maxFuzzOps)]
		p := fuzzPool(t)
		initial := p.Usage()
		var live, released []Placement
		for ; len(ops) >= 4; ops = ops[4:] {
			live, released = fuzzStep(t, p, ops[:4], live, released)
			checkLedger(t, p, initial, live)
		}
		for _, pl := range live {
			if err := p.Release(pl); err != nil {
				t.Fatalf("release %+v: %v", pl, err)
			}
		}
		if diff := cmp.Diff(initial, p.Usage()); diff != "" {
			t.Fatalf("releasing everything did not restore the pool (-initial +now):\n%s", diff)
		}
	})
}

func fuzzStep(t *testing.T, p *Pool, op []byte, live, released []Placement) ([]Placement, []Placement) {
	switch {
	case op[0]%4 == 0 || len(live) == 0:
		req := fuzzRequest(op[1], op[2], op[3])
		if pl, err := p.Schedule(req); err == nil {
			checkShape(t, req, pl)
			live = append(live, pl)
		}
	case op[0]%4 == 1:
		i := int(op[1]) % len(live)
		if err := p.Release(live[i]); err != nil {
			t.Fatalf("release live %+v: %v", live[i], err)
		}
		released = append(released, live[i])
		live = append(live[:i], live[i+1:]...)
	case op[0]%4 == 2:
		i := int(op[1]) % len(live)
		req := fuzzRequest(op[2], op[3], op[1])
		if pl, err := p.Replace(live[i], req); err == nil {
			checkShape(t, req, pl)
			released = append(released, live[i])
			live[i] = pl
		}
	case len(released) > 0:
		stale := released[int(op[1])%len(released)]
		if err := p.Release(stale); !errors.Is(err, ErrUnknownPlacement) {
			t.Fatalf("release of released %+v: err = %v, want %v", stale, err, ErrUnknownPlacement)
		}
	}
	return live, released
}

// checkShape checks that a placement took the requested number of distinct
// GPUs in the requested zone.
func checkShape(t *testing.T, req Request, pl Placement) {
	t.Helper()
	distinct := slices.Compact(slices.Clone(pl.GPUs))
	if len(pl.GPUs) != req.gpuCount() || len(distinct) != len(pl.GPUs) || !slices.IsSorted(pl.GPUs) || (req.Zone != "" && pl.Zone != req.Zone) {
		t.Fatalf("request %v got placement %+v", req, pl)
	}
}

// checkLedger recomputes reservations and tenant holdings from the live
// placements and compares them with what the pool reports, then checks the
// limits the pool promises to keep.
func checkLedger(t *testing.T, p *Pool, initial Usage, live []Placement) {
	t.Helper()
	type gpuKey struct {
		node  string
		index int
	}
	reserved := make(map[gpuKey]int64)
	for _, g := range initial.GPUs {
		reserved[gpuKey{g.Node, g.Index}] = g.ReservedMiB
	}
	held := make(map[string]TenantUsage)
	for _, pl := range live {
		for _, i := range pl.GPUs {
			reserved[gpuKey{pl.Node, i}] += pl.MemoryMiB
		}
		h := held[pl.Tenant]
		h.GPUs += len(pl.GPUs)
		h.MemoryMiB += pl.MemoryMiB * int64(len(pl.GPUs))
		h.Placements++
		held[pl.Tenant] = h
	}
	now := p.Usage()
	for _, g := range now.GPUs {
		if want := reserved[gpuKey{g.Node, g.Index}]; g.ReservedMiB != want || g.FreeMiB < 0 {
			t.Fatalf("GPU %s/%d: reserved %d (ledger %d), free %d of limit %d", g.Node, g.Index, g.ReservedMiB, want, g.FreeMiB, g.LimitMiB)
		}
	}
	for _, tu := range now.Tenants {
		h, c := held[tu.Queue.Name], tu.Queue.Capability
		if tu.GPUs != h.GPUs || tu.MemoryMiB != h.MemoryMiB || tu.Placements != h.Placements {
			t.Fatalf("tenant %s: pool says %+v, ledger %+v", tu.Queue.Name, tu, h)
		}
		if (c.GPUs > 0 && tu.GPUs > c.GPUs) || (c.MemoryMiB > 0 && tu.MemoryMiB > c.MemoryMiB) {
			t.Fatalf("tenant %s holds %d GPUs / %d MiB over capability %+v", tu.Queue.Name, tu.GPUs, tu.MemoryMiB, c)
		}
	}
}
