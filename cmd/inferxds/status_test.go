package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

var update = flag.Bool("update", false, "rewrite testdata/status from a real serve")

// durations and timestamps differ from run to run; goldens hold placeholders.
var (
	scrubDuration  = regexp.MustCompile(`for [0-9hms.]+`)
	scrubTimestamp = regexp.MustCompile(`("since": |since: )"?[0-9T:.+Z-]+"?`)
)

func scrub(s string) string {
	s = scrubDuration.ReplaceAllString(s, "for <duration>")
	return scrubTimestamp.ReplaceAllString(s, `${1}"<time>"`)
}

// golden compares got with testdata/status/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "status", name)
	got = scrub(got)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func dialXDS(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// connectProxy connects a proxy that fetches and ACKs everything its view
// has, and stays connected until the test ends.
func connectProxy(t *testing.T, addr string, node *corev3.Node, delta bool) {
	t.Helper()
	open := openSotW
	if delta {
		open = openDelta
	}
	stream, err := open(t.Context(), dialXDS(t, addr), node)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := fetchResources(ctx, stream, dumpQuiet); err != nil {
		t.Fatalf("%s: %v", node.GetId(), err)
	}
}

// rawProxy is a state-of-the-world stream the test drives by hand.
type rawProxy struct {
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
}

func openRawProxy(t *testing.T, addr string, node *corev3.Node, typeURL string, names ...string) (*rawProxy, *discoveryv3.DiscoveryResponse) {
	t.Helper()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(dialXDS(t, addr)).StreamAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p := &rawProxy{stream: stream}
	p.send(t, &discoveryv3.DiscoveryRequest{Node: node, TypeUrl: typeURL, ResourceNames: names})
	return p, p.recv(t)
}

func (p *rawProxy) send(t *testing.T, req *discoveryv3.DiscoveryRequest) {
	t.Helper()
	if err := p.stream.Send(req); err != nil {
		t.Fatal(err)
	}
}

func (p *rawProxy) recv(t *testing.T) *discoveryv3.DiscoveryResponse {
	t.Helper()
	resp, err := p.stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func zoneNode(id, zone, userAgent string) *corev3.Node {
	return &corev3.Node{Id: id, Locality: &corev3.Locality{Zone: zone}, UserAgentName: userAgent}
}

// waitProxies polls status until every named proxy's summary starts as
// wanted.
func waitProxies(t *testing.T, s *served, want map[string]string) {
	t.Helper()
	waitFor(t, 30*time.Second, func() error {
		res := runCLI(t, "status", "--xds-address", s.XDSAddress)
		for node, prefix := range want {
			if !regexp.MustCompile(`(?m)^` + node + ` .* ` + prefix).MatchString(res.stdout) {
				return fmt.Errorf("%s is not %s yet:\n%s%s", node, prefix, res.stdout, res.stderr)
			}
		}
		return nil
	})
}

// TestStatusShowsEveryProxysSyncState runs a real serve with four proxies:
// an Envoy (SotW) and a gRPC client (Delta) that ACK everything, one that
// NACKs its clusters, and one that has not ACKed an endpoint change.
func TestStatusShowsEveryProxysSyncState(t *testing.T) {
	policyDir, fleetFile := copyExamples(t)
	s := startServe(t, "--policy-dir", policyDir, "--fleet", fleetFile)

	stale, first := openRawProxy(t, s.XDSAddress, zoneNode("stale-az2", "az-2", ""), resource.EndpointType, "llama-2-7b")
	stale.send(t, &discoveryv3.DiscoveryRequest{TypeUrl: resource.EndpointType, ResourceNames: []string{"llama-2-7b"}, VersionInfo: first.VersionInfo, ResponseNonce: first.Nonce})
	editFile(t, fleetFile, "port: 18101}", "port: 18101, weight: 5}")
	stale.recv(t) // the change, never ACKed

	connectProxy(t, s.XDSAddress, zoneNode("envoy-az1", "az-1", "envoy"), false)
	connectProxy(t, s.XDSAddress, zoneNode("grpc-az2", "az-2", ""), true)
	nack, rejected := openRawProxy(t, s.XDSAddress, zoneNode("nack-az1", "az-1", "envoy"), resource.ClusterType)
	nack.send(t, &discoveryv3.DiscoveryRequest{
		TypeUrl: resource.ClusterType, ResponseNonce: rejected.Nonce,
		ErrorDetail: &status.Status{Code: 3, Message: "cluster llama-2-7b: unsupported lb policy"},
	})
	waitProxies(t, s, map[string]string{"envoy-az1": "SYNCED", "grpc-az2": "SYNCED", "nack-az1": "NACKED CDS", "stale-az2": "STALE EDS for"})

	for _, format := range []string{"table", "json", "yaml"} {
		res := runCLI(t, "status", "--xds-address", s.XDSAddress, "-o", format)
		if res.code != 0 {
			t.Fatalf("status -o %s exited %d: %s", format, res.code, res.stderr)
		}
		golden(t, "proxies."+format, res.stdout)
	}
	for _, format := range []string{"table", "json"} {
		res := runCLI(t, "status", "llama-2-7b", "--metrics-address", s.MetricsAddress, "-o", format)
		if res.code != 0 {
			t.Fatalf("status llama-2-7b -o %s exited %d: %s", format, res.code, res.stderr)
		}
		golden(t, "model-llama-2-7b."+format, res.stdout)
	}
}

func TestStatusRefusesUnknownModelsAndFormats(t *testing.T) {
	s := startServe(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "no-such-model", "--metrics-address", s.MetricsAddress}, `model "no-such-model" is neither in the policy nor in the fleet`},
		{[]string{"status", "--xds-address", s.XDSAddress, "-o", "xml"}, `--output "xml": must be table, json or yaml`},
	} {
		res := runCLI(t, tc.args...)
		if res.code != 1 || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", tc.args, res.code, res.stderr, tc.want)
		}
	}
}
