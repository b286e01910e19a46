package xds

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/inferxds/inferxds/internal/testlog"
	"github.com/inferxds/inferxds/internal/testpki"
	"github.com/inferxds/inferxds/internal/testpoll"
)

const testTrustDomain = "test.inferxds"

// mtlsServer serves over mutual TLS with identity checks, from a fresh CA.
func mtlsServer(t *testing.T, logs *testlog.Buffer) (*Server, string, *testpki.CA, TLSFiles) {
	t.Helper()
	ca := testpki.NewCA(t, "inferxds-test")
	server := ca.Server("server")
	files := TLSFiles{Cert: server.CertFile, Key: server.KeyFile, ClientCA: ca.CertFile}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	creds, err := ServerTLS(files, logger)
	if err != nil {
		t.Fatal(err)
	}
	srv, addr := startServer(t, ServerConfig{Logger: logger, TrustDomain: testTrustDomain, GRPCOptions: []grpc.ServerOption{grpc.Creds(creds)}})
	return srv, addr, ca, files
}

// clientTLS trusts ca and presents cert.
func clientTLS(t *testing.T, ca *testpki.CA, cert testpki.Pair) *tls.Config {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: roots}
}

func adsClientWith(t *testing.T, addr string, creds credentials.TransportCredentials) discoveryv3.AggregatedDiscoveryServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return discoveryv3.NewAggregatedDiscoveryServiceClient(conn)
}

// firstAnswer opens a stream on client, sends req, and returns the first
// response or the status the stream ended with.
func firstAnswer(t *testing.T, client discoveryv3.AggregatedDiscoveryServiceClient, req *discoveryv3.DiscoveryRequest) (*discoveryv3.DiscoveryResponse, error) {
	t.Helper()
	stream, err := client.StreamAggregatedResources(t.Context())
	if err != nil {
		return nil, err
	}
	if err := stream.Send(req); err != nil {
		_, err = stream.Recv()
		return nil, err
	}
	return stream.Recv()
}

func clusterRequest(nodeID, zone string) *discoveryv3.DiscoveryRequest {
	return &discoveryv3.DiscoveryRequest{Node: zoneNode(nodeID, zone), TypeUrl: resource.ClusterType}
}

func wantRefused(t *testing.T, err error, code codes.Code, text string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), text) {
		t.Fatalf("stream ended with %v, want %v naming %q", err, code, text)
	}
}

func peerSerial(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestRotatedCertificateServesNewConnectionsAndKeepsOldStreams: the
// server's certificate is replaced on disk; the next connection is handed
// the new one, while a stream opened before keeps receiving pushes.
func TestRotatedCertificateServesNewConnectionsAndKeepsOldStreams(t *testing.T) {
	var logs testlog.Buffer
	srv, addr, ca, _ := mtlsServer(t, &logs)
	fleet := testFleet()
	setViews(t, srv, fleet, "az-1")
	cfg := clientTLS(t, ca, ca.Client("proxy-1", NodeURI(testTrustDomain, "az-1", "proxy-1")))
	stream, err := adsClientWith(t, addr, credentials.NewTLS(cfg)).StreamAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	old := &sotwStream{stream: stream, recv: responses(stream.Recv), names: map[string][]string{}}
	old.send(t, clusterRequest("proxy-1", "az-1"))
	old.ack(t, next(t, old.recv))
	before := peerSerial(t, addr, cfg)

	rotated := ca.Server("server")
	if after := peerSerial(t, addr, cfg); after != rotated.Cert.SerialNumber.String() || after == before {
		t.Fatalf("a new connection got certificate serial %s; want the rotated %s (was %s)", after, rotated.Cert.SerialNumber, before)
	}
	fleet.Instances = append(fleet.Instances, servingInstance("m3-a", "m3", "az-1", "10.0.1.3"))
	setViews(t, srv, fleet, "az-1")
	if pushed := next(t, old.recv); len(pushed.Resources) != 3 {
		t.Errorf("the stream opened before the rotation got %d clusters, want 3", len(pushed.Resources))
	}
	if !strings.Contains(logs.String(), "reloaded") {
		t.Errorf("the reload was not logged:\n%s", logs.String())
	}
}

// TestNodeMustMatchItsCertificate: a certificate names one node in one
// zone; a request for another node or zone, a certificate without the node
// URI, and a certificate of another CA are all refused, and each refusal
// is counted by reason and logged once per identity.
func TestNodeMustMatchItsCertificate(t *testing.T) {
	var logs testlog.Buffer
	srv, addr, ca, _ := mtlsServer(t, &logs)
	setViews(t, srv, testFleet(), "az-1", "az-2")
	proxy1 := adsClientWith(t, addr, credentials.NewTLS(clientTLS(t, ca, ca.Client("proxy-1", NodeURI(testTrustDomain, "az-1", "proxy-1")))))

	if _, err := firstAnswer(t, proxy1, clusterRequest("proxy-1", "az-1")); err != nil {
		t.Fatalf("the certificate's own node was refused: %v", err)
	}
	for range 3 {
		_, err := firstAnswer(t, proxy1, clusterRequest("proxy-2", "az-1"))
		wantRefused(t, err, codes.PermissionDenied, `request names node "proxy-2"`)
	}
	_, err := firstAnswer(t, proxy1, clusterRequest("proxy-1", "az-2"))
	wantRefused(t, err, codes.PermissionDenied, `in zone "az-2"`)

	otherDomain := ca.Client("stranger", NodeURI("elsewhere", "az-1", "proxy-1"))
	_, err = firstAnswer(t, adsClientWith(t, addr, credentials.NewTLS(clientTLS(t, ca, otherDomain))), clusterRequest("proxy-1", "az-1"))
	wantRefused(t, err, codes.PermissionDenied, "has no URI SAN spiffe://"+testTrustDomain)

	foreign := testpki.NewCA(t, "foreign")
	foreignCfg := clientTLS(t, ca, foreign.Client("proxy-1", NodeURI(testTrustDomain, "az-1", "proxy-1")))
	if _, err := firstAnswer(t, adsClientWith(t, addr, credentials.NewTLS(foreignCfg)), clusterRequest("proxy-1", "az-1")); status.Code(err) != codes.Unavailable {
		t.Errorf("a certificate of a foreign CA: %v, want the handshake to fail (Unavailable)", err)
	}

	for reason, want := range map[string]float64{RefusedNodeMismatch: 3, RefusedZoneMismatch: 1, RefusedNoIdentity: 1} {
		if got := testutil.ToFloat64(srv.guard.refused.WithLabelValues(reason)); got != want {
			t.Errorf("refused_streams_total{reason=%s} = %v, want %v", reason, got, want)
		}
	}
	if n := strings.Count(logs.String(), "reason="+RefusedNodeMismatch); n != 1 {
		t.Errorf("3 node mismatches of one identity were logged %d times, want once:\n%s", n, logs.String())
	}
	if got := len(srv.Status()); got > 1 {
		t.Errorf("%d nodes in status, want only proxy-1's: %+v", got, srv.Status())
	}
}

// TestMadeUpZonesLeaveNoPerZoneState is the attack of streams naming
// zones the fleet does not have: they all share the zone-less view, no
// zone reaches a metric label, and nothing is left once they close.
func TestMadeUpZonesLeaveNoPerZoneState(t *testing.T) {
	const conns, streamsPerConn = 125, DefaultMaxStreamsPerConnection
	var logs testlog.Buffer
	srv, addr := startServer(t, ServerConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	srv.SetZones([]string{"az-1"})
	setViews(t, srv, testFleet(), "", "az-1")
	seriesBefore := seriesOf(t, srv)

	var wg sync.WaitGroup
	errs := make(chan error, conns*streamsPerConn)
	for c := range conns {
		client := adsClientWith(t, addr, insecure.NewCredentials())
		for s := range streamsPerConn {
			wg.Go(func() {
				id := fmt.Sprintf("attacker-%d-%d", c, s)
				stream, err := client.StreamAggregatedResources(t.Context())
				if err == nil {
					err = stream.Send(clusterRequest(id, "made-up-zone-"+id))
				}
				if err == nil {
					_, err = stream.Recv()
				}
				errs <- err
				if err == nil {
					stream.CloseSend()
					_, _ = stream.Recv()
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a stream naming a made-up zone was not served the zone-less view: %v", err)
		}
	}
	testpoll.Until(t, "every attacker node gone from status", func() bool { return len(srv.Status()) == 0 })
	seriesAfter := seriesOf(t, srv)
	if seriesAfter != seriesBefore {
		t.Errorf("the attack changed the metric series; before:\n%s\nafter:\n%s", seriesBefore, seriesAfter)
	}
	if views := srv.ServedVersions(); len(views) != 2 {
		t.Errorf("served views after the attack: %v, want only the two set", views)
	}
	if got := testutil.ToFloat64(srv.metrics.unknownZones); got != conns*streamsPerConn {
		t.Errorf("unknown_zone_nodes_total = %v, want %d", got, conns*streamsPerConn)
	}
	lines := strings.Count(logs.String(), "zone the fleet does not have")
	t.Logf("%d streams with made-up zones: %d log lines, /metrics %d -> %d bytes", conns*streamsPerConn, lines, len(seriesBefore), len(seriesAfter))
	if lines != 1 {
		t.Errorf("the unknown zones were logged %d times, want once per LogEvery", lines)
	}
}

// seriesOf lists the server registry's series: names and labels, no
// values.
func seriesOf(t *testing.T, srv *Server) string {
	t.Helper()
	families, err := srv.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, f := range families {
		for _, m := range f.GetMetric() {
			fmt.Fprintln(&out, f.GetName(), m.GetLabel())
		}
	}
	return out.String()
}

// TestOversizedNodeIsRefused: 3 MB of node metadata, accepted before, now
// ends the stream at once and leaves no node behind.
func TestOversizedNodeIsRefused(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	setViews(t, srv, testFleet(), "az-1")
	req := clusterRequest("fat", "az-1")
	req.Node.Metadata = &structpb.Struct{Fields: map[string]*structpb.Value{"zone": structpb.NewStringValue("az-1"), "padding": structpb.NewStringValue(strings.Repeat("x", 3<<20))}}
	_, err := firstAnswer(t, dial(t, addr), req)
	wantRefused(t, err, codes.ResourceExhausted, fmt.Sprintf("the limit is %d", DefaultMaxNodeBytes))
	if n := len(srv.Status()); n != 0 {
		t.Errorf("%d nodes in status after the refusal, want none", n)
	}
	if got := testutil.ToFloat64(srv.guard.refused.WithLabelValues(RefusedNodeTooLarge)); got != 1 {
		t.Errorf("refused_streams_total{reason=node_too_large} = %v, want 1", got)
	}
}

// TestRepeatedNackIsCountedButLoggedOnce: the same NACK sent 500 times is
// counted 500 times and logged once per LogEvery.
func TestRepeatedNackIsCountedButLoggedOnce(t *testing.T) {
	const nacks = 500
	var logs testlog.Buffer
	srv, addr := startServer(t, ServerConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	setViews(t, srv, testFleet(), "az-1")
	client := openSotW(t, addr)
	client.send(t, clusterRequest("proxy-1", "az-1"))
	rejected := next(t, client.recv)
	detail := strings.Repeat("cluster m1: unsupported lb policy. ", 3000)
	for range nacks {
		client.send(t, &discoveryv3.DiscoveryRequest{
			TypeUrl: resource.ClusterType, ResponseNonce: rejected.Nonce,
			ErrorDetail: &rpcstatus.Status{Code: 3, Message: detail},
		})
	}
	client.barrier(t)

	if got := testutil.ToFloat64(srv.metrics.nacks.WithLabelValues("Cluster")); got != nacks {
		t.Errorf("nacks_total{type=Cluster} = %v, want %d", got, nacks)
	}
	lines := strings.Count(logs.String(), "xDS NACK")
	t.Logf("%d NACKs of %d bytes each: %d log lines, %d bytes of log", nacks, len(detail), lines, len(logs.String()))
	if lines != 1 || len(logs.String()) > 4*maxClientText {
		t.Errorf("%d NACKs logged %d lines, %d bytes; want one line of at most about %d bytes", nacks, lines, len(logs.String()), maxClientText)
	}
	if got := srv.Status()[0].Types["Cluster"].LastNackError; len(got) > maxClientText+32 || !strings.HasPrefix(got, "cluster m1") {
		t.Errorf("status keeps a NACK text of %d bytes, want the first %d", len(got), maxClientText)
	}
}

// TestStreamsPerConnectionAreBounded: one connection may hold
// MaxStreamsPerConnection streams; the next is refused with the limit
// named, and a slot freed is usable again.
func TestStreamsPerConnectionAreBounded(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	setViews(t, srv, testFleet(), "az-1")
	client := dial(t, addr)
	var open []discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	for i := range DefaultMaxStreamsPerConnection {
		stream, err := client.StreamAggregatedResources(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(clusterRequest(fmt.Sprint("proxy-", i), "az-1")); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		open = append(open, stream)
	}
	_, err := firstAnswer(t, client, clusterRequest("one-too-many", "az-1"))
	wantRefused(t, err, codes.ResourceExhausted, fmt.Sprintf("the limit is %d", DefaultMaxStreamsPerConnection))

	open[0].CloseSend()
	if _, err := open[0].Recv(); err == nil {
		t.Fatal("the closed stream got another response")
	}
	testpoll.Until(t, "the closed stream's node gone", func() bool { return len(srv.Status()) == DefaultMaxStreamsPerConnection-1 })
	if _, err := firstAnswer(t, client, clusterRequest("after-close", "az-1")); err != nil {
		t.Errorf("a stream in the freed slot: %v", err)
	}
}

// TestConnectionsPerIdentityAreBounded: without TLS the identity is the
// node id; its connections beyond the limit are refused, while other
// nodes still connect.
func TestConnectionsPerIdentityAreBounded(t *testing.T) {
	const limit = 3
	srv, addr := startServer(t, ServerConfig{Limits: Limits{MaxConnectionsPerIdentity: limit}})
	setViews(t, srv, testFleet(), "az-1")
	for i := range limit {
		if _, err := firstAnswer(t, dial(t, addr), clusterRequest("proxy-1", "az-1")); err != nil {
			t.Fatalf("connection %d of proxy-1: %v", i, err)
		}
	}
	_, err := firstAnswer(t, dial(t, addr), clusterRequest("proxy-1", "az-1"))
	wantRefused(t, err, codes.ResourceExhausted, fmt.Sprintf("node/proxy-1 already has %d connections", limit))
	if _, err := firstAnswer(t, dial(t, addr), clusterRequest("proxy-2", "az-1")); err != nil {
		t.Errorf("another node was refused: %v", err)
	}
	if got := testutil.ToFloat64(srv.guard.refused.WithLabelValues(RefusedConnectionsPerIdentity)); got != 1 {
		t.Errorf("refused_streams_total{reason=connections_per_identity} = %v, want 1", got)
	}
}
