// Package deploy holds what runs inferxds outside the Go code: Kubernetes
// manifests and the example policy repository and fleet. The examples are
// embedded so that `inferxds serve` with no flags has something real to
// serve; this package only reads them, it never writes or watches.
package deploy

import (
	"embed"
	"io/fs"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
)

// Examples is the examples directory: examples/policy (a policy directory)
// and examples/fleet.yaml (a fleet on 127.0.0.1).
//
//go:embed examples
var Examples embed.FS

// Paths of the examples inside Examples.
const (
	ExamplePolicyDir = "examples/policy"
	ExampleFleetFile = "examples/fleet.yaml"
)

// LoadExamplePolicy loads the embedded example policy directory.
func LoadExamplePolicy() (*drpolicy.Policy, error) {
	return drpolicy.LoadFS(Examples, ExamplePolicyDir)
}

// LoadExampleFleet loads the embedded example fleet.
func LoadExampleFleet() (*topology.Fleet, error) {
	data, err := fs.ReadFile(Examples, ExampleFleetFile)
	if err != nil {
		return nil, err
	}
	return topology.ParseFleet(ExampleFleetFile, data)
}
