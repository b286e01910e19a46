package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/inferxds/inferxds/deploy"
	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/internal/filewatch"
	"github.com/inferxds/inferxds/topology"
)

// sources say where the policy and the fleet come from. Either left empty
// comes from the embedded example (deploy/examples).
type sources struct {
	policyDir string
	fleetFile string
}

func addSourceFlags(f *pflag.FlagSet) {
	f.String("policy-dir", "", "policy directory (default: the embedded example)")
	f.String("fleet", "", "fleet file (default: the embedded example)")
}

func (c config) sources() sources { return sources{policyDir: c.PolicyDir, fleetFile: c.Fleet} }

func (s sources) loadPolicy() (*drpolicy.Policy, error) {
	if s.policyDir == "" {
		return deploy.LoadExamplePolicy()
	}
	return drpolicy.Load(s.policyDir)
}

func (s sources) loadFleet() (*topology.Fleet, error) {
	if s.fleetFile == "" {
		return deploy.LoadExampleFleet()
	}
	return topology.LoadFile(s.fleetFile)
}

// load reads both, reporting the problems of both.
func (s sources) load() (*topology.Fleet, *drpolicy.Policy, error) {
	pol, polErr := s.loadPolicy()
	fleet, fleetErr := s.loadFleet()
	return fleet, pol, errors.Join(polErr, fleetErr)
}

// groupsOf are the node groups a fleet has proxies in: its zones, and ""
// for nodes that name none.
func groupsOf(f *topology.Fleet) []string {
	groups := []string{""}
	for _, z := range f.Zones {
		groups = append(groups, z.Name)
	}
	return groups
}

// groupLabel names a group in messages.
func groupLabel(group string) string {
	if group == "" {
		return "group without a zone"
	}
	return fmt.Sprintf("zone %s", group)
}

// watchOptions are how a source's file watch runs: changes that keep coming
// are applied at least every --max-delay, and what stops the watch from
// working is a source error (it polls meanwhile).
func (cp *controlPlane) watchOptions(source string) filewatch.Options {
	return filewatch.Options{
		MaxDelay: cp.cfg.MaxDelay,
		Errors:   func(err error) { cp.ctrl.ReportSourceError(source, err) },
	}
}
