package gpupool

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/inferxds/inferxds/topology"
)

func gpu(index int, totalMiB, usedMiB int64) topology.GPU {
	return topology.GPU{Index: index, MemoryTotalMiB: totalMiB, MemoryUsedMiB: usedMiB}
}

// testFleet has, in zone-a: node-a (an empty and a half-used 80 GB GPU),
// node-b (llama loaded on a GPU), node-d (unhealthy, huge) and node-e (one
// draining and one empty GPU); in zone-b: node-c with four 24 GB GPUs;
// zone-c has no nodes.
func testFleet() *topology.Fleet {
	draining := gpu(0, 80000, 0)
	draining.Health = topology.HealthDraining
	f := &topology.Fleet{
		Zones: []topology.Zone{{Name: "zone-a", Role: topology.ZoneActive}, {Name: "zone-b", Role: topology.ZoneStandby}, {Name: "zone-c", Role: topology.ZoneStandby}},
		Nodes: []topology.Node{
			{Name: "node-a", Zone: "zone-a", GPUs: []topology.GPU{gpu(0, 80000, 0), gpu(1, 80000, 40000)}},
			{Name: "node-b", Zone: "zone-a", GPUs: []topology.GPU{gpu(0, 80000, 20000)}},
			{Name: "node-c", Zone: "zone-b", GPUs: []topology.GPU{gpu(0, 24000, 0), gpu(1, 24000, 0), gpu(2, 24000, 0), gpu(3, 24000, 0)}},
			{Name: "node-d", Zone: "zone-a", Health: topology.HealthUnhealthy, GPUs: []topology.GPU{gpu(0, 200000, 0)}},
			{Name: "node-e", Zone: "zone-a", GPUs: []topology.GPU{draining, gpu(1, 80000, 0)}},
		},
		Instances: []topology.Instance{
			{Name: "llama-1", Model: "llama", Node: "node-b", GPUs: []int{0}, Address: "10.0.0.1", Port: 8000},
		},
	}
	f.ApplyDefaults()
	return f
}

func testQueues() []Queue {
	return []Queue{
		{Name: "chat", Weight: 3, Capability: Capability{GPUs: 2}},
		{Name: "batch", Weight: 1, Capability: Capability{MemoryMiB: 50000}, Reclaimable: true},
	}
}

func newTestPool(t testing.TB) *Pool {
	t.Helper()
	p, err := NewPool(testFleet(), testQueues(), DefaultOvercommit)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSchedulePlacesOnBestGPU(t *testing.T) {
	tests := []struct {
		name      string
		before    []Request
		req       Request
		wantNode  string
		wantGPUs  []int
		wantScore float64
	}{
		{
			name:     "emptiest GPU wins, ties go to the first node by name",
			req:      Request{Model: "qwen", MemoryMiB: 10000},
			wantNode: "node-a", wantGPUs: []int{0}, wantScore: 50,
		},
		{
			name:     "a GPU already holding the model wins despite less free memory",
			req:      Request{Model: "llama", MemoryMiB: 10000},
			wantNode: "node-b", wantGPUs: []int{0}, wantScore: 50 + 50*100000.0/120000,
		},
		{
			name:     "our reservations count: the next request goes to the next emptiest GPU",
			before:   []Request{{Model: "qwen", MemoryMiB: 100000}},
			req:      Request{Model: "mistral", MemoryMiB: 30000},
			wantNode: "node-c", wantGPUs: []int{0}, wantScore: 50,
		},
		{
			name:     "overcommit admits more than a GPU's raw memory",
			req:      Request{Model: "qwen", MemoryMiB: 30000, Zone: "zone-b"},
			wantNode: "node-c", wantGPUs: []int{0}, wantScore: 50,
		},
		{
			name:     "tensor parallel takes GPUs of one node, lowest indexes on ties",
			req:      Request{Model: "qwen-72b", MemoryMiB: 20000, GPUs: 3},
			wantNode: "node-c", wantGPUs: []int{0, 1, 2}, wantScore: 50,
		},
		{
			name:     "tensor parallel prefers the node's emptiest GPUs",
			before:   []Request{{Model: "small", MemoryMiB: 18000, Node: "node-c"}},
			req:      Request{Model: "qwen-72b", MemoryMiB: 10000, GPUs: 2},
			wantNode: "node-c", wantGPUs: []int{1, 2}, wantScore: 50,
		},
		{
			name:     "tenant within its capability",
			before:   []Request{{Model: "a", Tenant: "chat", MemoryMiB: 1000}},
			req:      Request{Model: "b", Tenant: "chat", MemoryMiB: 1000},
			wantNode: "node-c", wantGPUs: []int{0}, wantScore: 50,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPool(t)
			for _, r := range tt.before {
				if _, err := p.Schedule(r); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			got, err := p.Schedule(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			want := Placement{ID: got.ID, Model: tt.req.Model, Tenant: tt.req.Tenant, Node: tt.wantNode, Zone: got.Zone,
				GPUs: tt.wantGPUs, MemoryMiB: tt.req.MemoryMiB, Score: tt.wantScore}
			if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
				t.Errorf("placement (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScheduleRefusesWithReason(t *testing.T) {
	tests := []struct {
		name     string
		before   []Request
		req      Request
		want     error
		wantText string
	}{
		{name: "no model", req: Request{MemoryMiB: 1}, want: ErrInvalidRequest},
		{name: "no memory", req: Request{Model: "m"}, want: ErrInvalidRequest},
		{name: "negative GPUs", req: Request{Model: "m", MemoryMiB: 1, GPUs: -1}, want: ErrInvalidRequest},
		{name: "unknown tenant", req: Request{Model: "m", MemoryMiB: 1, Tenant: "nope"}, want: ErrUnknownTenant, wantText: `"nope"`},
		{name: "unknown zone", req: Request{Model: "m", MemoryMiB: 1, Zone: "zone-x"}, want: ErrUnknownZone, wantText: `"zone-x"`},
		{name: "unknown node", req: Request{Model: "m", MemoryMiB: 1, Node: "node-x"}, want: ErrUnknownNode, wantText: `"node-x"`},
		{
			name:   "over the tenant's GPU capability",
			before: []Request{{Model: "a", Tenant: "chat", MemoryMiB: 1000}},
			req:    Request{Model: "b", Tenant: "chat", MemoryMiB: 1000, GPUs: 2},
			want:   ErrQuotaExceeded, wantText: "tenant chat holds 1 of 2 GPUs and asks for 2 more",
		},
		{
			name:   "over the tenant's memory capability",
			before: []Request{{Model: "a", Tenant: "batch", MemoryMiB: 30000}},
			req:    Request{Model: "b", Tenant: "batch", MemoryMiB: 30000},
			want:   ErrQuotaExceeded, wantText: "tenant batch holds 30000 of 50000 MiB",
		},
		{
			name: "more GPUs than any node has",
			req:  Request{Model: "m", MemoryMiB: 1, GPUs: 5},
			want: ErrNoSuitableGPU, wantText: "most on one node: 4",
		},
		{
			name: "a zone without nodes",
			req:  Request{Model: "m", MemoryMiB: 1, Zone: "zone-c"},
			want: ErrNoSuitableGPU, wantText: "most on one node: 0",
		},
		{
			name: "unhealthy node",
			req:  Request{Model: "m", MemoryMiB: 1, Node: "node-d"},
			want: ErrNoSuitableGPU,
		},
		{
			name: "more than any GPU's limit names the closest node",
			req:  Request{Model: "m", MemoryMiB: 120001},
			want: ErrInsufficientMemory, wantText: "best candidate node node-a has 120000 MiB free",
		},
		{
			name: "measured use counts when above the reservation",
			req:  Request{Model: "m", MemoryMiB: 80001, GPUs: 2, Node: "node-a"},
			want: ErrInsufficientMemory, wantText: "best candidate node node-a has 80000 MiB free on its 2 emptiest",
		},
		{
			name: "more than the zone's GPUs hold after overcommit",
			req:  Request{Model: "m", MemoryMiB: 36001, Zone: "zone-b"},
			want: ErrInsufficientMemory, wantText: "best candidate node node-c has 36000 MiB free",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPool(t)
			for _, r := range tt.before {
				if _, err := p.Schedule(r); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			before := p.Usage()
			_, err := p.Schedule(tt.req)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantText) || !strings.Contains(err.Error(), tt.req.String()) {
				t.Errorf("err = %q, want it to name the request and say %q", err, tt.wantText)
			}
			if diff := cmp.Diff(before, p.Usage()); diff != "" {
				t.Errorf("a refused request changed the pool (-before +after):\n%s", diff)
			}
		})
	}
}

func TestUsageAccountsPerGPUAndTenant(t *testing.T) {
	p := newTestPool(t)
	if _, err := p.Schedule(Request{Model: "qwen", Tenant: "chat", MemoryMiB: 10000, GPUs: 2, Zone: "zone-b"}); err != nil {
		t.Fatal(err)
	}
	u := p.Usage()
	wantLimit := int64(0)
	for _, g := range testFleet().Nodes {
		for _, d := range g.GPUs {
			wantLimit += int64(float64(d.MemoryTotalMiB) * DefaultOvercommit)
		}
	}
	if u.LimitMiB != wantLimit || u.ReservedMiB != 20000 {
		t.Errorf("pool limit, reserved = %d, %d; want %d, 20000", u.LimitMiB, u.ReservedMiB, wantLimit)
	}
	wantTenants := []TenantUsage{
		{Queue: testQueues()[1]},
		{Queue: testQueues()[0], GPUs: 2, MemoryMiB: 20000, Placements: 1},
	}
	if diff := cmp.Diff(wantTenants, u.Tenants); diff != "" {
		t.Errorf("tenants (-want +got):\n%s", diff)
	}
	wantGPU := GPUUsage{Node: "node-c", Zone: "zone-b", Index: 0, CapacityMiB: 24000, LimitMiB: 36000,
		ReservedMiB: 10000, FreeMiB: 26000, Schedulable: true, Models: []string{"qwen"}}
	if diff := cmp.Diff(wantGPU, gpuUsage(t, u, "node-c", 0)); diff != "" {
		t.Errorf("node-c GPU 0 (-want +got):\n%s", diff)
	}
	if g := gpuUsage(t, u, "node-e", 0); g.Schedulable {
		t.Errorf("draining GPU reported schedulable: %+v", g)
	}
}

func gpuUsage(t *testing.T, u Usage, node string, index int) GPUUsage {
	t.Helper()
	for _, g := range u.GPUs {
		if g.Node == node && g.Index == index {
			return g
		}
	}
	t.Fatalf("no GPU %s/%d in usage", node, index)
	return GPUUsage{}
}

func TestReleaseReturnsCapacityOnce(t *testing.T) {
	p := newTestPool(t)
	initial := p.Usage()
	pl, err := p.Schedule(Request{Model: "qwen", Tenant: "batch", MemoryMiB: 40000})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Release(pl); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(initial, p.Usage()); diff != "" {
		t.Errorf("after release (-initial +now):\n%s", diff)
	}
	if err := p.Release(pl); !errors.Is(err, ErrUnknownPlacement) {
		t.Errorf("second release: err = %v, want %v", err, ErrUnknownPlacement)
	}
	if err := p.Release(Placement{}); !errors.Is(err, ErrUnknownPlacement) {
		t.Errorf("zero placement: err = %v, want %v", err, ErrUnknownPlacement)
	}
}

func TestReplaceMovesOrLeavesPoolUnchanged(t *testing.T) {
	p := newTestPool(t)
	old, err := p.Schedule(Request{Model: "qwen", Tenant: "batch", MemoryMiB: 30000, Zone: "zone-b"})
	if err != nil {
		t.Fatal(err)
	}
	before := p.Usage()
	if _, err := p.Replace(old, Request{Model: "qwen", Tenant: "batch", MemoryMiB: 60000}); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("replace over quota: err = %v, want %v", err, ErrQuotaExceeded)
	}
	if diff := cmp.Diff(before, p.Usage()); diff != "" {
		t.Errorf("failed replace changed the pool (-before +after):\n%s", diff)
	}
	// 45000 MiB fits the tenant's 50000 only because the old 30000 is freed.
	moved, err := p.Replace(old, Request{Model: "qwen", Tenant: "batch", MemoryMiB: 45000, Zone: "zone-a"})
	if err != nil {
		t.Fatal(err)
	}
	if moved.Node != "node-a" || moved.ID == old.ID {
		t.Errorf("moved = %+v, want a new placement on node-a", moved)
	}
	if err := p.Release(old); !errors.Is(err, ErrUnknownPlacement) {
		t.Errorf("old placement still live after replace: err = %v", err)
	}
	if got := gpuUsage(t, p.Usage(), "node-c", 0).ReservedMiB; got != 0 {
		t.Errorf("old GPU still holds %d MiB", got)
	}
}

func TestNewPoolReportsEveryProblem(t *testing.T) {
	queues := []Queue{
		{Name: "dup"}, {Name: "dup"}, {Name: "Bad Name"},
		{Name: "neg", Weight: -1, Capability: Capability{GPUs: -1, MemoryMiB: -1}},
	}
	_, err := NewPool(testFleet(), queues, 0.5)
	if err == nil {
		t.Fatal("NewPool accepted bad queues and overcommit")
	}
	for _, want := range []string{"overcommit", "queues[1].name", "queues[2].name", "queues[3].weight", "queues[3].capability.gpus", "queues[3].capability.memoryMiB"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}
