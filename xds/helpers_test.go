package xds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"net"
	"slices"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology"
)

// The tests translate with this small stand-in for snapshot.Translate: one
// API listener "inference", one route per model on header model-name, one
// EDS cluster per model, and endpoints with the group's zone at priority 0
// and every other zone at priority 1.

const testListener = snapshot.APIListenerName

func testTranslate(fleet *topology.Fleet, _ *drpolicy.Policy, group string) (*snapshot.Resources, error) {
	models := modelsOf(fleet)
	r := &snapshot.Resources{
		Listeners: []*listenerv3.Listener{apiListener()},
		Routes:    []*routev3.RouteConfiguration{routeConfig(models)},
	}
	for _, m := range models {
		r.Clusters = append(r.Clusters, edsCluster(m))
		r.Endpoints = append(r.Endpoints, loadAssignment(fleet, m, group))
	}
	r.Versions = snapshot.Versions{
		Listeners: hashOf(r.Listeners),
		Routes:    hashOf(r.Routes),
		Clusters:  hashOf(r.Clusters),
		Endpoints: hashOf(r.Clusters) + hashOf(r.Endpoints),
	}
	return r, nil
}

func modelsOf(fleet *topology.Fleet) []string {
	var models []string
	for _, in := range fleet.Instances {
		models = append(models, in.Model)
	}
	slices.Sort(models)
	return slices.Compact(models)
}

func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

func apiListener() *listenerv3.Listener {
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: testListener,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: testListener, ConfigSource: adsSource(),
		}},
		HttpFilters: []*hcmv3.HttpFilter{{
			Name:       "router",
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})},
		}},
	}
	return &listenerv3.Listener{Name: testListener, ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(hcm)}}
}

func routeConfig(models []string) *routev3.RouteConfiguration {
	vh := &routev3.VirtualHost{Name: testListener, Domains: []string{"*"}}
	for _, m := range models {
		vh.Routes = append(vh.Routes, &routev3.Route{
			Match: &routev3.RouteMatch{
				PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"},
				Headers: []*routev3.HeaderMatcher{{
					Name: "model-name",
					HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
						MatchPattern: &matcherv3.StringMatcher_Exact{Exact: m},
					}},
				}},
			},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{
				ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: m},
			}},
		})
	}
	return &routev3.RouteConfiguration{Name: testListener, VirtualHosts: []*routev3.VirtualHost{vh}}
}

func edsCluster(model string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 model,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource()},
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
		ConnectTimeout:       durationpb.New(time.Second),
	}
}

func loadAssignment(fleet *topology.Fleet, model, group string) *endpointv3.ClusterLoadAssignment {
	byZone := map[string]*endpointv3.LocalityLbEndpoints{}
	for _, in := range fleet.Instances {
		if in.Model != model || !in.Serving() {
			continue
		}
		loc := byZone[in.Zone]
		if loc == nil {
			loc = &endpointv3.LocalityLbEndpoints{Locality: &corev3.Locality{Zone: in.Zone}, LoadBalancingWeight: wrapperspb.UInt32(0)}
			if in.Zone != group {
				loc.Priority = 1
			}
			byZone[in.Zone] = loc
		}
		loc.LbEndpoints = append(loc.LbEndpoints, lbEndpoint(in))
		loc.LoadBalancingWeight.Value += in.EffectiveWeight()
	}
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: model}
	for _, zone := range slices.Sorted(maps.Keys(byZone)) {
		cla.Endpoints = append(cla.Endpoints, byZone[zone])
	}
	compactPriorities(cla.Endpoints)
	return cla
}

// compactPriorities renumbers priority 1 as 0 when no locality is local.
func compactPriorities(locs []*endpointv3.LocalityLbEndpoints) {
	if slices.ContainsFunc(locs, func(l *endpointv3.LocalityLbEndpoints) bool { return l.Priority == 0 }) {
		return
	}
	for _, l := range locs {
		l.Priority = 0
	}
}

func lbEndpoint(in topology.Instance) *endpointv3.LbEndpoint {
	return &endpointv3.LbEndpoint{
		HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: in.Address, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: in.Port},
			}}},
		}},
		HealthStatus:        corev3.HealthStatus_HEALTHY,
		LoadBalancingWeight: wrapperspb.UInt32(in.EffectiveWeight()),
	}
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	return a
}

func hashOf[M proto.Message](items []M) string {
	h := sha256.New()
	for _, item := range items {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(item)
		if err != nil {
			panic(err)
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// testFleet: model m1 serves in az-1 and az-2, model m2 only in az-1.
func testFleet() *topology.Fleet {
	return &topology.Fleet{
		Zones: []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}, {Name: "az-2", Role: topology.ZoneActive}},
		Instances: []topology.Instance{
			servingInstance("m1-a", "m1", "az-1", "10.0.1.1"),
			servingInstance("m1-b", "m1", "az-2", "10.0.2.1"),
			servingInstance("m2-a", "m2", "az-1", "10.0.1.2"),
		},
	}
}

func servingInstance(name, model, zone, address string) topology.Instance {
	return topology.Instance{
		Name: name, Model: model, Zone: zone, Address: address, Port: 8000,
		Tier: topology.TierHot, Role: topology.RolePrimary, Health: topology.HealthServing,
	}
}

func mustTranslate(t testing.TB, fleet *topology.Fleet, group string) *snapshot.Resources {
	t.Helper()
	r, err := testTranslate(fleet, &drpolicy.Policy{}, group)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// startServer serves a new Server on 127.0.0.1 until the test ends.
func startServer(t testing.TB, cfg ServerConfig) (*Server, string) {
	t.Helper()
	srv := NewServer(cfg)
	lis := listen(t)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Stop(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, lis.Addr().String()
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lis
}

func dial(t testing.TB, addr string) discoveryv3.AggregatedDiscoveryServiceClient {
	t.Helper()
	return discoveryv3.NewAggregatedDiscoveryServiceClient(connect(t, addr))
}

// connect opens a client connection closed when the test ends.
func connect(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func zoneNode(id, zone string) *corev3.Node {
	return &corev3.Node{Id: id, Locality: &corev3.Locality{Zone: zone}}
}

// metadataZoneNode names its zone only in metadata, as some Envoy
// bootstraps do.
func metadataZoneNode(id, zone string) *corev3.Node {
	return metadataNode(id, map[string]any{zoneMetadataKey: zone})
}

func metadataNode(id string, metadata map[string]any) *corev3.Node {
	md, err := structpb.NewStruct(metadata)
	if err != nil {
		panic(err)
	}
	return &corev3.Node{Id: id, Metadata: md}
}

// generatedPolicyInput is a small fleet and policy the real translator
// accepts: models llama and mistral served in az-1.
func generatedPolicyInput() (*topology.Fleet, *drpolicy.Policy) {
	fleet := &topology.Fleet{
		Zones: []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}},
		Instances: []topology.Instance{
			servingInstance("llama-a", "llama", "az-1", "10.0.1.1"),
			servingInstance("mistral-a", "mistral", "az-1", "10.0.1.2"),
		},
	}
	fleet.ApplyDefaults()
	policy := &drpolicy.Policy{Models: []drpolicy.Model{{Name: "llama"}, {Name: "mistral"}}}
	policy.ApplyDefaults()
	return fleet, policy
}

// quiet is how long a test waits to show that no response arrives.
const quiet = 300 * time.Millisecond

// responses turns a stream's blocking Recv into a channel, closed when the
// stream ends.
func responses[T any](recv func() (T, error)) <-chan T {
	out := make(chan T, 16)
	go func() {
		defer close(out)
		for {
			r, err := recv()
			if err != nil {
				return
			}
			out <- r
		}
	}()
	return out
}

func next[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case r, ok := <-ch:
		if !ok {
			t.Fatal("stream ended")
		}
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no response within 5s")
	}
	panic("unreachable")
}

func expectNone[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("unexpected response: %v", r)
	case <-time.After(quiet):
	}
}
