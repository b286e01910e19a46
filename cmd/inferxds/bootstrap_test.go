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
