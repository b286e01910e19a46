package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/inferxds/inferxds/deploy"
	"github.com/inferxds/inferxds/topology"
)

// TestScenariosPickFromTheExampleFleet: each scenario takes down the
// instances its README line promises, and only running ones.
func TestScenariosPickFromTheExampleFleet(t *testing.T) {
	fleet, err := demoFleet()
	if err != nil {
		t.Fatal(err)
	}
	pol, err := deploy.LoadExamplePolicy()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"process-crash":    {"llama-2-7b-az1-primary"},
		"node-down":        {"gpt-4-8b-az1-primary", "llama-2-7b-az1-primary", "mistral-7b-az1-primary"},
		"gpu-failure":      {"llama-2-7b-az1-primary"},
		"az-outage":        {"gpt-4-8b-az1-primary", "llama-2-7b-az1-primary", "mistral-7b-az1-primary"},
		"model-corruption": {"llama-2-7b-az1-primary"},
	}
	for _, sc := range scenarios {
		picked, err := sc.pick(fleet, pol)
		if err != nil {
			t.Errorf("%s: %v", sc.name, err)
			continue
		}
		var names []string
		for _, in := range picked {
			names = append(names, in.Name)
			if in.Tier == topology.TierCold {
				t.Errorf("%s picked cold %s, which has no process", sc.name, in.Name)
			}
		}
		slices.Sort(names)
		if !slices.Equal(names, want[sc.name]) {
			t.Errorf("%s picked %v, want %v", sc.name, names, want[sc.name])
		}
	}
}

func TestDrillAndDemoRefuseBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"drill", "--scenario", "meteor"}, `--scenario "meteor": must be one of process-crash, node-down, gpu-failure, az-outage, model-corruption`},
		{[]string{"demo", "--duration", "5s", "--fault-after", "8s"}, "--fault-after 8s must be shorter than --duration 5s"},
		{[]string{"drill", "--rate", "0"}, "--rate 0 and --in-flight 1000 must be positive"},
	} {
		var stdout, stderr bytes.Buffer
		if code := execute(context.Background(), tc.args, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error saying %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
