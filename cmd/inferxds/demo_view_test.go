package main

import (
	"bytes"
	"regexp"
	"testing"
	"time"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
)

func TestDemoViewShowsEachInstanceAndTheRecovery(t *testing.T) {
	fleet := &topology.Fleet{Instances: []topology.Instance{
		{Name: "m-az1-primary", Model: "m", Zone: "az-1", Tier: topology.TierHot, Role: topology.RolePrimary, Health: topology.HealthUnhealthy},
		{Name: "m-az2-hot", Model: "m", Zone: "az-2", Tier: topology.TierHot, Role: topology.RolePrimary, Health: topology.HealthServing},
		{Name: "m-az3-warm", Model: "m", Zone: "az-3", Tier: topology.TierWarm, Role: topology.RoleStandby, Health: topology.HealthLoading},
		{Name: "m-az3-cold", Model: "m", Zone: "az-3", Tier: topology.TierCold, Role: topology.RoleStandby, Health: topology.HealthServing},
		{Name: "m-cold-1", Model: "m", Zone: "az-1", Tier: topology.TierCold, Role: topology.RoleStandby, Health: topology.HealthUnknown},
	}}
	v := demoView{
		Elapsed: 7 * time.Second, Fleet: fleet, Window: time.Second, Start: t0,
		Policy:  &drpolicy.Policy{Models: []drpolicy.Model{{Name: "m", Priority: "critical"}}},
		Traffic: map[string]windowCounts{"m": {Answers: map[string]int{"m-az1-primary": 10, "m-az2-hot": 30}, Failed: 2}},
		Events:  []marker{{Kind: markFault, At: at(5000), Label: "SIGKILL m-az1-primary"}, {Kind: markDetected, At: at(5012)}},
	}
	var out bytes.Buffer
	if err := v.render(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`m \(critical\) +42 req/s +errors 2`,
		`m-az1-primary +az-1 +hot +primary +unhealthy +25\.0%`,
		`m-az2-hot +az-2 +hot +primary +serving +75\.0%`,
		`m-az3-warm +az-3 +warm +standby +loading +-`,
		`m-az3-cold +az-3 +cold +standby +stopped +-`,
		`m-cold-1 +az-1 +cold +standby +stopped +-`,
		`\+5s +fault +SIGKILL m-az1-primary`,
		`\+5\.012s +detected`,
	} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("view lacks %q:\n%s", want, out.String())
		}
	}
}
