package e2e

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/inferxds/inferxds/topology"
)

// controlPlane is a running `inferxds serve` watching a temp policy
// directory and fleet file.
type controlPlane struct {
	proc           *process
	policyPath     string
	fleetPath      string
	XDSAddress     string `json:"xdsAddress"`
	MetricsAddress string `json:"metricsAddress"`
}

// startControlPlane writes policy and fleet, starts serve on ephemeral ports
// with any extra flags (plaintext xDS unless they name TLS files), and
// waits until both of its listeners are up.
func startControlPlane(t testing.TB, policy string, fleet topology.Fleet, extra ...string) *controlPlane {
	t.Helper()
	dir := t.TempDir()
	cp := &controlPlane{
		policyPath: filepath.Join(dir, "policy", "models.yaml"),
		fleetPath:  filepath.Join(dir, "fleet.yaml"),
	}
	if err := os.Mkdir(filepath.Dir(cp.policyPath), 0o755); err != nil {
		t.Fatal(err)
	}
	cp.writePolicy(t, policy)
	cp.writeFleet(t, fleet)
	ready := filepath.Join(dir, "ready.json")
	args := append([]string{"serve",
		"--policy-dir", filepath.Dir(cp.policyPath),
		"--fleet", cp.fleetPath,
		"--xds-address", "127.0.0.1:0",
		"--metrics-address", "127.0.0.1:0",
		"--envoy-listen-address", "127.0.0.1:0",
		"--ready-file", ready}, extra...)
	if !slices.Contains(extra, "--tls-cert") {
		args = append(args, "--insecure")
	}
	cp.proc = startProcess(t, "inferxds serve", binaries.inferxds, args...)
	cp.proc.readReadyFile(t, ready, cp)
	return cp
}

func (cp *controlPlane) writePolicy(t testing.TB, policy string) {
	t.Helper()
	writeFileAtomic(t, cp.policyPath, []byte(policy))
}

func (cp *controlPlane) writeFleet(t testing.TB, fleet topology.Fleet) {
	t.Helper()
	writeFileAtomic(t, cp.fleetPath, marshalFleet(t, fleet))
}

func marshalFleet(t testing.TB, fleet topology.Fleet) []byte {
	t.Helper()
	data, err := yaml.Marshal(fleet)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// status fetches the /status document from the metrics port.
func (cp *controlPlane) status(t *testing.T) string {
	t.Helper()
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://" + cp.MetricsAddress + "/status")
	if err != nil {
		t.Fatalf("GET /status: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /status: %d %v\n%s", resp.StatusCode, err, body)
	}
	return string(body)
}

// bootstrap runs `inferxds bootstrap` against this control plane.
func (cp *controlPlane) bootstrap(t testing.TB, nodeID, zone string, extra ...string) []byte {
	t.Helper()
	return runInferxds(t, append([]string{"bootstrap", "--node-id", nodeID, "--zone", zone, "--xds-address", cp.XDSAddress}, extra...)...)
}

func stderrOf(err error) []byte {
	if exit, ok := err.(*exec.ExitError); ok {
		return exit.Stderr
	}
	return nil
}

// fleetOf returns a fleet with the zones az-1 and az-2, both active, and the
// given instances.
func fleetOf(instances ...topology.Instance) topology.Fleet {
	return topology.Fleet{
		Zones: []topology.Zone{
			{Name: "az-1", Role: topology.ZoneActive},
			{Name: "az-2", Role: topology.ZoneActive},
		},
		Instances: instances,
	}
}
