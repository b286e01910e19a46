package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/inferxds/inferxds/deploy"
	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/internal/filewatch"
	"github.com/inferxds/inferxds/internal/inputcheck"
	"github.com/inferxds/inferxds/topology"
)

// sources say where the policy and the fleet come from: both given, or
// neither, for the embedded example (deploy/examples). One without the
// other is an error: the example's half would not describe the same models.
type sources struct {
	policyDir string
	fleetFile string
	kube      kubeConfig
}

func addSourceFlags(f *pflag.FlagSet) {
	f.String("policy-dir", "", "policy directory (with --fleet; neither: the embedded example)")
	f.String("fleet", "", "fleet file (with --policy-dir; neither: the embedded example)")
}

func (c config) sources() sources {
	return sources{policyDir: c.PolicyDir, fleetFile: c.Fleet, kube: c.kubeConfig}
}

// embedded reports whether the embedded example is served.
func (s sources) embedded() bool { return s.policyDir == "" && s.fleetFile == "" }

// fromKube reports whether the fleet comes from a cluster.
func (s sources) fromKube() bool { return s.kube.Source == sourceKindKube }

func (s sources) check() error {
	switch {
	case s.kube.Source != "" && s.kube.Source != sourceKindFile:
		return s.kube.check(s.policyDir, s.fleetFile)
	case s.policyDir == "" && s.fleetFile != "":
		return errors.New("--fleet needs --policy-dir: give both, or neither to use the embedded example")
	case s.policyDir != "" && s.fleetFile == "":
		return errors.New("--policy-dir needs --fleet: give both, or neither to use the embedded example")
	}
	return nil
}

// load reads both, reporting the problems of both.
func (s sources) load() (*topology.Fleet, *drpolicy.Policy, error) {
	if err := s.check(); err != nil {
		return nil, nil, err
	}
	if s.embedded() {
		fleet, fleetErr := deploy.LoadExampleFleet()
		pol, polErr := deploy.LoadExamplePolicy()
		return fleet, pol, errors.Join(polErr, fleetErr)
	}
	pol, polErr := drpolicy.Load(s.policyDir)
	fleet, fleetErr := topology.LoadFile(s.fleetFile)
	return fleet, pol, errors.Join(polErr, fleetErr)
}

// open is load for serve, which also follows a cluster: with --source kube
// it starts the Kubernetes source (running until ctx ends) and returns it.
func (s sources) open(ctx context.Context, logger *slog.Logger) (*topology.Fleet, *drpolicy.Policy, *kubeFleet, error) {
	if err := s.check(); err != nil {
		return nil, nil, nil, err
	}
	if s.fromKube() {
		return s.openKube(ctx, logger)
	}
	fleet, pol, err := s.load()
	return fleet, pol, nil, err
}

// fleetOrigin names where the fleet comes from.
func (s sources) fleetOrigin() string {
	switch {
	case s.fromKube():
		return "Kubernetes namespaces " + cmp.Or(s.kube.KubeNamespaces, "(all)")
	case s.embedded():
		return "embedded example"
	}
	return s.fleetFile
}

// logOrigin says where what is served comes from.
func (s sources) logOrigin(logger *slog.Logger) {
	if s.embedded() {
		logger.Info("serving the embedded example (deploy/examples); give --policy-dir and --fleet to serve your own")
		return
	}
	logger.Info("serving", "policyDir", s.policyDir, "fleet", s.fleetOrigin())
}

// checkZone refuses a zone the fleet does not define.
func checkZone(f *topology.Fleet, zone string) error {
	if _, ok := f.Zone(zone); ok {
		return nil
	}
	names := make([]string, len(f.Zones))
	for i, z := range f.Zones {
		names[i] = z.Name
	}
	return fmt.Errorf("zone %q is not in the fleet (zones: %s)", zone, strings.Join(slices.Sorted(slices.Values(names)), ", "))
}

// mismatchWarnings are the fleet/policy disagreements, one "warning:" line
// each.
func mismatchWarnings(f *topology.Fleet, p *drpolicy.Policy) string {
	var b strings.Builder
	for _, m := range inputcheck.Mismatches(f, p) {
		b.WriteString("warning: " + m + "\n")
	}
	return b.String()
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
		Errors:   func(err error) { cp.sourceResult(source, err) },
	}
}

// checkZoneInFile refuses a zone the fleet file does not define; with no
// file, every zone passes.
func checkZoneInFile(fleetFile, zone string) error {
	if fleetFile == "" {
		return nil
	}
	fleet, err := topology.LoadFile(fleetFile)
	if err != nil {
		return err
	}
	return checkZone(fleet, zone)
}
