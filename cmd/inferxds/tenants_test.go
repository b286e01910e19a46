package main

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestServeReportsTenantGPUUsage: with the example's models given to the
// example's tenants, /status and /metrics charge each tenant the GPUs its
// models' hot instances hold in the fleet (llama-2-7b: four one-GPU hot
// instances; mistral-7b: two, its warm and cold ones hold none).
func TestServeReportsTenantGPUUsage(t *testing.T) {
	policyDir, fleetFile := copyExamples(t)
	policy := filepath.Join(policyDir, "dr-policy.yaml")
	editFile(t, policy, "priority: critical", "priority: critical\n    tenant: chat")
	editFile(t, policy, "priority: high", "priority: high\n    tenant: batch")
	s := startServe(t, "--policy-dir", policyDir, "--fleet", fleetFile)

	var status statusDocument
	if err := json.Unmarshal([]byte(s.get(t, "/status")), &status); err != nil {
		t.Fatal(err)
	}
	want := []tenantStatus{
		{Name: "batch", GPUsUsed: 2, GPUQuota: 4, Instances: 2, Reclaimable: true},
		{Name: "chat", GPUsUsed: 4, GPUQuota: 8, Instances: 4},
	}
	if !reflect.DeepEqual(status.Tenants, want) {
		t.Errorf("/status tenants = %+v, want %+v", status.Tenants, want)
	}
	metrics := s.get(t, "/metrics")
	for _, line := range []string{
		`inferxds_tenant_gpu_used{tenant="batch"} 2`, `inferxds_tenant_gpu_quota{tenant="batch"} 4`,
		`inferxds_tenant_gpu_used{tenant="chat"} 4`, `inferxds_tenant_gpu_quota{tenant="chat"} 8`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}
