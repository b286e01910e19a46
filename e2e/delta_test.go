package e2e

import (
	"context"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/inferxds/inferxds/topology"
)

// TestDeltaSendsOnlyTheChangedEndpoints: a Delta ADS client subscribed to
// every cluster and endpoint set receives, after one instance's health
// changes, exactly that model's ClusterLoadAssignment and nothing else.
func TestDeltaSendsOnlyTheChangedEndpoints(t *testing.T) {
	llamaA := startModelSim(t, "llama-a", "llama-2-7b")
	llamaB := startModelSim(t, "llama-b", "llama-2-7b")
	mistral := startModelSim(t, "mistral-a", "mistral-7b")
	instances := []topology.Instance{llamaA.grpcInstance(t), llamaB.grpcInstance(t), mistral.grpcInstance(t)}
	cp := startControlPlane(t, twoModelPolicy, fleetOf(instances...))

	d := dialDelta(t, cp, "delta-client", "az-1")
	d.subscribeWildcard(t, resourcev3.ClusterType)
	d.subscribeWildcard(t, resourcev3.EndpointType)
	initial := map[string]int{}
	for initial[resourcev3.ClusterType] == 0 || initial[resourcev3.EndpointType] == 0 {
		resp := d.next(t, hangGuard)
		initial[resp.GetTypeUrl()] += len(resp.GetResources())
		d.ack(t, resp)
	}
	if initial[resourcev3.ClusterType] != 2 || initial[resourcev3.EndpointType] != 2 {
		t.Fatalf("initial delta state: %v; want 2 clusters and 2 endpoint sets", initial)
	}

	instances[1].Health = topology.HealthUnhealthy
	changedAt := time.Now()
	cp.writeFleet(t, fleetOf(instances...))
	resp := d.next(t, hangGuard)
	pushed := time.Since(changedAt)
	d.ack(t, resp)
	names := resourceNames(resp)
	report(t, "delta health-change type=%s resources=%v removed=%v fleet-edit-to-push=%v",
		resp.GetTypeUrl(), names, resp.GetRemovedResources(), pushed.Round(time.Millisecond))
	if resp.GetTypeUrl() != resourcev3.EndpointType || len(names) != 1 || names[0] != "llama-2-7b" || len(resp.GetRemovedResources()) != 0 {
		t.Errorf("after one llama-2-7b instance turned unhealthy got %s %v removed %v; want only the llama-2-7b ClusterLoadAssignment",
			resp.GetTypeUrl(), names, resp.GetRemovedResources())
	}
	d.expectQuiet(t, 500*time.Millisecond)
}

// deltaClient speaks incremental ADS like a proxy would, through
// go-control-plane's generated stubs.
type deltaClient struct {
	node      *corev3.Node
	stream    discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	responses chan *discoveryv3.DeltaDiscoveryResponse
}

func dialDelta(t *testing.T, cp *controlPlane, nodeID, zone string) *deltaClient {
	t.Helper()
	ads, ctx := dialADS(t, cp)
	stream, err := ads.DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatalf("open delta ADS stream: %v", err)
	}
	d := &deltaClient{
		node:      &corev3.Node{Id: nodeID, Locality: &corev3.Locality{Zone: zone}},
		stream:    stream,
		responses: make(chan *discoveryv3.DeltaDiscoveryResponse, 16),
	}
	go d.receive()
	return d
}

func (d *deltaClient) receive() {
	defer close(d.responses)
	for {
		resp, err := d.stream.Recv()
		if err != nil {
			return
		}
		d.responses <- resp
	}
}

func (d *deltaClient) subscribeWildcard(t *testing.T, typeURL string) {
	t.Helper()
	d.send(t, &discoveryv3.DeltaDiscoveryRequest{Node: d.node, TypeUrl: typeURL, ResourceNamesSubscribe: []string{"*"}})
}

func (d *deltaClient) ack(t *testing.T, resp *discoveryv3.DeltaDiscoveryResponse) {
	t.Helper()
	d.send(t, &discoveryv3.DeltaDiscoveryRequest{Node: d.node, TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()})
}

func (d *deltaClient) send(t *testing.T, req *discoveryv3.DeltaDiscoveryRequest) {
	t.Helper()
	if err := d.stream.Send(req); err != nil {
		t.Fatalf("delta send %s: %v", req.GetTypeUrl(), err)
	}
}

// next returns the next response, failing the test after timeout.
func (d *deltaClient) next(t *testing.T, timeout time.Duration) *discoveryv3.DeltaDiscoveryResponse {
	t.Helper()
	select {
	case resp, ok := <-d.responses:
		if !ok {
			t.Fatalf("delta stream closed")
		}
		return resp
	case <-time.After(timeout):
		t.Fatalf("no delta response within %v", timeout)
		return nil
	}
}

// expectQuiet fails if any further response arrives within window.
func (d *deltaClient) expectQuiet(t *testing.T, window time.Duration) {
	t.Helper()
	select {
	case resp, ok := <-d.responses:
		if ok {
			t.Errorf("unexpected further delta response: %s %v removed %v",
				resp.GetTypeUrl(), resourceNames(resp), resp.GetRemovedResources())
		}
	case <-time.After(window):
	}
}

func resourceNames(resp *discoveryv3.DeltaDiscoveryResponse) []string {
	var names []string
	for _, r := range resp.GetResources() {
		names = append(names, r.GetName())
	}
	return names
}

// dialADS connects to cp's xDS port in plaintext for the rest of the test
// and returns an ADS client and the context its streams run in.
func dialADS(t *testing.T, cp *controlPlane) (discoveryv3.AggregatedDiscoveryServiceClient, context.Context) {
	t.Helper()
	conn, err := grpc.NewClient(cp.XDSAddress, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		_ = conn.Close()
	})
	return discoveryv3.NewAggregatedDiscoveryServiceClient(conn), ctx
}
