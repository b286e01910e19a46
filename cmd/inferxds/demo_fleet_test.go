package main

import (
	"os"
	"testing"
	"time"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
)

// TestDemoFleetMatchesTheExamplePolicy: the demo's fleet, as written for
// serve, loads back with a distinct free port per instance and, per model,
// the standby tiers the example policy asks for.
func TestDemoFleetMatchesTheExamplePolicy(t *testing.T) {
	fleet, err := demoFleet()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, _, err := writeDemoInputs(dir, fleet, 0); err != nil {
		t.Fatal(err)
	}
	policyDir, fleetFile, err := writeDemoInputs(dir, fleet, 1500*time.Millisecond) // over the last run's
	if err != nil {
		t.Fatal(err)
	}
	pol, err := drpolicy.Load(policyDir)
	if err != nil {
		t.Fatal(err)
	}
	if got := pol.AZFailover.HealthCheckInterval.D(); got != 1500*time.Millisecond {
		t.Errorf("healthCheckInterval %v, want the demo's 1.5s", got)
	}
	data, err := os.ReadFile(fleetFile)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := topology.ParseFleet(fleetFile, data)
	if err != nil {
		t.Fatal(err)
	}
	ports := map[uint32]string{}
	for _, in := range loaded.Instances {
		if other, dup := ports[in.Port]; dup || in.Address != "127.0.0.1" {
			t.Errorf("%s on %s:%d (also %q)", in.Name, in.Address, in.Port, other)
		}
		ports[in.Port] = in.Name
	}
	for _, m := range pol.Models {
		counts := map[topology.Tier]int{}
		for _, in := range loaded.Instances {
			if in.Model == m.Name && in.Role == topology.RoleStandby {
				counts[in.Tier]++
			}
		}
		want := map[topology.Tier]int{topology.TierHot: m.HotStandby, topology.TierWarm: m.WarmStandby, topology.TierCold: m.ColdStandby}
		for tier, n := range want {
			if counts[tier] != n {
				t.Errorf("%s: %d %s standbys, the policy asks for %d", m.Name, counts[tier], tier, n)
			}
		}
	}
	for _, n := range loaded.Nodes {
		if len(n.GPUs) != demoGPUsPerNode {
			t.Errorf("node %s has %d GPUs, want %d", n.Name, len(n.GPUs), demoGPUsPerNode)
		}
	}
	roles := map[string]topology.ZoneRole{}
	for _, z := range loaded.Zones {
		roles[z.Name] = z.Role
	}
	if roles["az-1"] != topology.ZoneActive || roles["az-2"] != topology.ZoneActive || roles["az-3"] != topology.ZoneStandby {
		t.Errorf("zones %v, want az-1 and az-2 active, az-3 standby", roles)
	}
}
