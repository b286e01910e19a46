package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/inferxds/inferxds/deploy"
	"github.com/inferxds/inferxds/snapshot"
)

func exampleModels(t *testing.T) []string {
	t.Helper()
	pol, err := deploy.LoadExamplePolicy()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range pol.Models {
		names = append(names, snapshot.ClusterName(m.Name))
	}
	slices.Sort(names)
	return names
}

func TestPlanPrintsWhatAZoneReceives(t *testing.T) {
	models := strings.Join(exampleModels(t), ",")
	for _, zone := range []string{"az-1", "az-2"} {
		t.Run(zone, func(t *testing.T) {
			r := runCLI(t, "plan", "--zone", zone)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			d := parseDump(t, []byte(r.stdout))
			for key, want := range map[string]string{
				"listeners": snapshot.APIListenerName + "," + snapshot.SocketListenerName,
				"routes":    snapshot.RouteConfigName,
				"clusters":  models,
				"endpoints": models,
			} {
				if got := strings.Join(d.names(key), ","); got != want {
					t.Errorf("%s = %q, want %q", key, got, want)
				}
				if d[key].Version == "" {
					t.Errorf("%s has no version", key)
				}
			}
			if got := firstPriorityZone(d, "llama-2-7b"); got != zone {
				t.Errorf("llama-2-7b priority 0 is in %q, want the planned zone %q", got, zone)
			}
		})
	}
}

// firstPriorityZone is the zone of the cluster's priority-0 locality.
func firstPriorityZone(d dumped, cluster string) string {
	for _, cla := range d["endpoints"].Resources {
		if cla["clusterName"] != cluster {
			continue
		}
		for _, l := range cla["endpoints"].([]any) {
			locality := l.(map[string]any)
			if _, hasPriority := locality["priority"]; !hasPriority {
				return locality["locality"].(map[string]any)["zone"].(string)
			}
		}
	}
	return ""
}

func TestPlanWithBrokenPolicyFails(t *testing.T) {
	policyDir, fleetFile := copyExamples(t)
	editFile(t, policyDir+"/dr-policy.yaml", `rto: "10s"`, `rto: "soon"`)
	r := runCLI(t, "plan", "--zone", "az-1", "--policy-dir", policyDir, "--fleet", fleetFile)
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "rto") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1, nothing printed, the rto problem named", r.code, r.stdout, r.stderr)
	}
}
