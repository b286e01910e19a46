package deploy_test

import (
	"testing"

	"github.com/inferxds/inferxds/deploy"
	"github.com/inferxds/inferxds/topology"
)

// TestExamplesAgree checks that the example fleet is what the example policy
// asks for: its zones are the policy's zones, and each model has a primary
// and exactly the policy's standby counts per tier.
func TestExamplesAgree(t *testing.T) {
	policy, err := deploy.LoadExamplePolicy()
	if err != nil {
		t.Fatal(err)
	}
	fleet, err := deploy.LoadExampleFleet()
	if err != nil {
		t.Fatal(err)
	}
	if len(policy.Tenants) == 0 {
		t.Error("example tenants.yaml not loaded")
	}

	az := policy.AZFailover
	for _, z := range az.ActiveZones {
		if zone, ok := fleet.Zone(z); !ok || zone.Role != topology.ZoneActive {
			t.Errorf("policy active zone %s is not an active zone of the fleet", z)
		}
	}
	if zone, ok := fleet.Zone(az.StandbyZone); !ok || zone.Role != topology.ZoneStandby {
		t.Errorf("policy standby zone %s is not a standby zone of the fleet", az.StandbyZone)
	}

	type count struct{ hot, warm, cold int }
	standbys := map[string]count{}
	primaries := map[string]int{}
	for _, in := range fleet.Instances {
		if in.Role == topology.RolePrimary {
			primaries[in.Model]++
			continue
		}
		c := standbys[in.Model]
		switch in.Tier {
		case topology.TierHot:
			c.hot++
		case topology.TierWarm:
			c.warm++
		case topology.TierCold:
			c.cold++
		}
		standbys[in.Model] = c
	}
	for _, m := range policy.Models {
		if want := (count{m.HotStandby, m.WarmStandby, m.ColdStandby}); standbys[m.Name] != want {
			t.Errorf("%s: fleet has standbys %+v, policy asks for %+v", m.Name, standbys[m.Name], want)
		}
		if primaries[m.Name] == 0 {
			t.Errorf("%s: no primary in the fleet", m.Name)
		}
		delete(primaries, m.Name)
	}
	for model := range primaries {
		t.Errorf("fleet runs %s, which the policy does not define", model)
	}
}
