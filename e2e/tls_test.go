package e2e

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferxds/inferxds/internal/testpki"
	"github.com/inferxds/inferxds/topology"
	"github.com/inferxds/inferxds/xds"
)

const e2eTrustDomain = "e2e.inferxds"

// tlsModel is the one model the mutual TLS tests route to.
const tlsModel = "llama-2-7b"

// startMTLSControlPlane runs serve with mutual TLS from a fresh CA, and
// returns the CA that issues node certificates.
func startMTLSControlPlane(t *testing.T, fleet topology.Fleet) (*controlPlane, *testpki.CA) {
	t.Helper()
	ca := testpki.NewCA(t, "inferxds-e2e")
	server := ca.Server("control-plane")
	cp := startControlPlane(t, llamaPolicy(""), fleet,
		"--tls-cert", server.CertFile, "--tls-key", server.KeyFile, "--client-ca", ca.CertFile, "--trust-domain", e2eTrustDomain)
	return cp, ca
}

// nodeCert issues ca's certificate for a node of zone.
func nodeCert(ca *testpki.CA, nodeID, zone string) testpki.Pair {
	return ca.Client(strings.ReplaceAll(nodeID, "/", "_"), xds.NodeURI(e2eTrustDomain, zone, nodeID))
}

// tlsArgs are the bootstrap and dump flags that present cert and trust ca.
func tlsArgs(ca *testpki.CA, cert testpki.Pair) []string {
	return []string{"--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile, "--ca", ca.CertFile}
}

// dumpFails runs `inferxds dump` as nodeID, which must fail, and returns
// what it printed on stderr.
func dumpFails(t *testing.T, cp *controlPlane, nodeID, zone string, tls []string) string {
	t.Helper()
	args := append([]string{"dump", "--xds-address", cp.XDSAddress, "--node-id", nodeID, "--zone", zone}, tls...)
	cmd := exec.Command(binaries.inferxds, args...)
	cmd.Env = hermeticEnv()
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("dump as %s: err %v, want a failure; output:\n%s", nodeID, err, out)
	}
	return string(out)
}

// refusals is serve's count of refused xDS streams for reason.
func (cp *controlPlane) refusals(t *testing.T, reason string) float64 {
	t.Helper()
	return metricValue(scrapeMetrics(t, "http://"+cp.MetricsAddress+"/metrics"), "inferxds_xds_refused_streams_total", map[string]string{"reason": reason})
}

func (cp *controlPlane) waitRefusals(t *testing.T, reason string) {
	t.Helper()
	err := poll(hangGuard, func() error {
		if n := cp.refusals(t, reason); n == 0 {
			return fmt.Errorf("no stream refused for %s yet", reason)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGRPCClientOverMutualTLS: gRPC-Go's xDS client, bootstrapped by
// `inferxds bootstrap --grpc --tls-cert ...`, is routed over mutual TLS.
// A certificate of a foreign CA fails the handshake; a valid certificate
// whose URI names another node is refused with the mismatch named.
func TestGRPCClientOverMutualTLS(t *testing.T) {
	sim := startModelSim(t, "llama-a", tlsModel)
	cp, ca := startMTLSControlPlane(t, fleetOf(sim.grpcInstance(t)))
	nodeID := t.Name() + "-az-1"
	cert := nodeCert(ca, nodeID, "az-1")

	client := dialBootstrap(t, cp.bootstrap(t, nodeID, "az-1", append([]string{"--grpc"}, tlsArgs(ca, cert)...)...))
	took := client.waitRoutable(t, tlsModel, hangGuard)
	report(t, "mtls client=grpc first routed call after %v", took.Round(time.Millisecond))
	if !strings.Contains(cp.status(t), nodeID) {
		t.Errorf("/status does not list the mTLS node %s", nodeID)
	}

	foreign := testpki.NewCA(t, "foreign")
	stranger := dialBootstrap(t, cp.bootstrap(t, nodeID, "az-1", append([]string{"--grpc"}, tlsArgs(ca, nodeCert(foreign, nodeID, "az-1"))...)...))
	if _, err := stranger.call(t.Context(), tlsModel); err == nil {
		t.Error("a client presenting a foreign CA's certificate was routed")
	}
	out := dumpFails(t, cp, nodeID, "az-1", tlsArgs(ca, nodeCert(foreign, nodeID, "az-1")))
	// The server ends the handshake; the client sees that as a TLS alert or
	// a closed connection, depending on timing.
	if !strings.Contains(out, "code = Unavailable") {
		t.Errorf("dump with a foreign CA's certificate: want the connection refused (Unavailable):\n%s", out)
	}

	impostor := dialBootstrap(t, cp.bootstrap(t, "impostor", "az-1", append([]string{"--grpc"}, tlsArgs(ca, cert)...)...))
	if _, err := impostor.call(t.Context(), tlsModel); err == nil {
		t.Error("a client presenting another node's certificate was routed")
	}
	cp.waitRefusals(t, xds.RefusedNodeMismatch)
	out = dumpFails(t, cp, "impostor", "az-1", tlsArgs(ca, cert))
	if !strings.Contains(out, "PermissionDenied") || !strings.Contains(out, `the request names node "impostor"`) {
		t.Errorf("dump as another node than its certificate's: want PermissionDenied naming the node:\n%s", out)
	}
	if strings.Contains(cp.status(t), `"impostor"`) {
		t.Error("/status lists the refused node")
	}
}

// TestEnvoyOverMutualTLS: Envoy, bootstrapped by `inferxds bootstrap
// --tls-cert ...`, is routed over mutual TLS; an Envoy presenting another
// node's certificate is refused, and its own log names why.
func TestEnvoyOverMutualTLS(t *testing.T) {
	envoyBin := requireEnvoy(t)
	sim := startModelSim(t, "llama-a", tlsModel)
	cp, ca := startMTLSControlPlane(t, fleetOf(sim.httpInstance(t)))
	nodeID := t.Name() + "-envoy"
	cert := nodeCert(ca, nodeID, "az-1")

	proxy := launchEnvoy(t, envoyBin, cp.bootstrap(t, nodeID, "az-1", append([]string{"--admin-port", "0"}, tlsArgs(ca, cert)...)...))
	proxy.waitRoutable(t, tlsModel)
	if _, err := proxy.call(tlsModel); err != nil {
		t.Fatal(err)
	}

	impostor := startRefusedEnvoy(t, envoyBin, cp.bootstrap(t, "impostor-envoy", "az-1", append([]string{"--admin-port", "0"}, tlsArgs(ca, cert)...)...))
	want := `the request names node "impostor-envoy"`
	if err := poll(hangGuard, func() error {
		if !strings.Contains(impostor.output.String(), want) {
			return errors.New("not yet")
		}
		return nil
	}); err != nil {
		t.Errorf("the refused Envoy did not log %q:\n%s", want, impostor.output.String())
	}
	if n := cp.refusals(t, xds.RefusedNodeMismatch); n == 0 {
		t.Error("serve did not count the refused Envoy")
	}
}

// startRefusedEnvoy runs an Envoy that will never get its listeners, so
// nothing waits for them.
func startRefusedEnvoy(t *testing.T, bin string, bootstrap []byte) *process {
	t.Helper()
	dir := t.TempDir()
	config := filepath.Join(dir, "envoy.yaml")
	writeFileAtomic(t, config, bootstrap)
	return startProcess(t, "refused envoy", bin, "-c", config, "--disable-hot-restart", "--log-level", "warn")
}
