package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/gpupool"
	"github.com/inferxds/inferxds/topology"
)

// tenantStatus is one tenant's share of the GPU pool in /status: the GPUs
// its models' hot instances hold against its gpuQuota (0: unlimited).
type tenantStatus struct {
	Name        string `json:"name"`
	GPUsUsed    int    `json:"gpusUsed"`
	GPUQuota    int    `json:"gpuQuota"`
	Instances   int    `json:"instances"`
	Reclaimable bool   `json:"reclaimable,omitempty"`
}

// tenantUsage charges the fleet's instances to the policy's tenants, in
// tenant name order.
func tenantUsage(fleet *topology.Fleet, pol *drpolicy.Policy) []tenantStatus {
	if fleet == nil || pol == nil || len(pol.Tenants) == 0 {
		return nil
	}
	pool, err := gpupool.NewPool(fleet, gpupool.TenantQueues(pol), gpupool.DefaultOvercommit)
	if err != nil {
		return nil // the policy's tenants were validated when it loaded
	}
	pool.Adopt(fleet.Instances, gpupool.ModelTenants(pol))
	var out []tenantStatus
	for _, u := range pool.Usage().Tenants {
		out = append(out, tenantStatus{
			Name: u.Queue.Name, GPUsUsed: u.GPUs, GPUQuota: u.Queue.Capability.GPUs,
			Instances: u.Placements, Reclaimable: u.Queue.Reclaimable,
		})
	}
	return out
}

func (cp *controlPlane) tenantUsage() []tenantStatus {
	pol, _ := cp.hub.Policy.Get()
	return tenantUsage(cp.servedFleet(), pol)
}

var (
	tenantGPUUsedDesc = prometheus.NewDesc("inferxds_tenant_gpu_used",
		"GPUs held by the hot instances of the tenant's models.", []string{"tenant"}, nil)
	tenantGPUQuotaDesc = prometheus.NewDesc("inferxds_tenant_gpu_quota",
		"The tenant's gpuQuota from the policy; 0 is unlimited.", []string{"tenant"}, nil)
)

// tenantCollector reports tenantUsage at scrape time. Its labels are the
// tenant names the policy declares, nothing a client sends.
type tenantCollector struct{ cp *controlPlane }

func (c tenantCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- tenantGPUUsedDesc
	ch <- tenantGPUQuotaDesc
}

func (c tenantCollector) Collect(ch chan<- prometheus.Metric) {
	for _, t := range c.cp.tenantUsage() {
		ch <- prometheus.MustNewConstMetric(tenantGPUUsedDesc, prometheus.GaugeValue, float64(t.GPUsUsed), t.Name)
		ch <- prometheus.MustNewConstMetric(tenantGPUQuotaDesc, prometheus.GaugeValue, float64(t.GPUQuota), t.Name)
	}
}
