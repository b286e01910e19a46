package xds

import (
	"fmt"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statusv3 "github.com/envoyproxy/go-control-plane/envoy/service/status/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/testing/protocmp"
)

func dialCSDS(t *testing.T, addr string) statusv3.ClientStatusDiscoveryServiceClient {
	t.Helper()
	return statusv3.NewClientStatusDiscoveryServiceClient(connect(t, addr))
}

func exactNode(id string) *statusv3.ClientStatusRequest {
	return &statusv3.ClientStatusRequest{NodeMatchers: []*matcherv3.NodeMatcher{{
		NodeId: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: id}},
	}}}
}

func fetch(t *testing.T, csds statusv3.ClientStatusDiscoveryServiceClient, req *statusv3.ClientStatusRequest) *statusv3.ClientStatusResponse {
	t.Helper()
	resp, err := csds.FetchClientStatus(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// clusterEntries are a node's Cluster entries in a CSDS response.
func clusterEntries(resp *statusv3.ClientStatusResponse, node string) []*statusv3.ClientConfig_GenericXdsConfig {
	var out []*statusv3.ClientConfig_GenericXdsConfig
	for _, cc := range resp.GetConfig() {
		if cc.GetNode().GetId() != node {
			continue
		}
		for _, e := range cc.GetGenericXdsConfigs() {
			if e.GetTypeUrl() == resource.ClusterType {
				out = append(out, e)
			}
		}
	}
	return out
}

// waitClusterStatus polls CSDS until the node's Cluster entries have the
// status (the ACK or NACK that makes it is handled asynchronously) and
// returns them.
func waitClusterStatus(t *testing.T, csds statusv3.ClientStatusDiscoveryServiceClient, node string, want statusv3.ConfigStatus) []*statusv3.ClientConfig_GenericXdsConfig {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		entries := clusterEntries(fetch(t, csds, exactNode(node)), node)
		if len(entries) > 0 && entries[0].GetConfigStatus() == want {
			return entries
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: Cluster status never became %v; last: %v", node, want, entries)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func outOfSync(t *testing.T, srv *Server, typ string) float64 {
	t.Helper()
	families, err := srv.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "inferxds_xds_proxies_out_of_sync" {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == typ {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("inferxds_xds_proxies_out_of_sync{type=%q} is missing", typ)
	return 0
}

// TestCSDSReportsSyncedStaleAndNackedProxies follows a state-of-the-world
// and a Delta client through ACK, NACK and an unanswered push, as a CSDS
// client sees them.
func TestCSDSReportsSyncedStaleAndNackedProxies(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	fleet := testFleet()
	setViews(t, srv, fleet, "az-1")
	csds := dialCSDS(t, addr)
	if got := outOfSync(t, srv, "Cluster"); got != 0 {
		t.Errorf("out of sync before any proxy = %v, want 0", got)
	}

	sotw := openSotW(t, addr)
	sotw.send(t, &discoveryv3.DiscoveryRequest{Node: zoneNode("proxy-sotw", "az-1"), TypeUrl: resource.ClusterType})
	first := next(t, sotw.recv)
	sotw.ack(t, first)
	synced := waitClusterStatus(t, csds, "proxy-sotw", statusv3.ConfigStatus_SYNCED)
	if got := entryNames(synced); got != "[m1 m2]" {
		t.Errorf("SYNCED entries name %s, want [m1 m2]", got)
	}
	for _, e := range synced {
		var c clusterv3.Cluster
		if e.GetVersionInfo() != first.VersionInfo || e.GetXdsConfig().UnmarshalTo(&c) != nil || c.GetName() != e.GetName() {
			t.Errorf("SYNCED entry %s: version %q, config %v; want version %q and the cluster", e.GetName(), e.GetVersionInfo(), e.GetXdsConfig(), first.VersionInfo)
		}
	}

	delta := openDeltaStream(t, addr)
	sendDelta(t, delta, &discoveryv3.DeltaDiscoveryRequest{Node: zoneNode("proxy-delta", "az-1"), TypeUrl: resource.ClusterType})
	rejected := next(t, delta.recv)
	sendDelta(t, delta, &discoveryv3.DeltaDiscoveryRequest{
		TypeUrl: resource.ClusterType, ResponseNonce: rejected.Nonce,
		ErrorDetail: &status.Status{Code: 3, Message: "cluster m1: unsupported lb policy"},
	})
	nacked := waitClusterStatus(t, csds, "proxy-delta", statusv3.ConfigStatus_ERROR)[0]
	if nacked.GetErrorState().GetDetails() != "cluster m1: unsupported lb policy" ||
		nacked.GetErrorState().GetVersionInfo() != rejected.SystemVersionInfo || nacked.GetXdsConfig() != nil {
		t.Errorf("ERROR entry = %v; want the client's message, the rejected version %q and no contents", nacked, rejected.SystemVersionInfo)
	}

	fleet.Instances = append(fleet.Instances, servingInstance("m3-a", "m3", "az-1", "10.0.1.3"))
	setViews(t, srv, fleet, "az-1")
	pushed := next(t, sotw.recv) // not ACKed yet
	stale := waitClusterStatus(t, csds, "proxy-sotw", statusv3.ConfigStatus_STALE)
	if stale[0].GetVersionInfo() != first.VersionInfo || stale[0].GetXdsConfig() != nil {
		t.Errorf("STALE entry = %v; want the ACKed version %q and no contents", stale[0], first.VersionInfo)
	}
	if got := outOfSync(t, srv, "Cluster"); got != 2 {
		t.Errorf("inferxds_xds_proxies_out_of_sync{type=Cluster} = %v with one STALE and one ERROR proxy, want 2", got)
	}

	sotw.ack(t, pushed)
	if got := waitClusterStatus(t, csds, "proxy-sotw", statusv3.ConfigStatus_SYNCED); got[0].GetVersionInfo() != pushed.VersionInfo || len(got) != 3 {
		t.Errorf("after the ACK: %d entries at version %q, want 3 at %q", len(got), got[0].GetVersionInfo(), pushed.VersionInfo)
	}
	if n := testutil.CollectAndCount(srv.metrics.pushToAck, "inferxds_xds_push_ack_seconds"); n != 4 {
		t.Errorf("push_ack_seconds has %d series, want one per type (4)", n)
	}
	if got := histogramCount(t, srv, "Cluster"); got != 2 {
		t.Errorf("push_ack_seconds{type=Cluster} count = %d, want 2 (two ACKs)", got)
	}
}

// TestCSDSMatchesNodesAndStreams: node matchers select by id, and the
// streaming call answers each request as Fetch does.
func TestCSDSMatchesNodesAndStreams(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	setViews(t, srv, testFleet(), "az-1", "az-2")
	csds := dialCSDS(t, addr)
	for _, n := range []struct{ id, zone string }{{"envoy-a", "az-1"}, {"envoy-b", "az-2"}, {"grpc-c", "az-1"}} {
		c := openSotW(t, addr)
		c.send(t, &discoveryv3.DiscoveryRequest{Node: zoneNode(n.id, n.zone), TypeUrl: resource.ClusterType})
		c.ack(t, next(t, c.recv))
		waitClusterStatus(t, csds, n.id, statusv3.ConfigStatus_SYNCED)
	}
	prefix := &statusv3.ClientStatusRequest{NodeMatchers: []*matcherv3.NodeMatcher{{
		NodeId: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "envoy-"}},
	}}}
	for _, tc := range []struct {
		req  *statusv3.ClientStatusRequest
		want string
	}{
		{&statusv3.ClientStatusRequest{}, "[envoy-a:az-1/grpc envoy-b:az-2/grpc grpc-c:az-1/grpc]"},
		{exactNode("envoy-b"), "[envoy-b:az-2/grpc]"},
		{prefix, "[envoy-a:az-1/grpc envoy-b:az-2/grpc]"},
		{exactNode("nobody"), "[]"},
	} {
		if got := configNodes(fetch(t, csds, tc.req)); got != tc.want {
			t.Errorf("Fetch(%v) nodes = %s, want %s", tc.req, got, tc.want)
		}
	}

	stream, err := csds.StreamClientStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []*statusv3.ClientStatusRequest{prefix, {ExcludeResourceContents: true}} {
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		got, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		want := fetch(t, csds, req)
		if diff := cmpResponses(got, want); diff != "" {
			t.Errorf("stream answer differs from Fetch for %v:\n%s", req, diff)
		}
	}
	for _, e := range clusterEntries(fetch(t, csds, &statusv3.ClientStatusRequest{ExcludeResourceContents: true}), "envoy-a") {
		if e.GetXdsConfig() != nil {
			t.Errorf("exclude_resource_contents: entry %s carries contents", e.GetName())
		}
	}
}

func cmpResponses(got, want *statusv3.ClientStatusResponse) string {
	return cmp.Diff(want, got, protocmp.Transform())
}

func configNodes(resp *statusv3.ClientStatusResponse) string {
	var out []string
	for _, cc := range resp.GetConfig() {
		out = append(out, cc.GetNode().GetId()+":"+cc.GetClientScope())
	}
	return fmt.Sprint(out)
}

func entryNames(entries []*statusv3.ClientConfig_GenericXdsConfig) string {
	var out []string
	for _, e := range entries {
		out = append(out, e.GetName())
	}
	return fmt.Sprint(out)
}

func histogramCount(t *testing.T, srv *Server, typ string) uint64 {
	t.Helper()
	m := &dto.Metric{}
	if err := srv.metrics.pushToAck.WithLabelValues(typ).(prometheus.Histogram).Write(m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

type deltaClient struct {
	stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	recv   <-chan *discoveryv3.DeltaDiscoveryResponse
}

func openDeltaStream(t *testing.T, addr string) *deltaClient {
	t.Helper()
	stream, err := dial(t, addr).DeltaAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return &deltaClient{stream: stream, recv: responses(stream.Recv)}
}

func sendDelta(t *testing.T, c *deltaClient, req *discoveryv3.DeltaDiscoveryRequest) {
	t.Helper()
	if err := c.stream.Send(req); err != nil {
		t.Fatal(err)
	}
}
