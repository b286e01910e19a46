package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/inferxds/inferxds/cmd/gpu-agent/agent"
	"github.com/inferxds/inferxds/cmd/gpu-agent/agent/nvmlmock"
	"github.com/inferxds/inferxds/internal/testlog"
	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology"
	"github.com/inferxds/inferxds/topology/telemetry"
)

// GPU telemetry settings of the control planes in the gpu_* tests: short
// enough that a fault drains within a second, long enough for a 2-core
// machine running the race detector.
const (
	gpuNodeName    = "gpu-node-1"
	scrapeInterval = 200 * time.Millisecond
	xidPollTimeout = 50 * time.Millisecond
)

// gpuNode is one GPU node: go-nvml's mock DGX A100 read by the real
// gpu-agent code, which runs in the test process (its binary needs a real
// NVML) and serves /metrics on 127.0.0.1.
type gpuNode struct {
	machine  *nvmlmock.Machine
	agent    *agent.Agent
	url      string // the agent's /metrics, the node's telemetryURL
	stop     context.CancelFunc
	stopOnce sync.Once
	served   chan error
}

// startGPUNode starts an agent on a fresh mock machine; it stops when the
// test ends unless stopAgent stopped it before.
func startGPUNode(t *testing.T) *gpuNode {
	t.Helper()
	logs := &testlog.Buffer{}
	n := &gpuNode{machine: nvmlmock.NewDGXA100(), served: make(chan error, 1)}
	ctx, stop := context.WithCancel(context.Background())
	n.stop = stop
	a, err := agent.Start(ctx, agent.Config{
		NVML: n.machine.NVML(), Hostname: gpuNodeName, XIDPollTimeout: xidPollTimeout,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		stop()
		t.Fatalf("start gpu-agent on the mock DGX A100: %v", err)
	}
	n.agent = a
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		stop()
		t.Fatal(err)
	}
	n.url = "http://" + lis.Addr().String() + "/metrics"
	go func() { n.served <- a.Serve(ctx, lis) }()
	t.Cleanup(func() {
		n.stopAgent(t)
		if t.Failed() {
			t.Logf("--- gpu-agent log:\n%s", logs.String())
		}
	})
	return n
}

// stopAgent shuts the agent's HTTP server and NVML down, as when the agent
// process dies; scrapes of the node then fail. Safe to call twice.
func (n *gpuNode) stopAgent(t *testing.T) {
	t.Helper()
	n.stopOnce.Do(func() {
		n.stop()
		select {
		case err := <-n.served:
			if err != nil {
				t.Errorf("gpu-agent serve: %v", err)
			}
		case <-time.After(stopTimeout):
			t.Errorf("gpu-agent did not stop serving within %v", stopTimeout)
		}
		if err := n.agent.Close(); err != nil {
			t.Errorf("gpu-agent close: %v", err)
		}
	})
}

// node is the fleet entry for this machine: its eight GPUs, by index and
// UUID, in zone az-1, with the agent as its telemetry endpoint.
func (n *gpuNode) node() topology.Node {
	node := topology.Node{Name: gpuNodeName, Zone: "az-1", TelemetryURL: n.url}
	for i := range n.machine.NumGPUs() {
		node.GPUs = append(node.GPUs, topology.GPU{Index: i, UUID: n.machine.UUID(i), Model: n.machine.ModelName(i)})
	}
	return node
}

// fleet places each simulator on the GPU of the same position (sims[i] on
// GPU i) of this node, unweighted, so telemetry sets the weights.
func (n *gpuNode) fleet(t *testing.T, sims ...*modelSim) topology.Fleet {
	t.Helper()
	f := fleetOf()
	f.Nodes = []topology.Node{n.node()}
	for gpu, s := range sims {
		in := s.grpcInstance(t)
		in.Node, in.GPUs = gpuNodeName, []int{gpu}
		f.Instances = append(f.Instances, in)
	}
	return f
}

// startTelemetryControlPlane is startControlPlane with GPU telemetry
// scraped every scrapeInterval and weights allowed to move every
// weightMinInterval.
func startTelemetryControlPlane(t *testing.T, policy string, fleet topology.Fleet) *controlPlane {
	t.Helper()
	return startControlPlane(t, policy, fleet,
		"--scrape-interval", scrapeInterval.String(), "--weight-min-interval", weightMinInterval.String())
}

// endpoints are a model's endpoints in one ClusterLoadAssignment: weight by
// instance id.
type endpoints map[string]uint32

// edsWatch follows one model's ClusterLoadAssignment through a Delta ADS
// stream, as a proxy sees it.
type edsWatch struct {
	d      *deltaClient
	model  string
	ids    map[string]string // endpoint address:port → instance id
	latest endpoints
}

// watchEDS subscribes to every endpoint set and waits for the model's first.
func watchEDS(t *testing.T, cp *controlPlane, model string, sims ...*modelSim) *edsWatch {
	t.Helper()
	w := &edsWatch{d: dialDelta(t, cp, t.Name()+"-eds", "az-1"), model: model, ids: map[string]string{}}
	for _, s := range sims {
		w.ids[s.ready.GRPCAddress] = s.id
	}
	w.d.subscribeWildcard(t, resourcev3.EndpointType)
	w.await(t, readyTimeout, "any endpoints", func(e endpoints) bool { return len(e) > 0 })
	return w
}

// await reads (and ACKs) responses until the model's endpoints satisfy done,
// and returns when the response that did arrived. what names the wait in
// the failure message.
func (w *edsWatch) await(t *testing.T, timeout time.Duration, what string, done func(endpoints) bool) time.Time {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for w.latest == nil || !done(w.latest) {
		select {
		case resp, ok := <-w.d.responses:
			w.read(t, resp, ok)
		case <-deadline.C:
			t.Fatalf("EDS for %s: no %s within %v; latest %v", w.model, what, timeout, w.latest)
		}
	}
	return time.Now()
}

// read ACKs a response received from the stream (ok false: the stream
// closed) and keeps the model's assignment from it.
func (w *edsWatch) read(t *testing.T, resp *discoveryv3.DeltaDiscoveryResponse, ok bool) {
	t.Helper()
	if !ok {
		t.Fatalf("delta stream for the EDS of %s closed", w.model)
	}
	w.d.ack(t, resp)
	w.take(t, resp.GetResources())
}

// take keeps the model's assignment, if the resources hold one.
func (w *edsWatch) take(t *testing.T, resources []*discoveryv3.Resource) {
	t.Helper()
	for _, r := range resources {
		if r.GetName() != snapshot.ClusterName(w.model) {
			continue
		}
		var cla endpointv3.ClusterLoadAssignment
		if err := r.GetResource().UnmarshalTo(&cla); err != nil {
			t.Fatalf("decode ClusterLoadAssignment %s: %v", r.GetName(), err)
		}
		w.latest = w.endpointsOf(&cla)
	}
}

// since returns the model's endpoints of every push that arrived since the
// last read, without waiting.
func (w *edsWatch) since(t *testing.T) []endpoints {
	t.Helper()
	var pushes []endpoints
	for {
		select {
		case resp, ok := <-w.d.responses:
			before := w.latest
			w.read(t, resp, ok)
			if !maps.Equal(before, w.latest) {
				pushes = append(pushes, w.latest)
			}
		default:
			return pushes
		}
	}
}

func (w *edsWatch) endpointsOf(cla *endpointv3.ClusterLoadAssignment) endpoints {
	out := endpoints{}
	for _, locality := range cla.GetEndpoints() {
		for _, lb := range locality.GetLbEndpoints() {
			sock := lb.GetEndpoint().GetAddress().GetSocketAddress()
			addr := net.JoinHostPort(sock.GetAddress(), strconv.Itoa(int(sock.GetPortValue())))
			id, ok := w.ids[addr]
			if !ok {
				id = addr
			}
			out[id] = lb.GetLoadBalancingWeight().GetValue()
		}
	}
	return out
}

// scrapeMetrics reads a Prometheus endpoint on 127.0.0.1.
func scrapeMetrics(t *testing.T, url string) telemetry.Metrics {
	t.Helper()
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	m, err := telemetry.ParseText(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return m
}

// metricValue is the sum of name's series whose labels include want.
func metricValue(m telemetry.Metrics, name string, want map[string]string) float64 {
	var sum float64
	for _, s := range m[name] {
		if labelsInclude(s.Labels, want) {
			sum += s.Value
		}
	}
	return sum
}

func labelsInclude(labels, want map[string]string) bool {
	for k, v := range want {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// intervals expresses d in scrape intervals.
func intervals(d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(d)/float64(scrapeInterval))
}
