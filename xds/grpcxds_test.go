package xds

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	grpcxds "google.golang.org/grpc/xds"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology"
)

// startModelServer serves the gRPC health service on 127.0.0.1, standing
// in for a model server; it reports SERVING for service "" and for name,
// so a check of name succeeds on this server only.
func startModelServer(t *testing.T, name string) (host string, port uint32) {
	t.Helper()
	lis := listen(t)
	s := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	h, p, err := net.SplitHostPort(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(p, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return h, uint32(n)
}

// dialXDS connects to xds:///inference as node grpc-client-1 of az-1,
// resolving through the xDS server at addr with gRPC-Go's own xDS client.
func dialXDS(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	bootstrap := fmt.Sprintf(`{
		"xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
		"node": {"id": "grpc-client-1", "locality": {"zone": "az-1"}}
	}`, addr)
	resolver, err := grpcxds.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("xds:///"+snapshot.APIListenerName, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(resolver))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestGRPCXDSClientReachesModelThroughAPIListener uses gRPC-Go's own xDS
// client and the real translator: the client resolves xds:///inference
// through our server and calls the model server the header model-name picks.
func TestGRPCXDSClientReachesModelThroughAPIListener(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	host, port := startModelServer(t, "llama-a")
	fleet := &topology.Fleet{
		Zones: []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}, {Name: "az-2", Role: topology.ZoneActive}},
		Instances: []topology.Instance{
			{Name: "llama-a", Model: "llama", Zone: "az-1", Address: host, Port: port},
			{Name: "mistral-a", Model: "mistral", Zone: "az-2", Address: "10.0.2.1", Port: 8000},
		},
	}
	fleet.ApplyDefaults()
	policy := &drpolicy.Policy{Models: []drpolicy.Model{{Name: "llama"}, {Name: "mistral"}}}
	policy.ApplyDefaults()
	r, err := snapshot.NewTranslator().TranslateView(fleet, policy, grpcView("az-1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Listeners) != 1 || r.Listeners[0].GetName() != snapshot.APIListenerName {
		t.Fatalf("the gRPC view carries listeners %v, want only the API listener", r.Listeners)
	}
	if _, err := srv.SetView(grpcView("az-1"), r); err != nil {
		t.Fatal(err)
	}

	conn := dialXDS(t, addr)

	callCtx, callCancel := context.WithTimeout(metadata.AppendToOutgoingContext(t.Context(), drpolicy.DefaultRoutingHeader, "llama"), 10*time.Second)
	defer callCancel()
	resp, err := healthpb.NewHealthClient(conn).Check(callCtx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("Check through xds:///%s: %v", snapshot.APIListenerName, err)
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("model server answered %v, want SERVING", resp.Status)
	}
	if nodes := srv.Status(); len(nodes) != 1 || nodes[0].ID != "grpc-client-1" || nodes[0].View != "az-1/grpc" {
		t.Errorf("server status = %+v, want grpc-client-1 in view az-1/grpc (by its user agent)", nodes)
	}
}

// TestGRPCXDSClientFollowsEndpointChangesOfEveryModel moves models between
// model servers; gRPC-Go's xDS client, sent only the load assignments that
// changed, must keep calling each model's current server, including a model
// that moved two versions before and one that has not moved since.
func TestGRPCXDSClientFollowsEndpointChangesOfEveryModel(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	servers := map[string]topology.Instance{}
	for _, name := range []string{"llama-a", "llama-b", "mistral-a", "mistral-b"} {
		host, port := startModelServer(t, name)
		in := servingInstance(name, name[:strings.IndexByte(name, '-')], "az-1", host)
		in.Port = port
		servers[name] = in
	}
	fleet := &topology.Fleet{Zones: []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}}}
	serve := func(instances ...string) {
		t.Helper()
		fleet.Instances = nil
		for _, name := range instances {
			fleet.Instances = append(fleet.Instances, servers[name])
		}
		setViews(t, srv, fleet, "az-1")
	}
	health := healthpb.NewHealthClient(dialXDS(t, addr))

	serve("llama-a", "mistral-a")
	waitRoutedTo(t, health, "llama", "llama-a")
	waitRoutedTo(t, health, "mistral", "mistral-a")

	serve("llama-b", "mistral-a")
	serve("llama-b", "mistral-b")
	waitRoutedTo(t, health, "mistral", "mistral-b")
	waitRoutedTo(t, health, "llama", "llama-b")

	serve("llama-a", "mistral-b")
	waitRoutedTo(t, health, "llama", "llama-a")
	waitRoutedTo(t, health, "mistral", "mistral-b")
}

// waitRoutedTo calls model until the call reaches the model server named
// server, for at most 10 seconds.
func waitRoutedTo(t *testing.T, health healthpb.HealthClient, model, server string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(t.Context(), drpolicy.DefaultRoutingHeader, model), 10*time.Second)
	defer cancel()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		_, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: server}, grpc.WaitForReady(true))
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("model %s never reached server %s: %v", model, server, err)
		case <-poll.C:
		}
	}
}
