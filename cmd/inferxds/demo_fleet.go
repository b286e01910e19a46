package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/inferxds/inferxds/deploy"
	"github.com/inferxds/inferxds/drpolicy/actuator/local"
	"github.com/inferxds/inferxds/topology"
)

// proxyZone is the zone of the demo's Envoy: its local primaries are
// az-1's.
const proxyZone = "az-1"

// demoGPUsPerNode is how many GPUs each demo node has: the eight of a DGX
// A100, as the simulated gpu-agents' mock machine, so that the standby
// zone has room to take an active zone over.
const demoGPUsPerNode = 8

// demoFleet is the embedded example fleet (three zones, az-3 the standby
// zone, the standby tiers the example policy asks for) with every node
// grown to demoGPUsPerNode GPUs and every instance on a free 127.0.0.1
// port.
func demoFleet() (*topology.Fleet, error) {
	fleet, err := deploy.LoadExampleFleet()
	if err != nil {
		return nil, err
	}
	for i := range fleet.Nodes {
		node := &fleet.Nodes[i]
		for len(node.GPUs) < demoGPUsPerNode {
			gpu := node.GPUs[0]
			gpu.Index = len(node.GPUs)
			node.GPUs = append(node.GPUs, gpu)
		}
	}
	ports, err := local.FreePorts(len(fleet.Instances))
	if err != nil {
		return nil, err
	}
	for i := range fleet.Instances {
		fleet.Instances[i].Address, fleet.Instances[i].Port = "127.0.0.1", ports[i]
	}
	return fleet, nil
}

// writeDemoInputs writes the example policy and fleet into dir, as a
// user's policy directory and fleet file, and returns their paths. A
// healthCheck other than 0 replaces the policy's healthCheckInterval (the
// period of the deep probes): the example's 10s suits a real fleet, not a
// drill of a few seconds.
func writeDemoInputs(dir string, fleet *topology.Fleet, healthCheck time.Duration) (policyDir, fleetFile string, err error) {
	policyDir = filepath.Join(dir, "policy")
	policy, err := fs.Sub(deploy.Examples, deploy.ExamplePolicyDir)
	if err != nil {
		return "", "", err
	}
	if err := os.RemoveAll(policyDir); err != nil { // a kept --dir's last run
		return "", "", err
	}
	if err := os.CopyFS(policyDir, policy); err != nil {
		return "", "", err
	}
	if healthCheck != 0 {
		if err := setHealthCheckInterval(filepath.Join(policyDir, examplePolicyFile), healthCheck); err != nil {
			return "", "", err
		}
	}
	data, err := yaml.Marshal(fleet)
	if err != nil {
		return "", "", err
	}
	fleetFile = filepath.Join(dir, "fleet.yaml")
	return policyDir, fleetFile, os.WriteFile(fleetFile, data, 0o644)
}

// examplePolicyFile is the example policy's file holding az_failover.
const examplePolicyFile = "dr-policy.yaml"

var healthCheckLine = regexp.MustCompile(`(?m)^(\s*healthCheckInterval:\s*)\S+`)

// setHealthCheckInterval rewrites the healthCheckInterval of a policy file.
func setHealthCheckInterval(path string, d time.Duration) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !healthCheckLine.Match(data) {
		return fmt.Errorf("%s: no healthCheckInterval to set", path)
	}
	return os.WriteFile(path, healthCheckLine.ReplaceAll(data, []byte("${1}"+d.String())), 0o644)
}
