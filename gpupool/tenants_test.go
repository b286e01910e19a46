package gpupool

import (
	"errors"
	"strings"
	"testing"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
)

// tenantPolicy: chat may hold 2 GPUs, batch 3 and is reclaimable; llama is
// chat's, qwen batch's, shared has no tenant.
func tenantPolicy() *drpolicy.Policy {
	return &drpolicy.Policy{
		Models: []drpolicy.Model{{Name: "llama", Tenant: "chat"}, {Name: "qwen", Tenant: "batch"}, {Name: "shared"}},
		Tenants: []drpolicy.Tenant{
			{Name: "chat", Weight: 3, GPUQuota: 2},
			{Name: "batch", Weight: 1, GPUQuota: 3, Reclaimable: true},
		},
	}
}

func adoptedPool(t *testing.T, instances ...topology.Instance) *Pool {
	t.Helper()
	f := testFleet()
	f.Instances = append(f.Instances, instances...)
	f.ApplyDefaults()
	pol := tenantPolicy()
	p, err := NewPool(f, TenantQueues(pol), DefaultOvercommit)
	if err != nil {
		t.Fatal(err)
	}
	p.Adopt(f.Instances, ModelTenants(pol))
	return p
}

func tenantGPUs(p *Pool) map[string]int {
	used := map[string]int{}
	for _, u := range p.Usage().Tenants {
		used[u.Queue.Name] = u.GPUs
	}
	return used
}

func TestAdoptChargesFleetInstancesToTheirTenants(t *testing.T) {
	p := adoptedPool(t,
		topology.Instance{Name: "qwen-tp", Model: "qwen", Node: "node-c", GPUs: []int{0, 1}, Address: "10.0.0.2", Port: 8000},
		topology.Instance{Name: "qwen-cold", Model: "qwen", Node: "node-c", GPUs: []int{2}, Tier: topology.TierCold, Address: "10.0.0.3", Port: 8000},
		topology.Instance{Name: "shared-1", Model: "shared", Node: "node-a", GPUs: []int{0}, Address: "10.0.0.4", Port: 8000},
	)
	got := tenantGPUs(p)
	if got["chat"] != 1 || got["batch"] != 2 {
		t.Fatalf("tenant GPUs = %v, want chat 1 (llama-1), batch 2 (qwen-tp; cold instances hold no GPU)", got)
	}
	if free := p.Usage().GPUs[0].FreeMiB; free != 120000 {
		t.Errorf("adopting charged memory: node-a GPU 0 has %d MiB free, want 120000 (the fleet's reservations already count)", free)
	}
}

func TestScheduleBeyondAdoptedQuotaNamesTheTenant(t *testing.T) {
	p := adoptedPool(t, topology.Instance{Name: "llama-2", Model: "llama", Node: "node-a", GPUs: []int{0}, Address: "10.0.0.2", Port: 8000})
	_, err := p.Schedule(Request{Model: "llama", Tenant: "chat", MemoryMiB: 1000})
	if !errors.Is(err, ErrQuotaExceeded) || !strings.Contains(err.Error(), "tenant chat holds 2 of 2 GPUs") {
		t.Fatalf("Schedule beyond chat's quota: %v, want %v naming tenant chat", err, ErrQuotaExceeded)
	}
	if _, err := p.Schedule(Request{Model: "qwen", Tenant: "batch", MemoryMiB: 1000}); err != nil {
		t.Fatalf("batch is within its quota: %v", err)
	}
}

func TestReclaimCandidatesAreReclaimableTenantsInstances(t *testing.T) {
	p := adoptedPool(t, topology.Instance{Name: "qwen-1", Model: "qwen", Node: "node-c", GPUs: []int{3}, Address: "10.0.0.2", Port: 8000})
	placed, err := p.Schedule(Request{Model: "qwen", Tenant: "batch", MemoryMiB: 1000})
	if err != nil {
		t.Fatal(err)
	}
	got := p.ReclaimCandidates()
	if len(got) != 2 || got[0].Instance != "qwen-1" || got[1].ID != placed.ID {
		t.Fatalf("reclaim candidates = %+v, want batch's adopted qwen-1 then the new placement; never chat's llama-1", got)
	}
	if err := p.Release(got[0]); err != nil {
		t.Fatalf("releasing a reclaimed instance: %v", err)
	}
	if used := tenantGPUs(p)["batch"]; used != 1 {
		t.Errorf("batch holds %d GPUs after reclaiming qwen-1, want 1", used)
	}
}
