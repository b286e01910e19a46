package xds

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/inferxds/inferxds/internal/testlog"
	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology"
)

type sotwStream struct {
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	recv   <-chan *discoveryv3.DiscoveryResponse
	names  map[string][]string // type URL → the names last asked for
}

func openSotW(t *testing.T, addr string) *sotwStream {
	t.Helper()
	stream, err := dial(t, addr).StreamAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return &sotwStream{stream: stream, recv: responses(stream.Recv), names: map[string][]string{}}
}

func (s *sotwStream) send(t *testing.T, req *discoveryv3.DiscoveryRequest) {
	t.Helper()
	s.names[req.TypeUrl] = req.ResourceNames
	if err := s.stream.Send(req); err != nil {
		t.Fatal(err)
	}
}

// ack acknowledges resp, as a client that applied it would: naming again
// the resources it asks for.
func (s *sotwStream) ack(t *testing.T, resp *discoveryv3.DiscoveryResponse) {
	s.send(t, &discoveryv3.DiscoveryRequest{
		TypeUrl: resp.TypeUrl, VersionInfo: resp.VersionInfo, ResponseNonce: resp.Nonce, ResourceNames: s.names[resp.TypeUrl],
	})
}

// barrier returns once the server has handled every request sent before
// it: a stream handles requests in order, and a new subscription is
// answered at once.
func (s *sotwStream) barrier(t *testing.T) {
	t.Helper()
	s.send(t, &discoveryv3.DiscoveryRequest{TypeUrl: resource.ListenerType})
	next(t, s.recv)
}

func endpointsIn(t *testing.T, resp *discoveryv3.DiscoveryResponse) map[string]*endpointv3.ClusterLoadAssignment {
	t.Helper()
	out := map[string]*endpointv3.ClusterLoadAssignment{}
	for _, a := range resp.Resources {
		cla := &endpointv3.ClusterLoadAssignment{}
		if err := a.UnmarshalTo(cla); err != nil {
			t.Fatal(err)
		}
		out[cla.ClusterName] = cla
	}
	return out
}

func localZone(cla *endpointv3.ClusterLoadAssignment) string {
	for _, loc := range cla.Endpoints {
		if loc.Priority == 0 {
			return loc.Locality.Zone
		}
	}
	return ""
}

// setViews sets the gRPC view of each zone, the view of the test
// clients, which send no user agent.
func setViews(t testing.TB, srv *Server, fleet *topology.Fleet, zones ...string) {
	t.Helper()
	for _, z := range zones {
		if _, err := srv.SetView(grpcView(z), mustTranslate(t, fleet, z)); err != nil {
			t.Fatal(err)
		}
	}
}

func grpcView(zone string) snapshot.View {
	return snapshot.View{Zone: zone, Client: snapshot.ClientGRPC}
}

func TestSotWClientReceivesItsZoneSnapshot(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	setViews(t, srv, testFleet(), "az-1", "az-2")

	byLocality := openSotW(t, addr)
	byLocality.send(t, &discoveryv3.DiscoveryRequest{Node: zoneNode("proxy-1", "az-1"), TypeUrl: resource.EndpointType, ResourceNames: []string{"m1"}})
	byMetadata := openSotW(t, addr)
	byMetadata.send(t, &discoveryv3.DiscoveryRequest{Node: metadataZoneNode("proxy-2", "az-2"), TypeUrl: resource.EndpointType, ResourceNames: []string{"m1"}})

	if got := localZone(endpointsIn(t, next(t, byLocality.recv))["m1"]); got != "az-1" {
		t.Errorf("az-1 client: priority 0 locality is %q, want az-1", got)
	}
	if got := localZone(endpointsIn(t, next(t, byMetadata.recv))["m1"]); got != "az-2" {
		t.Errorf("az-2 (metadata) client: priority 0 locality is %q, want az-2", got)
	}
	if got := fmt.Sprint(srv.ConnectedViews()); got != "[az-1/grpc az-2/grpc]" {
		t.Errorf("ConnectedViews() = %s, want [az-1/grpc az-2/grpc]", got)
	}
}

func TestSotWNackIsCountedReportedAndNotResent(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	fleet := testFleet()
	setViews(t, srv, fleet, "az-1")
	client := openSotW(t, addr)
	client.send(t, &discoveryv3.DiscoveryRequest{Node: zoneNode("proxy-1", "az-1"), TypeUrl: resource.ClusterType})
	rejected := next(t, client.recv)

	client.send(t, &discoveryv3.DiscoveryRequest{
		TypeUrl: resource.ClusterType, ResponseNonce: rejected.Nonce,
		ErrorDetail: &status.Status{Code: 3, Message: "cluster m1: unsupported lb policy"},
	})
	expectNone(t, client.recv) // the rejected response is not sent again

	fleet.Instances = append(fleet.Instances, servingInstance("m3-a", "m3", "az-1", "10.0.1.3"))
	setViews(t, srv, fleet, "az-1")
	fixed := next(t, client.recv) // new content is still pushed after a NACK
	if fixed.VersionInfo == rejected.VersionInfo {
		t.Fatalf("after the change got version %q again", fixed.VersionInfo)
	}
	client.ack(t, fixed)
	client.barrier(t)

	if got := testutil.ToFloat64(srv.metrics.nacks.WithLabelValues("Cluster")); got != 1 {
		t.Errorf("nacks_total{type=Cluster} = %v, want 1", got)
	}
	ts := srv.Status()[0].Types["Cluster"]
	if ts.NackedVersion != rejected.VersionInfo || !strings.Contains(ts.LastNackError, "unsupported lb policy") {
		t.Errorf("status after NACK = %+v, want the rejected version %q and the client's message", ts, rejected.VersionInfo)
	}
	if ts.AckedVersion != fixed.VersionInfo || ts.SentVersion != fixed.VersionInfo {
		t.Errorf("status after ACK = %+v, want sent and acked version %q", ts, fixed.VersionInfo)
	}
}

func TestUnchangedVersionsPushNothing(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	setViews(t, srv, testFleet(), "az-1")
	client := openSotW(t, addr)
	client.send(t, &discoveryv3.DiscoveryRequest{Node: zoneNode("proxy-1", "az-1"), TypeUrl: resource.EndpointType})
	client.ack(t, next(t, client.recv))

	changed, err := srv.SetView(grpcView("az-1"), mustTranslate(t, testFleet(), "az-1"))
	if err != nil || changed {
		t.Fatalf("SetView(equal resources) = %v, %v; want false, nil", changed, err)
	}
	expectNone(t, client.recv)
	if got := testutil.ToFloat64(srv.metrics.pushes.WithLabelValues("az-1/grpc")); got != 1 {
		t.Errorf("pushes_total{view=az-1/grpc} = %v, want 1", got)
	}
}

func TestInvalidSnapshotKeepsThePreviousOne(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{}) // validates with snapshot.Validate
	setViews(t, srv, testFleet(), "az-1")
	before, _ := srv.Versions(grpcView("az-1"))
	client := openSotW(t, addr)
	client.send(t, &discoveryv3.DiscoveryRequest{Node: zoneNode("proxy-1", "az-1"), TypeUrl: resource.EndpointType})
	client.ack(t, next(t, client.recv))

	dangling := mustTranslate(t, testFleet(), "az-1")
	dangling.Clusters = dangling.Clusters[:1] // m2's endpoints lose their cluster
	dangling.Versions.Clusters += "-dangling"
	priorityGap := mustTranslate(t, testFleet(), "az-1")
	priorityGap.Endpoints[0].Endpoints[1].Priority = 2 // m1: priorities 0 and 2
	priorityGap.Versions.Endpoints += "-gap"

	for name, r := range map[string]*snapshot.Resources{"dangling endpoints": dangling, "priority gap": priorityGap} {
		if changed, err := srv.SetView(grpcView("az-1"), r); err == nil || changed {
			t.Errorf("%s: SetView = %v, %v; want an error", name, changed, err)
		}
	}
	if after, _ := srv.Versions(grpcView("az-1")); after != before {
		t.Errorf("versions changed to %+v after rejected snapshots", after)
	}
	expectNone(t, client.recv)
	if got := testutil.ToFloat64(srv.metrics.snapshotRejected.WithLabelValues(StageValidate)); got != 2 {
		t.Errorf("snapshot_rejected_total{stage=validate} = %v, want 2", got)
	}
}

func TestDeltaSendsOnlyTheChangedLoadAssignment(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	fleet := testFleet()
	setViews(t, srv, fleet, "az-1")
	stream, err := dial(t, addr).DeltaAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	recv := responses(stream.Recv)
	sendDelta := func(req *discoveryv3.DeltaDiscoveryRequest) {
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	sendDelta(&discoveryv3.DeltaDiscoveryRequest{Node: zoneNode("proxy-1", "az-1"), TypeUrl: resource.EndpointType})
	first := next(t, recv)
	if len(first.Resources) != 2 {
		t.Fatalf("first delta response has %d resources, want 2 (m1, m2)", len(first.Resources))
	}
	sendDelta(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resource.EndpointType, ResponseNonce: first.Nonce})

	fleet.Instances[2].Health = topology.HealthDraining // m2's only endpoint
	setViews(t, srv, fleet, "az-1")
	update := next(t, recv)
	if len(update.Resources) != 1 || update.Resources[0].Name != "m2" {
		t.Fatalf("delta update carries %v, want only m2", names(update.Resources))
	}
	cla := &endpointv3.ClusterLoadAssignment{}
	if err := update.Resources[0].Resource.UnmarshalTo(cla); err != nil {
		t.Fatal(err)
	}
	want := mustTranslate(t, fleet, "az-1").Endpoints[1]
	if !proto.Equal(cla, want) {
		t.Errorf("m2 after the change = %v, want %v", cla, want)
	}
	sendDelta(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resource.EndpointType, ResponseNonce: update.Nonce})
	// A stream handles requests in order: once a later subscription is
	// answered, the ACK before it has been counted.
	sendDelta(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resource.ListenerType})
	next(t, recv)
	if got := testutil.ToFloat64(srv.metrics.acks.WithLabelValues("ClusterLoadAssignment")); got != 2 {
		t.Errorf("acks_total{type=ClusterLoadAssignment} = %v, want 2", got)
	}
}

func names(rs []*discoveryv3.Resource) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

func TestStopEndsOpenStreams(t *testing.T) {
	srv := NewServer(ServerConfig{})
	lis := listen(t)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	setViews(t, srv, testFleet(), "az-1")
	client := openSotW(t, lis.Addr().String())
	client.send(t, &discoveryv3.DiscoveryRequest{Node: zoneNode("proxy-1", "az-1"), TypeUrl: resource.ClusterType})
	next(t, client.recv)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Stop(ctx)
	if err := <-served; err != nil {
		t.Errorf("Serve after Stop = %v, want nil", err)
	}
	if _, open := <-client.recv; open {
		t.Error("stream still delivers after Stop")
	}
	if got := testutil.ToFloat64(srv.metrics.connected); got != 0 {
		t.Errorf("connected_proxies after Stop = %v, want 0", got)
	}
}

// TestNodesGetTheViewOfTheirKind: Envoy (by user agent) receives only the
// socket listener, a gRPC client only the API listener; a metadata client
// kind overrides the user agent.
func TestNodesGetTheViewOfTheirKind(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	fleet, pol := generatedPolicyInput()
	tr := snapshot.NewTranslator()
	for _, client := range []snapshot.Client{snapshot.ClientEnvoy, snapshot.ClientGRPC} {
		view := snapshot.View{Zone: "az-1", Client: client}
		r, err := tr.TranslateView(fleet, pol, view)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv.SetView(view, r); err != nil {
			t.Fatal(err)
		}
	}
	envoy := zoneNode("envoy-1", "az-1")
	envoy.UserAgentName = "envoy"
	overridden := metadataNode("grpc-as-envoy", map[string]any{zoneMetadataKey: "az-1", clientMetadataKey: "envoy"})
	overridden.UserAgentName = "gRPC Go"
	cases := []struct {
		node *corev3.Node
		want string
	}{
		{envoy, snapshot.SocketListenerName},
		{zoneNode("grpc-1", "az-1"), snapshot.APIListenerName},
		{overridden, snapshot.SocketListenerName},
	}
	for _, c := range cases {
		client := openSotW(t, addr)
		client.send(t, &discoveryv3.DiscoveryRequest{Node: c.node, TypeUrl: resource.ListenerType})
		if got := resourceNames(t, next(t, client.recv)); got != c.want {
			t.Errorf("node %s received listeners [%s], want only [%s]", c.node.Id, got, c.want)
		}
	}
}

// TestUnknownZoneGetsTheViewWithoutAZone: once the fleet's zones are known,
// a node naming another zone is served the no-zone view, logged and
// counted once, and its zone never becomes a view or a label.
func TestUnknownZoneGetsTheViewWithoutAZone(t *testing.T) {
	var logs testlog.Buffer
	srv, addr := startServer(t, ServerConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	srv.SetZones([]string{"az-1", "az-2"})
	setViews(t, srv, testFleet(), "")
	client := openSotW(t, addr)
	client.send(t, &discoveryv3.DiscoveryRequest{Node: zoneNode("stray", "az-nowhere"), TypeUrl: resource.EndpointType})
	client.ack(t, next(t, client.recv)) // the no-zone view answers

	if got := fmt.Sprint(srv.ConnectedViews()); got != "[/grpc]" {
		t.Errorf("ConnectedViews() = %s, want the no-zone view [/grpc]", got)
	}
	if got := testutil.ToFloat64(srv.metrics.unknownZones); got != 1 {
		t.Errorf("unknown_zone_nodes_total = %v, want 1", got)
	}
	if n := strings.Count(logs.String(), "zone=az-nowhere"); n != 1 {
		t.Errorf("the unknown zone was logged %d times, want once:\n%s", n, logs.String())
	}
}

// TestConnectedNodeKeepsItsViewWhenZonesChange: a node of a zone the fleet
// did not have gets the no-zone view; when the fleet gains its zone, the
// node stays on the view it attached with (the one the controller builds
// for it) until it reconnects, and keeps receiving that view's updates.
func TestConnectedNodeKeepsItsViewWhenZonesChange(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	srv.SetZones([]string{"az-1"})
	setViews(t, srv, testFleet(), "") // az-2 has no view: no proxy of it was known
	client := openSotW(t, addr)
	client.send(t, &discoveryv3.DiscoveryRequest{Node: zoneNode("early", "az-2"), TypeUrl: resource.EndpointType})
	first := next(t, client.recv)

	srv.SetZones([]string{"az-1", "az-2"})
	client.ack(t, first) // this request's watch is keyed after the change
	changed := testFleet()
	changed.Instances[0].Health = topology.HealthUnhealthy
	setViews(t, srv, changed, "")
	if got := next(t, client.recv); got.GetVersionInfo() == first.GetVersionInfo() {
		t.Errorf("the no-zone view's update reached the node with the version it had, %s", got.GetVersionInfo())
	}
	if got := fmt.Sprint(srv.ConnectedViews()); got != "[/grpc]" {
		t.Errorf("ConnectedViews() = %s, want the view the node attached with, [/grpc]", got)
	}
}

// TestDropViewForgetsOnlyIdleViews: a view with a connected node is kept;
// once its node leaves it can be dropped, and a node that comes back waits
// for a new snapshot.
func TestDropViewForgetsOnlyIdleViews(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	setViews(t, srv, testFleet(), "az-1")
	ctx, cancel := context.WithCancel(t.Context())
	stream, err := dial(t, addr).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recv := responses(stream.Recv)
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: zoneNode("proxy-1", "az-1"), TypeUrl: resource.EndpointType}); err != nil {
		t.Fatal(err)
	}
	next(t, recv)
	if srv.DropView(grpcView("az-1")) {
		t.Fatal("DropView dropped a view with a connected node")
	}

	cancel()
	waitViewsChanged(t, srv, func(views []snapshot.View) bool { return len(views) == 0 })
	if !srv.DropView(grpcView("az-1")) {
		t.Fatal("DropView kept a view without nodes")
	}
	if _, ok := srv.Versions(grpcView("az-1")); ok {
		t.Error("the dropped view still has versions")
	}
	client := openSotW(t, addr)
	client.send(t, &discoveryv3.DiscoveryRequest{Node: zoneNode("proxy-2", "az-1"), TypeUrl: resource.EndpointType})
	expectNone(t, client.recv)
	setViews(t, srv, testFleet(), "az-1")
	next(t, client.recv)
}

func waitViewsChanged(t *testing.T, srv *Server, ok func([]snapshot.View) bool) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for !ok(srv.ConnectedViews()) {
		select {
		case <-srv.ViewsChanged():
		case <-timeout:
			t.Fatalf("connected views never matched: %v", srv.ConnectedViews())
		}
	}
}

func resourceNames(t *testing.T, resp *discoveryv3.DiscoveryResponse) string {
	t.Helper()
	var names []string
	for _, a := range resp.Resources {
		m, err := a.UnmarshalNew()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, cache.GetResourceName(m))
	}
	return strings.Join(names, ",")
}
