package xds

import (
	"maps"
	"slices"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/inferxds/inferxds/topology"
)

// The fleet of testFleet: Instances[0] serves m1 in az-1, Instances[2] m2.
const (
	m1Local = 0
	m2Local = 2
)

func subscribeEndpoints(t *testing.T, client *sotwStream, names ...string) *discoveryv3.DiscoveryResponse {
	t.Helper()
	client.send(t, &discoveryv3.DiscoveryRequest{Node: zoneNode("proxy-1", "az-1"), TypeUrl: resource.EndpointType, ResourceNames: names})
	return next(t, client.recv)
}

// move gives the instance a new address and pushes the fleet to az-1.
func move(t *testing.T, srv *Server, fleet *topology.Fleet, instance int, address string) {
	t.Helper()
	fleet.Instances[instance].Address = address
	setViews(t, srv, fleet, "az-1")
}

// wantEndpoints fails unless got holds exactly the named load assignments,
// each as fleet translates it.
func wantEndpoints(t *testing.T, got map[string]*endpointv3.ClusterLoadAssignment, fleet *topology.Fleet, names ...string) {
	t.Helper()
	want := map[string]*endpointv3.ClusterLoadAssignment{}
	for _, cla := range mustTranslate(t, fleet, "az-1").Endpoints {
		if slices.Contains(names, cla.ClusterName) {
			want[cla.ClusterName] = cla
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got load assignments %v, want %v", slices.Sorted(maps.Keys(got)), names)
	}
	for name, cla := range want {
		if !proto.Equal(got[name], cla) {
			t.Errorf("%s = %v, want %v", name, got[name], cla)
		}
	}
}

func clusterNames(t *testing.T, resp *discoveryv3.DiscoveryResponse) []string {
	t.Helper()
	var names []string
	for _, a := range resp.Resources {
		c := &clusterv3.Cluster{}
		if err := a.UnmarshalTo(c); err != nil {
			t.Fatal(err)
		}
		names = append(names, c.Name)
	}
	slices.Sort(names)
	return names
}

func TestSotWSendsOnlyChangedLoadAssignmentsAndCompleteClusters(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	fleet := testFleet()
	setViews(t, srv, fleet, "az-1")
	client := openSotW(t, addr)
	first := subscribeEndpoints(t, client, "m1", "m2")
	wantEndpoints(t, endpointsIn(t, first), fleet, "m1", "m2")
	client.ack(t, first)
	client.send(t, &discoveryv3.DiscoveryRequest{TypeUrl: resource.ClusterType})
	client.ack(t, next(t, client.recv))

	move(t, srv, fleet, m2Local, "10.0.1.8")
	update := next(t, client.recv)
	wantEndpoints(t, endpointsIn(t, update), fleet, "m2")
	if v, _ := srv.Versions(grpcView("az-1")); update.VersionInfo != v.Endpoints {
		t.Errorf("update has version %q, want the group's %q", update.VersionInfo, v.Endpoints)
	}
	client.ack(t, update)

	// A new model: clusters stay complete; m1 and m2 did not change, so no
	// endpoints are sent until m3 is asked for, and then m3 alone.
	fleet.Instances = append(fleet.Instances, servingInstance("m3-a", "m3", "az-1", "10.0.1.3"))
	setViews(t, srv, fleet, "az-1")
	clusters := next(t, client.recv)
	if clusters.TypeUrl != resource.ClusterType || !slices.Equal(clusterNames(t, clusters), []string{"m1", "m2", "m3"}) {
		t.Fatalf("after adding m3 got %s %v, want every cluster: m1 m2 m3", TypeName(clusters.TypeUrl), clusterNames(t, clusters))
	}
	client.ack(t, clusters)
	client.send(t, &discoveryv3.DiscoveryRequest{
		TypeUrl: resource.EndpointType, ResourceNames: []string{"m1", "m2", "m3"},
		VersionInfo: update.VersionInfo, ResponseNonce: update.Nonce,
	})
	wantEndpoints(t, endpointsIn(t, next(t, client.recv)), fleet, "m3")
}

// syncEndpoints applies resp and the responses after it, as a client that
// keeps what a response leaves out, ACKing each, until one carries the
// group's current endpoints version; it returns what the client holds.
func syncEndpoints(t *testing.T, srv *Server, client *sotwStream, held map[string]*endpointv3.ClusterLoadAssignment, resp *discoveryv3.DiscoveryResponse) map[string]*endpointv3.ClusterLoadAssignment {
	t.Helper()
	want, _ := srv.Versions(grpcView("az-1"))
	for {
		for name, cla := range endpointsIn(t, resp) {
			held[name] = cla
		}
		client.ack(t, resp)
		if resp.VersionInfo == want.Endpoints {
			return held
		}
		resp = next(t, client.recv)
	}
}

func TestSotWClientBehindSeveralVersionsGetsEveryChange(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	fleet := testFleet()
	setViews(t, srv, fleet, "az-1")

	t.Run("pushed each version", func(t *testing.T) {
		client := openSotW(t, addr)
		first := subscribeEndpoints(t, client, "m1", "m2")
		held := endpointsIn(t, first)
		client.ack(t, first)
		move(t, srv, fleet, m1Local, "10.0.1.11")
		move(t, srv, fleet, m2Local, "10.0.1.12")
		wantEndpoints(t, syncEndpoints(t, srv, client, held, next(t, client.recv)), fleet, "m1", "m2")
	})
	t.Run("acknowledging after two versions", func(t *testing.T) {
		client := openSotW(t, addr)
		first := subscribeEndpoints(t, client, "m1", "m2")
		move(t, srv, fleet, m1Local, "10.0.1.21")
		move(t, srv, fleet, m2Local, "10.0.1.22")
		held := endpointsIn(t, first)
		client.ack(t, first)
		wantEndpoints(t, syncEndpoints(t, srv, client, held, next(t, client.recv)), fleet, "m1", "m2")
	})
}

func TestSotWNewStreamGetsEveryLoadAssignment(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	fleet := testFleet()
	setViews(t, srv, fleet, "az-1")
	move(t, srv, fleet, m1Local, "10.0.1.11")
	current, _ := srv.Versions(grpcView("az-1"))

	fresh := openSotW(t, addr)
	wantEndpoints(t, endpointsIn(t, subscribeEndpoints(t, fresh, "m1", "m2")), fleet, "m1", "m2")

	// A client reconnecting (to this or a restarted server) names the
	// version it holds, but what it holds is unknown to the new stream.
	reconnected := openSotW(t, addr)
	reconnected.send(t, &discoveryv3.DiscoveryRequest{
		Node: zoneNode("proxy-2", "az-1"), TypeUrl: resource.EndpointType,
		ResourceNames: []string{"m1", "m2"}, VersionInfo: current.Endpoints,
	})
	wantEndpoints(t, endpointsIn(t, next(t, reconnected.recv)), fleet, "m1", "m2")
}

func TestSotWNackedLoadAssignmentsAreFollowedByAFullResponse(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	fleet := testFleet()
	setViews(t, srv, fleet, "az-1")
	client := openSotW(t, addr)
	first := subscribeEndpoints(t, client, "m1", "m2")
	client.ack(t, first)

	move(t, srv, fleet, m1Local, "10.0.1.11")
	rejected := next(t, client.recv)
	client.send(t, &discoveryv3.DiscoveryRequest{
		TypeUrl: resource.EndpointType, ResourceNames: []string{"m1", "m2"},
		VersionInfo: first.VersionInfo, ResponseNonce: rejected.Nonce,
		ErrorDetail: &status.Status{Code: 3, Message: "m1: bad endpoint"},
	})
	expectNone(t, client.recv) // the rejected content is not sent again

	move(t, srv, fleet, m2Local, "10.0.1.12")
	full := next(t, client.recv)
	wantEndpoints(t, endpointsIn(t, full), fleet, "m1", "m2")
	client.ack(t, full)

	move(t, srv, fleet, m1Local, "10.0.1.13")
	wantEndpoints(t, endpointsIn(t, next(t, client.recv)), fleet, "m1")
}

// gRPC-Go, after rejecting a response, goes on naming the version before
// it (with the rejected response's nonce) in later requests.
func TestSotWRequestAtAnOlderVersionGetsEveryLoadAssignment(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	fleet := testFleet()
	setViews(t, srv, fleet, "az-1")
	client := openSotW(t, addr)
	first := subscribeEndpoints(t, client, "m1", "m2")
	client.ack(t, first)
	move(t, srv, fleet, m1Local, "10.0.1.11")
	update := next(t, client.recv)

	client.send(t, &discoveryv3.DiscoveryRequest{
		TypeUrl: resource.EndpointType, ResourceNames: []string{"m1", "m2"},
		VersionInfo: first.VersionInfo, ResponseNonce: update.Nonce,
	})
	wantEndpoints(t, endpointsIn(t, next(t, client.recv)), fleet, "m1", "m2")
}
