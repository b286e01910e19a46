package local

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/topology"
)

// What the actuator returns, folded into the DR state, must give a fleet
// that validates and whose every hot and warm instance is a process at the
// address the fleet names.
func TestResultsFoldIntoAnEffectiveFleetOfTheRunningProcesses(t *testing.T) {
	a := newActuator(t)
	fleet := launch(t, a)
	fleet.Nodes = []topology.Node{{Name: "node-1", Zone: "az-1", GPUs: []topology.GPU{{Index: 0}, {Index: 1}, {Index: 2}, {Index: 3}}}}
	state := &dr.State{}
	for _, act := range []dr.Action{
		{Kind: dr.ActionWake, Model: "llm", Instance: "llm-warm", Zone: "az-1", Tier: topology.TierHot, Node: "node-1", GPUs: []int{2}},
		{Kind: dr.ActionLoad, Model: "llm", Instance: "llm-cold", Zone: "az-1", Tier: topology.TierWarm},
		{Kind: dr.ActionCreate, Model: "llm", Instance: "llm-hot-1", Zone: "az-1", Tier: topology.TierHot, Node: "node-1", GPUs: []int{3}},
		{Kind: dr.ActionCreate, Model: "llm", Instance: "llm-cold-1", Zone: "az-1", Tier: topology.TierCold},
	} {
		got, err := a.Do(ctx(t), act)
		if err != nil {
			t.Fatalf("Do(%s %s): %v", act.Kind, act.Instance, err)
		}
		state = dr.Complete(state, act, got, nil, time.Now())
	}
	eff, _ := dr.Effective(fleet, nil, state)
	if err := eff.Validate(); err != nil {
		t.Fatalf("effective fleet does not validate: %v", err)
	}
	want := map[string]string{}
	for _, in := range eff.Instances {
		if in.Tier != topology.TierCold {
			want[in.Name] = string(in.Tier) + " at " + hostPort(in)
		}
	}
	got := map[string]string{}
	for _, p := range a.Instances() {
		got[p.Name] = string(p.Tier) + " at " + p.Address
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hot and warm instances of the effective fleet (-) and running processes (+):\n%s", diff)
	}
}
