package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/topology"
)

// scenario is one of the seed's failure types, as a fault injected into
// the local fleet.
type scenario struct {
	name    string
	failure dr.FailureType
	// pick chooses, in the fleet as launched, the instances the fault takes
	// down.
	pick func(f *topology.Fleet, p *drpolicy.Policy) ([]topology.Instance, error)
	// inject takes them down and says how.
	inject func(s *stack, failed []topology.Instance) (string, error)
}

// xidFellOffTheBus is XID 79, a GPU that fell off the bus: critical, its
// instances are drained.
const xidFellOffTheBus = 79

// scenarios are the seed's table 5.2, in its order.
var scenarios = []scenario{
	{
		name: "process-crash", failure: dr.FailureProcessCrash, pick: criticalPrimary,
		inject: func(s *stack, failed []topology.Instance) (string, error) {
			return "SIGKILL " + failed[0].Name, s.act.Kill(failed[0].Name)
		},
	},
	{
		// A node that goes down neither answers nor closes its connections:
		// its processes are frozen, so only the probes can find it, and
		// the requests out to it hang. It is the proxy's own node.
		name: "node-down", failure: dr.FailureNodeDown, pick: nodeOfZone(proxyZone),
		inject: func(s *stack, failed []topology.Instance) (string, error) {
			var errs []error
			for _, in := range failed {
				errs = append(errs, s.freeze(in.Name))
			}
			return "SIGSTOP every process of node " + failed[0].Node, errors.Join(errs...)
		},
	},
	{
		name: "gpu-failure", failure: dr.FailureGPU, pick: criticalPrimary,
		inject: func(s *stack, failed []topology.Instance) (string, error) {
			in := failed[0]
			if len(in.GPUs) == 0 {
				return "", fmt.Errorf("%s holds no GPU", in.Name)
			}
			return fmt.Sprintf("XID %d on %s GPU %d", xidFellOffTheBus, in.Node, in.GPUs[0]),
				s.gpus.injectXID(in.Node, in.GPUs[0], xidFellOffTheBus)
		},
	},
	{
		name: "az-outage", failure: dr.FailureAZOutage, pick: zoneInstances(proxyZone),
		inject: func(s *stack, failed []topology.Instance) (string, error) {
			var errs []error
			for _, in := range failed {
				errs = append(errs, s.act.Kill(in.Name))
			}
			return "SIGKILL every process of zone " + failed[0].Zone, errors.Join(errs...)
		},
	},
	{
		name: "model-corruption", failure: dr.FailureModelCorruption, pick: criticalPrimary,
		inject: func(s *stack, failed []topology.Instance) (string, error) {
			return "corrupt " + failed[0].Name + " (answers 200, wrongly)", s.act.Inject(failed[0].Name, "corrupt")
		},
	},
}

// scenarioNamed returns the named scenario.
func scenarioNamed(name string) (scenario, error) {
	i := slices.IndexFunc(scenarios, func(s scenario) bool { return s.name == name })
	if i < 0 {
		return scenario{}, fmt.Errorf("--scenario %q: must be one of %s", name, strings.Join(scenarioNames(), ", "))
	}
	return scenarios[i], nil
}

func scenarioNames() []string {
	var names []string
	for _, s := range scenarios {
		names = append(names, s.name)
	}
	return names
}

// hasProcess reports whether an instance runs (hot, or warm and asleep);
// a cold one has nothing to take down.
func hasProcess(in topology.Instance) bool { return in.Tier != topology.TierCold }

// criticalPrimary picks the primary of the first critical model in the
// proxy's zone: the instance its traffic goes to.
func criticalPrimary(f *topology.Fleet, p *drpolicy.Policy) ([]topology.Instance, error) {
	for _, m := range p.Models {
		if m.Priority != drpolicy.CriticalityCritical {
			continue
		}
		for _, in := range f.Instances {
			if in.Model == m.Name && in.Role == topology.RolePrimary && in.Zone == proxyZone && hasProcess(in) {
				return []topology.Instance{in}, nil
			}
		}
	}
	return nil, fmt.Errorf("no critical model has a primary in %s", proxyZone)
}

// nodeOfZone picks every running instance of the first node of zone.
func nodeOfZone(zone string) func(*topology.Fleet, *drpolicy.Policy) ([]topology.Instance, error) {
	return func(f *topology.Fleet, _ *drpolicy.Policy) ([]topology.Instance, error) {
		i := slices.IndexFunc(f.Nodes, func(n topology.Node) bool { return n.Zone == zone })
		if i < 0 {
			return nil, fmt.Errorf("no node in %s", zone)
		}
		return running(f, func(in topology.Instance) bool { return in.Node == f.Nodes[i].Name })
	}
}

// zoneInstances picks every running instance of zone.
func zoneInstances(zone string) func(*topology.Fleet, *drpolicy.Policy) ([]topology.Instance, error) {
	return func(f *topology.Fleet, _ *drpolicy.Policy) ([]topology.Instance, error) {
		return running(f, func(in topology.Instance) bool { return in.Zone == zone })
	}
}

func running(f *topology.Fleet, keep func(topology.Instance) bool) ([]topology.Instance, error) {
	var out []topology.Instance
	for _, in := range f.Instances {
		if keep(in) && hasProcess(in) {
			out = append(out, in)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no running instance to take down")
	}
	return out, nil
}
