package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/inferxds/inferxds/internal/envoyproc"
	"github.com/inferxds/inferxds/topology"
)

// TestEnvoyHotStandbyFailover is TestHotStandbyFailover through a real
// Envoy: retries to the previous priority and outlier ejection move traffic
// to the hot standby before the fleet file changes.
func TestEnvoyHotStandbyFailover(t *testing.T) {
	envoyBin := requireEnvoy(t)
	primary := startModelSim(t, "llama-primary", failoverModel, "--latency", simLatency)
	standby := startModelSim(t, "llama-standby", failoverModel, "--latency", simLatency)
	cp := startControlPlane(t, failoverPolicy, failoverFleet(primary.httpInstance(t), standby.httpInstance(t), topology.HealthServing))
	proxy := startEnvoy(t, envoyBin, cp, "az-1")
	proxy.waitRoutable(t, failoverModel)

	call := func() (string, error) { return proxy.call(failoverModel) }
	after := failoverFleet(primary.httpInstance(t), standby.httpInstance(t), topology.HealthUnhealthy)
	failoverDrill(t, "envoy", call, primary, standby, func() { cp.writeFleet(t, after) })
}

// requireEnvoy returns the Envoy binary to test with. Envoy is part of every
// run: without one the test fails, unless INFERXDS_SKIP_ENVOY=1 asks for the
// skip, which the suite's summary then repeats.
func requireEnvoy(t testing.TB) string {
	t.Helper()
	if os.Getenv("INFERXDS_SKIP_ENVOY") == "1" {
		envoySkips.Add(1)
		t.Skip("INFERXDS_SKIP_ENVOY=1: skipping the Envoy data-plane checks")
	}
	bin := os.Getenv("ENVOY_BIN")
	if bin == "" {
		t.Fatal("ENVOY_BIN is not set: run `make test-e2e` (it installs Envoy " + envoyVersion +
			"), set ENVOY_BIN, or set INFERXDS_SKIP_ENVOY=1 to skip the Envoy checks")
	}
	return bin
}

// envoyProxy is a running Envoy bootstrapped by `inferxds bootstrap`.
type envoyProxy struct {
	proc          *process
	adminAddress  string
	listenAddress string
	client        *http.Client
}

// startEnvoy runs an Envoy of zone bootstrapped by `inferxds bootstrap`
// against cp, with any extra Envoy flags, and waits until its ingress
// listener is bound.
func startEnvoy(t testing.TB, bin string, cp *controlPlane, zone string, envoyArgs ...string) *envoyProxy {
	t.Helper()
	return launchEnvoy(t, bin, cp.bootstrap(t, t.Name()+"-envoy", zone, "--admin-port", "0"), envoyArgs...)
}

// launchEnvoy runs Envoy with the given bootstrap and waits until its
// ingress listener is bound.
func launchEnvoy(t testing.TB, bin string, bootstrap []byte, envoyArgs ...string) *envoyProxy {
	t.Helper()
	dir := t.TempDir()
	config := filepath.Join(dir, "envoy.yaml")
	if err := os.WriteFile(config, bootstrap, 0o644); err != nil {
		t.Fatal(err)
	}
	adminFile := filepath.Join(dir, "admin-address")
	e := &envoyProxy{client: &http.Client{
		Timeout:   rpcTimeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: failoverCallers},
	}}
	e.proc = startProcess(t, "envoy", bin, envoyproc.Args(config, adminFile, envoyArgs...)...)
	err := poll(readyTimeout, func() error {
		var err error
		e.adminAddress, e.listenAddress, err = envoyproc.Listening(e.client, adminFile)
		return err
	})
	if err != nil {
		t.Fatalf("envoy not listening: %v\n%s", err, e.proc.output.String())
	}
	return e
}

// call POSTs a predict request for model, routed by both its header and its
// path, and returns the answering instance.
func (e *envoyProxy) call(model string) (string, error) {
	r, err := e.send(predictPath(model), "model-name", model)
	if err != nil {
		return "", err
	}
	return r.answered()
}

func (e *envoyProxy) waitRoutable(t *testing.T, model string) {
	t.Helper()
	if err := poll(hangGuard, func() error { _, err := e.call(model); return err }); err != nil {
		t.Fatalf("model %s not routable through Envoy: %v", model, err)
	}
}
