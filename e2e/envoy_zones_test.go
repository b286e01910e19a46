package e2e

import (
	"bufio"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"

	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology"
)

// priorities maps an endpoint's hostname (its instance name) to its EDS
// priority.
type priorities map[string]int

// TestEnvoyZonePrioritiesFollowThePlan: an Envoy of zone az-1 sends every
// request to az-1's primary, then, as instances are marked unhealthy one by
// one in the fleet file, to az-2's primary, to the hot standby, and to the
// standby zone az-3. At each step the priorities Envoy holds are the ones
// `inferxds plan --zone az-1` prints, and the requests go to its priority 0.
func TestEnvoyZonePrioritiesFollowThePlan(t *testing.T) {
	envoyBin := requireEnvoy(t)
	order := []*modelSim{
		startModelSim(t, "llama-az1", "llama-2-7b"),
		startModelSim(t, "llama-az2", "llama-2-7b"),
		startModelSim(t, "llama-hot", "llama-2-7b"),
		startModelSim(t, "llama-az3", "llama-2-7b"),
	}
	fleet := zoneFleet(t, order)
	cp := startControlPlane(t, llamaPolicy(""), fleet)
	proxy := startEnvoy(t, envoyBin, cp, "az-1")

	for step, want := range order {
		if step > 0 {
			fleet.Instances[step-1].Health = topology.HealthUnhealthy
			cp.writeFleet(t, fleet)
		}
		planned := cp.plannedPriorities(t, "az-1", "llama-2-7b")
		if first := planned.atPriority(0); len(first) != 1 || first[0] != want.id {
			t.Fatalf("step %d: plan puts %v at priority 0; want %s (the documented zone order)", step, first, want.id)
		}
		proxy.awaitPriorities(t, "llama-2-7b", planned)
		counts := countAnswers(t, 50, func(int) (string, error) { return proxy.call("llama-2-7b") })
		report(t, "envoy zone-priorities zone=az-1 instances-down=%d priorities=%v answers=%v", step, planned, counts)
		if counts[want.id] != 50 {
			t.Errorf("step %d: answers %v; want all 50 from %s", step, counts, want.id)
		}
	}
}

// zoneFleet places sims as az-1's primary, az-2's primary, a hot standby in
// az-1, and a primary in the standby zone az-3.
func zoneFleet(t *testing.T, sims []*modelSim) topology.Fleet {
	t.Helper()
	fleet := topology.Fleet{Zones: []topology.Zone{
		{Name: "az-1", Role: topology.ZoneActive},
		{Name: "az-2", Role: topology.ZoneActive},
		{Name: "az-3", Role: topology.ZoneStandby},
	}}
	for _, s := range sims {
		fleet.Instances = append(fleet.Instances, s.httpInstance(t))
	}
	fleet.Instances[1].Zone = "az-2"
	fleet.Instances[2].Role = topology.RoleStandby
	fleet.Instances[3].Zone = "az-3"
	return fleet
}

func (p priorities) atPriority(priority int) []string {
	var names []string
	for name, pr := range p {
		if pr == priority {
			names = append(names, name)
		}
	}
	return names
}

// plannedPriorities runs `inferxds plan` on cp's policy and fleet files and
// returns the priorities of model's endpoints for zone.
func (cp *controlPlane) plannedPriorities(t *testing.T, zone, model string) priorities {
	t.Helper()
	cmd := exec.Command(binaries.inferxds, "plan", "--zone", zone,
		"--policy-dir", filepath.Dir(cp.policyPath), "--fleet", cp.fleetPath)
	cmd.Env = hermeticEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("inferxds plan --zone %s: %v\n%s", zone, err, stderrOf(err))
	}
	var plan struct {
		Endpoints struct {
			Resources []struct {
				ClusterName string `yaml:"clusterName"`
				Endpoints   []struct {
					Priority    int `yaml:"priority"`
					LbEndpoints []struct {
						Endpoint struct {
							Hostname string `yaml:"hostname"`
						} `yaml:"endpoint"`
					} `yaml:"lbEndpoints"`
				} `yaml:"endpoints"`
			} `yaml:"resources"`
		} `yaml:"endpoints"`
	}
	if err := yaml.Unmarshal(out, &plan); err != nil {
		t.Fatalf("inferxds plan output: %v\n%s", err, out)
	}
	got := priorities{}
	for _, cla := range plan.Endpoints.Resources {
		if cla.ClusterName != snapshot.ClusterName(model) {
			continue
		}
		for _, locality := range cla.Endpoints {
			for _, lb := range locality.LbEndpoints {
				got[lb.Endpoint.Hostname] = locality.Priority
			}
		}
	}
	return got
}

// awaitPriorities waits until Envoy's /clusters shows exactly want for
// model's cluster.
func (e *envoyProxy) awaitPriorities(t *testing.T, model string, want priorities) {
	t.Helper()
	var held priorities
	err := poll(readyTimeout, func() error {
		var err error
		held, err = e.clusterPriorities(model)
		if err == nil && !maps.Equal(held, want) {
			err = fmt.Errorf("envoy holds %v", held)
		}
		return err
	})
	if err != nil {
		t.Fatalf("envoy never held the planned priorities %v: %v", want, err)
	}
}

// clusterPriorities reads each host's hostname and priority from /clusters,
// whose lines read cluster::address::field::value.
func (e *envoyProxy) clusterPriorities(model string) (priorities, error) {
	resp, err := e.client.Get("http://" + e.adminAddress + "/clusters")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	hostnames, prios := map[string]string{}, map[string]int{}
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		fields := strings.Split(lines.Text(), "::")
		if len(fields) != 4 || fields[0] != snapshot.ClusterName(model) {
			continue
		}
		switch fields[2] {
		case "hostname":
			hostnames[fields[1]] = fields[3]
		case "priority":
			prios[fields[1]], _ = strconv.Atoi(fields[3])
		}
	}
	got := priorities{}
	for addr, name := range hostnames {
		got[name] = prios[addr]
	}
	return got, lines.Err()
}
