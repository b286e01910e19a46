package bootstrap

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
	"google.golang.org/grpc/xds"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"
)

var params = Params{NodeID: `envoy-1 "edge": a`, Cluster: "edge", Zone: "az-1", XDSAddress: "cp.example:18000", AdminPort: 9902}

// grpcParams point at 127.0.0.1 because gRPC's resolver starts its xDS
// client (and so a connection attempt) as soon as it is built.
var grpcParams = Params{NodeID: params.NodeID, Cluster: "edge", Zone: "az-1", XDSAddress: "127.0.0.1:1"}

// buildGRPCResolver has gRPC-Go parse the bootstrap the way a proxyless
// client does: its xds resolver reads the bootstrap when it is built.
func buildGRPCResolver(bootstrapJSON []byte) error {
	builder, err := xds.NewXDSResolverWithConfigForTesting(bootstrapJSON)
	if err != nil {
		return err
	}
	target := resolver.Target{URL: url.URL{Scheme: "xds", Path: "/inference"}}
	r, err := builder.Build(target, discardClientConn{}, resolver.BuildOptions{})
	if err != nil {
		return err
	}
	r.Close()
	return nil
}

// discardClientConn is the channel side of a resolver that nobody dials.
type discardClientConn struct{ resolver.ClientConn }

func (discardClientConn) UpdateState(resolver.State) error { return nil }
func (discardClientConn) ReportError(error)                {}
func (discardClientConn) NewAddress([]resolver.Address)    {}
func (discardClientConn) ParseServiceConfig(string) *serviceconfig.ParseResult {
	return &serviceconfig.ParseResult{}
}

func parseEnvoy(t *testing.T, p Params) *bootstrapv3.Bootstrap {
	t.Helper()
	out, err := Envoy(p)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(out)
	if err != nil {
		t.Fatalf("bootstrap is not YAML: %v\n%s", err, out)
	}
	var b bootstrapv3.Bootstrap
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(js, &b); err != nil {
		t.Fatalf("bootstrap does not parse as envoy.config.bootstrap.v3.Bootstrap: %v\n%s", err, out)
	}
	if err := b.ValidateAll(); err != nil {
		t.Fatalf("bootstrap fails Envoy's validation: %v", err)
	}
	return &b
}

func TestEnvoyBootstrapIsAValidEnvoyBootstrap(t *testing.T) {
	b := parseEnvoy(t, params)

	node := b.GetNode()
	if node.GetId() != params.NodeID || node.GetCluster() != "edge" || node.GetLocality().GetZone() != "az-1" {
		t.Errorf("node = %v, want id %q cluster edge zone az-1", node, params.NodeID)
	}
	if got := node.GetMetadata().GetFields()["zone"].GetStringValue(); got != "az-1" {
		t.Errorf("node metadata zone = %q, want az-1", got)
	}
	if got := b.GetAdmin().GetAddress().GetSocketAddress(); got.GetAddress() != "127.0.0.1" || got.GetPortValue() != 9902 {
		t.Errorf("admin address = %v, want 127.0.0.1:9902", got)
	}
	dyn := b.GetDynamicResources()
	if dyn.GetLdsConfig().GetAds() == nil || dyn.GetCdsConfig().GetAds() == nil {
		t.Errorf("LDS and CDS must come over ADS: %v", dyn)
	}
	ads := dyn.GetAdsConfig()
	if ads.GetApiType().String() != "GRPC" || ads.GetGrpcServices()[0].GetEnvoyGrpc().GetClusterName() != XDSClusterName {
		t.Errorf("ads_config = %v, want GRPC to %s", ads, XDSClusterName)
	}
	checkXDSCluster(t, b)
}

func checkXDSCluster(t *testing.T, b *bootstrapv3.Bootstrap) {
	t.Helper()
	clusters := b.GetStaticResources().GetClusters()
	if len(clusters) != 1 || clusters[0].GetName() != XDSClusterName {
		t.Fatalf("static clusters = %v, want only %s", clusters, XDSClusterName)
	}
	addr := clusters[0].GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	if addr.GetAddress() != "cp.example" || addr.GetPortValue() != 18000 {
		t.Errorf("xds cluster endpoint = %v, want cp.example:18000", addr)
	}
	var opts httpv3.HttpProtocolOptions
	if err := clusters[0].GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].UnmarshalTo(&opts); err != nil {
		t.Fatalf("xds cluster protocol options: %v", err)
	}
	if err := opts.ValidateAll(); err != nil || opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		t.Errorf("xds cluster must speak HTTP/2 (gRPC): %v %v", &opts, err)
	}
}

func TestEnvoyBootstrapDefaults(t *testing.T) {
	b := parseEnvoy(t, Params{NodeID: "n", Zone: "az-2", XDSAddress: "127.0.0.1:18000"})
	if b.GetNode().GetCluster() != DefaultCluster {
		t.Errorf("default cluster not applied: node %v", b.GetNode())
	}
	if port := b.GetAdmin().GetAddress().GetSocketAddress().GetPortValue(); port != 0 {
		t.Errorf("admin port = %d, want 0 (Envoy picks a free port)", port)
	}
}

func TestGRPCBootstrapIsAcceptedByGRPC(t *testing.T) {
	out, err := GRPC(grpcParams)
	if err != nil {
		t.Fatal(err)
	}
	if err := buildGRPCResolver(out); err != nil {
		t.Fatalf("gRPC rejects the bootstrap: %v\n%s", err, out)
	}
	var got struct {
		XDSServers []struct {
			ServerURI      string                  `json:"server_uri"`
			ChannelCreds   []struct{ Type string } `json:"channel_creds"`
			ServerFeatures []string                `json:"server_features"`
		} `json:"xds_servers"`
		Node struct {
			ID       string                `json:"id"`
			Cluster  string                `json:"cluster"`
			Locality struct{ Zone string } `json:"locality"`
		} `json:"node"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	s := got.XDSServers[0]
	if len(got.XDSServers) != 1 || s.ServerURI != grpcParams.XDSAddress || s.ChannelCreds[0].Type != "insecure" || strings.Join(s.ServerFeatures, ",") != "xds_v3" {
		t.Errorf("xds_servers = %+v", got.XDSServers)
	}
	if got.Node.ID != params.NodeID || got.Node.Cluster != "edge" || got.Node.Locality.Zone != "az-1" {
		t.Errorf("node = %+v", got.Node)
	}
}

// The gRPC check above must be able to fail: gRPC rejects a bootstrap
// without a usable server.
func TestGRPCRejectsABrokenBootstrap(t *testing.T) {
	broken := `{"xds_servers":[{"server_uri":"127.0.0.1:1","channel_creds":[{"type":"no-such-creds"}]}],"node":{"id":"n"}}`
	if err := buildGRPCResolver([]byte(broken)); err == nil {
		t.Fatal("gRPC accepted a bootstrap with unknown channel credentials")
	}
}

func TestParamsErrorsAreCollected(t *testing.T) {
	_, err := Envoy(Params{XDSAddress: "no-port"})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"node id", "xds address"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := GRPC(Params{NodeID: "n", XDSAddress: "host:0"}); err == nil {
		t.Error("port 0 accepted")
	}
}

func TestEnvoyBootstrapXDSModeSetsTheADSAPIType(t *testing.T) {
	for mode, want := range map[XDSMode]string{"": "GRPC", XDSModeSotW: "GRPC", XDSModeDelta: "DELTA_GRPC"} {
		p := params
		p.XDSMode = mode
		if got := parseEnvoy(t, p).GetDynamicResources().GetAdsConfig().GetApiType().String(); got != want {
			t.Errorf("xds mode %q: ads_config api_type %s, want %s", mode, got, want)
		}
	}
}

func TestEnvoyBootstrapRejectsAnUnknownXDSMode(t *testing.T) {
	p := params
	p.XDSMode = "incremental"
	if _, err := Envoy(p); err == nil || !strings.Contains(err.Error(), `xds mode "incremental"`) {
		t.Errorf("Envoy(xds mode incremental) error = %v, want one naming the mode", err)
	}
}
