package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestBootstrapRequiresTheNodeIdentity(t *testing.T) {
	r := runCLI(t, "bootstrap", "--node-id", "envoy-1", "--xds-address", "127.0.0.1:18000")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "zone") {
		t.Errorf("without --zone: exit %d, stdout %q, stderr %q; want 1 and the missing flag named", r.code, r.stdout, r.stderr)
	}
}

func TestBootstrapGRPCPrintsJSONForTheNode(t *testing.T) {
	r := runCLI(t, "bootstrap", "--grpc", "--node-id", "app-1", "--zone", "az-2", "--xds-address", "127.0.0.1:18000")
	var got struct {
		Node struct {
			ID       string                `json:"id"`
			Locality struct{ Zone string } `json:"locality"`
		} `json:"node"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 {
		t.Fatalf("exit %d, err %v, stdout:\n%s", r.code, err, r.stdout)
	}
	if got.Node.ID != "app-1" || got.Node.Locality.Zone != "az-2" {
		t.Errorf("node = %+v, want app-1 in az-2", got.Node)
	}
}

func TestBootstrapXDSModeDeltaAsksEnvoyForIncrementalADS(t *testing.T) {
	r := runCLI(t, "bootstrap", "--xds-mode", "delta", "--node-id", "envoy-1", "--zone", "az-1", "--xds-address", "127.0.0.1:18000")
	if r.code != 0 || !strings.Contains(r.stdout, "api_type: DELTA_GRPC") {
		t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant api_type: DELTA_GRPC", r.code, r.stderr, r.stdout)
	}
	r = runCLI(t, "bootstrap", "--grpc", "--xds-mode", "delta", "--node-id", "app-1", "--zone", "az-1", "--xds-address", "127.0.0.1:18000")
	if r.code != 1 || !strings.Contains(r.stderr, "state-of-the-world") {
		t.Errorf("--grpc --xds-mode delta: exit %d, stderr %q; want 1 and why", r.code, r.stderr)
	}
}
