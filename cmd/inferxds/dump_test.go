package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
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
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"
)

// dumped is the YAML dump and plan print, read back.
type dumped map[string]struct {
	Version   string           `json:"version"`
	Resources []map[string]any `json:"resources"`
}

func (d dumped) names(key string) []string {
	var out []string
	for _, r := range d[key].Resources {
		name, _ := r["name"].(string)
		if name == "" {
			name, _ = r["clusterName"].(string)
		}
		out = append(out, name)
	}
	return out
}

func parseDump(t *testing.T, out []byte) dumped {
	t.Helper()
	var d dumped
	if err := yaml.Unmarshal(out, &d); err != nil {
		t.Fatalf("output is not the expected YAML: %v\n%s", err, out)
	}
	return d
}

// startCacheServer serves snap to node "envoy-1" from a bare
// go-control-plane cache on 127.0.0.1.
func startCacheServer(t *testing.T, snap *cache.Snapshot) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	snapshots := cache.NewSnapshotCache(false, cache.IDHash{}, nil)
	if err := snapshots.SetSnapshot(ctx, "envoy-1", snap); err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, serverv3.NewServer(ctx, snapshots, nil))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(lis)
	t.Cleanup(func() { cancel(); g.Stop() })
	return lis.Addr().String()
}

// proxySnapshot is what a proxy of one model needs: a socket listener and an
// API listener on route "inference", the model's EDS cluster and endpoints,
// plus a static cluster that must not be asked for over EDS.
func proxySnapshot(t *testing.T) *cache.Snapshot {
	t.Helper()
	snap, err := cache.NewSnapshot("v1", map[resource.Type][]types.Resource{
		resource.ListenerType: {socketListener(t), apiListener(t)},
		resource.RouteType:    {routeTo("llama")},
		resource.ClusterType:  {edsCluster("llama"), staticCluster("sidecar")},
		resource.EndpointType: {endpoints("llama", "127.0.0.1", 8001)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func connectionManager(t *testing.T) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{
		StatPrefix: "ingress",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: "inference",
			ConfigSource:    &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}},
		}},
		HttpFilters: []*hcmv3.HttpFilter{{Name: "router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerv3.Router{})}}},
	}
}

func socketListener(t *testing.T) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:    "ingress_http",
		Address: socketAddress("0.0.0.0", 10000),
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name: "hcm", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, connectionManager(t))},
		}}}},
	}
}

func apiListener(t *testing.T) *listenerv3.Listener {
	return &listenerv3.Listener{Name: "inference", ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(t, connectionManager(t))}}
}

func routeTo(cluster string) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{Name: "inference", VirtualHosts: []*routev3.VirtualHost{{
		Name: "inference", Domains: []string{"*"},
		Routes: []*routev3.Route{{
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster}}},
		}},
	}}}
}

func edsCluster(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}},
	}
}

func staticCluster(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		LoadAssignment:       endpoints(name, "127.0.0.1", 9000),
	}
}

func endpoints(cluster, host string, port uint32) *endpointv3.ClusterLoadAssignment {
	return &endpointv3.ClusterLoadAssignment{ClusterName: cluster, Endpoints: []*endpointv3.LocalityLbEndpoints{{
		LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress(host, port)}}}},
	}}}
}

func socketAddress(host string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

func TestDumpReceivesEveryTypeLikeAProxy(t *testing.T) {
	address := startCacheServer(t, proxySnapshot(t))
	for _, delta := range []bool{false, true} {
		t.Run(map[bool]string{false: "sotw", true: "delta"}[delta], func(t *testing.T) {
			var out bytes.Buffer
			o := dumpOptions{xdsAddress: address, nodeID: "envoy-1", zone: "az-1", delta: delta, timeout: 5 * time.Second}
			if err := runDump(context.Background(), &out, o); err != nil {
				t.Fatalf("dump: %v\n%s", err, out.String())
			}
			d := parseDump(t, out.Bytes())
			want := map[string]string{
				"listeners": "inference,ingress_http",
				"routes":    "inference",
				"clusters":  "llama,sidecar",
				"endpoints": "llama", // only what an EDS cluster names
			}
			for key, names := range want {
				if got := strings.Join(d.names(key), ","); got != names || d[key].Version != "v1" {
					t.Errorf("%s: version %q names %q, want v1 %q", key, d[key].Version, got, names)
				}
			}
		})
	}
}

// endedStream is an ADS stream the server has ended with status: sends
// find only io.EOF, as gRPC's do, and receives get the status.
type endedStream struct{ status error }

func (s endedStream) subscribe(string, []string) error { return io.EOF }
func (s endedStream) ack(adsResponse) error            { return io.EOF }
func (s endedStream) recv() (adsResponse, error)       { return adsResponse{}, s.status }

// TestFetchOnARefusedStreamSaysWhy: when the server refuses the stream
// before a request is sent, the error is the server's status, not the
// send's io.EOF.
func TestFetchOnARefusedStreamSaysWhy(t *testing.T) {
	refused := status.Error(codes.PermissionDenied, `request names node "edge-2"`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // hang guard
	defer cancel()
	_, err := fetchResources(ctx, endedStream{refused}, time.Second)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), `request names node "edge-2"`) {
		t.Errorf("err = %v, want the server's PermissionDenied", err)
	}
}

func TestDumpWithoutASnapshotTimesOutNamingWhatIsMissing(t *testing.T) {
	address := startCacheServer(t, proxySnapshot(t))
	var out bytes.Buffer
	start := time.Now()
	o := dumpOptions{xdsAddress: address, nodeID: "unknown-node", zone: "az-1", timeout: 500 * time.Millisecond}
	err := runDump(context.Background(), &out, o)
	if err == nil || !strings.Contains(err.Error(), resource.ListenerType) || !strings.Contains(err.Error(), resource.ClusterType) {
		t.Fatalf("err = %v, want a timeout naming listeners and clusters", err)
	}
	// A hang guard, not a speed check: without its timeout dump would wait
	// for resources that never come.
	if elapsed := time.Since(start); elapsed > 30*time.Second {
		t.Errorf("dump took %v with a 500ms timeout", elapsed)
	}
	if d := parseDump(t, out.Bytes()); len(d["listeners"].Resources) != 0 {
		t.Errorf("listeners printed for a node that got none: %v", d)
	}
}
