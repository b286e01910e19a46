package inputcheck_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/internal/inputcheck"
	"github.com/inferxds/inferxds/topology"
)

// fleet has one instance per "model/instance" name.
func fleet(names ...string) *topology.Fleet {
	f := &topology.Fleet{Zones: []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}}}
	for i, n := range names {
		model, inst, _ := strings.Cut(n, "/")
		f.Instances = append(f.Instances, topology.Instance{Name: inst, Model: model, Zone: "az-1", Address: "127.0.0.1", Port: uint32(9000 + i)})
	}
	f.ApplyDefaults()
	return f
}

func TestFleetChangeRefusesMassRemoval(t *testing.T) {
	before := fleet("a/a1", "a/a2", "b/b1", "b/b2")
	for _, tt := range []struct {
		after  *topology.Fleet
		reason string // "" when allowed
	}{
		{fleet("a/a1", "a/a2", "b/b1", "b/b2", "c/c1"), ""},
		{fleet("a/a1", "a/a2", "b/b1"), ""},
		{fleet("a/a1", "b/b1"), ""},          // half the instances: not more than 50%
		{fleet("a/a1"), "instances_removed"}, // 1 of 2 models is not more than half; 3 of 4 instances are
		{fleet("c/c1", "c/c2", "c/c3"), "models_removed"},
		{fleet(), "models_removed"},
		{fleet("a/a1", "a/x2", "b/x1", "b/b2"), ""},
		{fleet("a/x1", "a/x2", "b/x3", "b/b2"), "instances_removed"},
	} {
		err := inputcheck.FleetChange(before, tt.after, 0.5)
		var refused *inputcheck.Refused
		got := ""
		if errors.As(err, &refused) {
			got = refused.Reason()
		}
		if got != tt.reason {
			t.Errorf("after %v: refused %q (%v), want %q", tt.after.Instances, got, err, tt.reason)
		}
	}
	if err := inputcheck.FleetChange(nil, fleet(), 0.5); err != nil {
		t.Errorf("a first fleet is refused: %v", err)
	}
}

func TestPolicyChangeAndFilesGone(t *testing.T) {
	policy := func(models ...string) *drpolicy.Policy {
		p := &drpolicy.Policy{}
		for _, m := range models {
			p.Models = append(p.Models, drpolicy.Model{Name: m})
		}
		return p
	}
	if err := inputcheck.PolicyChange(policy("a", "b", "c"), policy("a", "b"), 0.5); err != nil {
		t.Errorf("removing 1 of 3 models refused: %v", err)
	}
	err := inputcheck.PolicyChange(policy("a", "b", "c"), policy(), 0.5)
	if err == nil || !strings.Contains(err.Error(), "removes 3 of 3 models (a, b, c), more than 50% at once") {
		t.Errorf("emptied policy: %v", err)
	}
	err = inputcheck.FilesGone([]string{"dr-policy.yaml", "tenants.yaml"}, []string{"tenants.yaml"})
	if err == nil || !strings.Contains(err.Error(), "policy file dr-policy.yaml is gone") {
		t.Errorf("vanished file: %v", err)
	}
	if err := inputcheck.FilesGone([]string{"a.yaml"}, []string{"a.yaml", "b.yaml"}); err != nil {
		t.Errorf("an added file is refused: %v", err)
	}
}

func TestAnnotated(t *testing.T) {
	for text, want := range map[string]bool{
		"# inferxds: allow-mass-removal\nzones: []\n":      true,
		"zones: []\n  #   inferxds: allow-mass-removal \n": true,
		"zones: [] # inferxds: allow-mass-removal\n":       false,
		"# inferxds: allow-mass-removal, please\n":         false,
		"": false,
	} {
		if got := inputcheck.Annotated([]byte(text)); got != want {
			t.Errorf("Annotated(%q) = %v, want %v", text, got, want)
		}
	}
}

func TestMismatches(t *testing.T) {
	p := &drpolicy.Policy{
		Models:     []drpolicy.Model{{Name: "a"}, {Name: "idle"}},
		AZFailover: &drpolicy.AZFailover{ActiveZones: []string{"az-1"}, StandbyZone: "az-9"},
	}
	got := fmt.Sprint(inputcheck.Mismatches(fleet("a/a1", "stray/s1"), p))
	want := fmt.Sprint([]string{
		`az_failover names zone "az-9", which the fleet does not define`,
		`fleet instance s1 runs model "stray", which the policy does not define: it gets no route`,
		`policy model "idle" has no instance in the fleet: its route has no endpoints`,
	})
	if got != want {
		t.Errorf("Mismatches =\n%s\nwant\n%s", got, want)
	}
}
