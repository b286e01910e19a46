package xds

import (
	"context"
	"strings"
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

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

func setGroups(t testing.TB, srv *Server, fleet *topology.Fleet, groups ...string) {
	t.Helper()
	for _, g := range groups {
		if _, err := srv.SetGroup(g, mustTranslate(t, fleet, g)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSotWClientReceivesItsZoneSnapshot(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	setGroups(t, srv, testFleet(), "az-1", "az-2")

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
	if got := srv.Groups(); strings.Join(got, ",") != "az-1,az-2" {
		t.Errorf("Groups() = %q, want [az-1 az-2]", got)
	}
}

func TestSotWNackIsCountedReportedAndNotResent(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	fleet := testFleet()
	setGroups(t, srv, fleet, "az-1")
	client := openSotW(t, addr)
	client.send(t, &discoveryv3.DiscoveryRequest{Node: zoneNode("proxy-1", "az-1"), TypeUrl: resource.ClusterType})
	rejected := next(t, client.recv)

	client.send(t, &discoveryv3.DiscoveryRequest{
		TypeUrl: resource.ClusterType, ResponseNonce: rejected.Nonce,
		ErrorDetail: &status.Status{Code: 3, Message: "cluster m1: unsupported lb policy"},
	})
	expectNone(t, client.recv) // the rejected response is not sent again

	fleet.Instances = append(fleet.Instances, servingInstance("m3-a", "m3", "az-1", "10.0.1.3"))
	setGroups(t, srv, fleet, "az-1")
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
	setGroups(t, srv, testFleet(), "az-1")
	client := openSotW(t, addr)
	client.send(t, &discoveryv3.DiscoveryRequest{Node: zoneNode("proxy-1", "az-1"), TypeUrl: resource.EndpointType})
	client.ack(t, next(t, client.recv))

	changed, err := srv.SetGroup("az-1", mustTranslate(t, testFleet(), "az-1"))
	if err != nil || changed {
		t.Fatalf("SetGroup(equal resources) = %v, %v; want false, nil", changed, err)
	}
	expectNone(t, client.recv)
	if got := testutil.ToFloat64(srv.metrics.pushes.WithLabelValues("az-1")); got != 1 {
		t.Errorf("pushes_total{group=az-1} = %v, want 1", got)
	}
}

func TestInvalidSnapshotKeepsThePreviousOne(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{}) // validates with snapshot.Validate
	setGroups(t, srv, testFleet(), "az-1")
	before, _ := srv.Versions("az-1")
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
		if changed, err := srv.SetGroup("az-1", r); err == nil || changed {
			t.Errorf("%s: SetGroup = %v, %v; want an error", name, changed, err)
		}
	}
	if after, _ := srv.Versions("az-1"); after != before {
		t.Errorf("versions changed to %+v after rejected snapshots", after)
	}
	expectNone(t, client.recv)
	if got := testutil.ToFloat64(srv.metrics.snapshotRejected.WithLabelValues(stageValidate)); got != 2 {
		t.Errorf("snapshot_rejected_total{stage=validate} = %v, want 2", got)
	}
}

func TestDeltaSendsOnlyTheChangedLoadAssignment(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	fleet := testFleet()
	setGroups(t, srv, fleet, "az-1")
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
	setGroups(t, srv, fleet, "az-1")
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
	setGroups(t, srv, testFleet(), "az-1")
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
