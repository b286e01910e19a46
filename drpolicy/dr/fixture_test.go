package dr

import (
	"os"
	"testing"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
)

// loadFixture parses the test fleet and policy the way the sources do.
func loadFixture(t *testing.T) (*topology.Fleet, *drpolicy.Policy) {
	t.Helper()
	f, err := topology.LoadFile("testdata/fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := drpolicy.Parse("testdata/policy.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	return f, p
}
