package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// TestEnvoyConfigDumpMatchesStatus: what `inferxds status` reports over
// CSDS for a real Envoy is what that Envoy's own admin /config_dump says it
// holds, before and after an endpoint change.
func TestEnvoyConfigDumpMatchesStatus(t *testing.T) {
	envoyBin := requireEnvoy(t)
	llama := startModelSim(t, "llama-a", "llama-2-7b")
	mistral := startModelSim(t, "mistral-a", "mistral-7b")
	fleet := fleetOf(llama.httpInstance(t), mistral.httpInstance(t))
	cp := startControlPlane(t, twoModelPolicy, fleet)
	proxy := startEnvoy(t, envoyBin, cp, "az-1")
	node := t.Name() + "-envoy"

	before := waitStatusMatchesEnvoy(t, cp, proxy, node, "", 1)
	report(t, "csds envoy synced versions %v", before)

	fleet.Instances[0].Weight = 7
	cp.writeFleet(t, fleet)
	after := waitStatusMatchesEnvoy(t, cp, proxy, node, before["ClusterLoadAssignment"], 7)
	if after["Cluster"] != before["Cluster"] || after["Listener"] != before["Listener"] {
		t.Errorf("an endpoint weight changed the cluster or listener version: before %v, after %v", before, after)
	}
	report(t, "csds envoy after an endpoint change %v", after)
}

// waitStatusMatchesEnvoy polls until status says the node is SYNCED on
// every type, at an endpoint version other than notEDS, and Envoy's
// config_dump holds exactly those versions (LDS and CDS as their last
// update, every route configuration at the RDS version) and llama-2-7b's
// endpoint at llamaWeight. (Envoy's dump leaves EDS versions empty, so the
// endpoints are compared by content.) It returns the versions by type.
func waitStatusMatchesEnvoy(t *testing.T, cp *controlPlane, proxy *envoyProxy, node, notEDS string, llamaWeight int) map[string]string {
	t.Helper()
	var versions map[string]string
	err := poll(30*time.Second, func() error {
		var err error
		if versions, err = syncedVersions(cp, node); err != nil {
			return err
		}
		if versions["ClusterLoadAssignment"] == notEDS {
			return fmt.Errorf("endpoint version still %s", notEDS)
		}
		held, err := proxy.configDumpHeld()
		if err != nil {
			return err
		}
		want := map[string][]string{
			"Listener": {versions["Listener"]}, "Cluster": {versions["Cluster"]},
			"RouteConfiguration": {versions["RouteConfiguration"]}, "llama-2-7b weights": {fmt.Sprint(llamaWeight)},
		}
		for key, w := range want {
			if !slices.Equal(held[key], w) {
				return fmt.Errorf("%s: Envoy holds %v, status reports %v (all: %v)", key, held[key], w, held)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("status and Envoy's config_dump never agreed: %v", err)
	}
	return versions
}

// syncedVersions runs `inferxds status -o json` and returns the node's
// ACKed version per type, or an error until every type is SYNCED.
func syncedVersions(cp *controlPlane, node string) (map[string]string, error) {
	cmd := exec.Command(binaries.inferxds, "status", "--xds-address", cp.XDSAddress, "-o", "json")
	cmd.Env = hermeticEnv()
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("inferxds status: %v: %s", err, stderrOf(err))
	}
	var proxies []struct {
		Node  string `json:"node"`
		Types []struct {
			Type, Version, Status string
		} `json:"types"`
	}
	if err := json.Unmarshal(out, &proxies); err != nil {
		return nil, err
	}
	for _, p := range proxies {
		if p.Node != node {
			continue
		}
		versions := map[string]string{}
		for _, ts := range p.Types {
			if ts.Status != "SYNCED" {
				return nil, fmt.Errorf("%s is %s", ts.Type, ts.Status)
			}
			versions[ts.Type] = ts.Version
		}
		return versions, nil
	}
	return nil, fmt.Errorf("status does not list %s:\n%s", node, out)
}

// configDumpHeld reads /config_dump?include_eds: the LDS and CDS
// last-update versions, the RDS versions of the route configurations and
// each cluster's endpoint weights (keyed "<cluster> weights"),
// deduplicated and sorted.
func (e *envoyProxy) configDumpHeld() (map[string][]string, error) {
	resp, err := e.client.Get("http://" + e.adminAddress + "/config_dump?include_eds")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var dump struct {
		Configs []struct {
			Type                string `json:"@type"`
			VersionInfo         string `json:"version_info"`
			DynamicRouteConfigs []struct {
				VersionInfo string `json:"version_info"`
			} `json:"dynamic_route_configs"`
			DynamicEndpointConfigs []struct {
				EndpointConfig struct {
					ClusterName string `json:"cluster_name"`
					Endpoints   []struct {
						LbEndpoints []struct {
							LoadBalancingWeight int `json:"load_balancing_weight"`
						} `json:"lb_endpoints"`
					} `json:"endpoints"`
				} `json:"endpoint_config"`
			} `json:"dynamic_endpoint_configs"`
		} `json:"configs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&dump); err != nil {
		return nil, err
	}
	held := map[string][]string{}
	add := func(key, version string) {
		if !slices.Contains(held[key], version) {
			held[key] = append(held[key], version)
			slices.Sort(held[key])
		}
	}
	for _, c := range dump.Configs {
		switch c.Type {
		case "type.googleapis.com/envoy.admin.v3.ListenersConfigDump":
			add("Listener", c.VersionInfo)
		case "type.googleapis.com/envoy.admin.v3.ClustersConfigDump":
			add("Cluster", c.VersionInfo)
		}
		for _, r := range c.DynamicRouteConfigs {
			add("RouteConfiguration", r.VersionInfo)
		}
		for _, ep := range c.DynamicEndpointConfigs {
			for _, loc := range ep.EndpointConfig.Endpoints {
				for _, lb := range loc.LbEndpoints {
					add(ep.EndpointConfig.ClusterName+" weights", fmt.Sprint(lb.LoadBalancingWeight))
				}
			}
		}
	}
	return held, nil
}
