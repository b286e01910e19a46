package telemetry_test

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferxds/inferxds/internal/testlog"
	"github.com/inferxds/inferxds/topology"
	"github.com/inferxds/inferxds/topology/telemetry"
)

// published holds the latest fleet a runner published.
type published struct {
	mu     sync.Mutex
	latest *topology.Fleet
	count  int
	next   chan struct{}
}

func (p *published) publish(f *topology.Fleet) {
	p.mu.Lock()
	p.latest = f
	p.count++
	p.mu.Unlock()
	select {
	case p.next <- struct{}{}:
	default:
	}
}

// waitFor waits up to 5s for a published fleet that ok accepts.
func (p *published) waitFor(t *testing.T, what string, ok func(*topology.Fleet) bool) *topology.Fleet {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		p.mu.Lock()
		f := p.latest
		p.mu.Unlock()
		if f != nil && ok(f) {
			return f
		}
		select {
		case <-p.next:
		case <-timeout:
			t.Fatalf("no published fleet with %s within 5s; latest: %+v", what, f)
		}
	}
}

type runnerUnderTest struct {
	*telemetry.Runner
	out      *published
	registry *prometheus.Registry
	logs     *testlog.Buffer
}

func startRunner(t *testing.T, fleet *topology.Fleet) *runnerUnderTest {
	t.Helper()
	r := &runnerUnderTest{out: &published{next: make(chan struct{}, 1)}, registry: prometheus.NewRegistry(), logs: &testlog.Buffer{}}
	var err error
	r.Runner, err = telemetry.NewRunner(telemetry.Config{
		Interval: 20 * time.Millisecond, StaleAfter: 300 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(r.logs, nil)), Registry: r.registry,
	}, r.out.publish)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	r.UpdateFleet(fleet)
	return r
}

// fleetAt is testFleet with its telemetry served at 127.0.0.1 URLs.
func fleetAt(t *testing.T, node, model string) *topology.Fleet {
	return parseFleet(t, strings.NewReplacer(nodeURL, node, modelURL, model).Replace(testFleet))
}

func servingAre(names ...string) func(*topology.Fleet) bool {
	return func(f *topology.Fleet) bool { return slices.Equal(serving(f), names) }
}

func gpuHealth(index int, h topology.Health) func(*topology.Fleet) bool {
	return func(f *topology.Fleet) bool { return f.Nodes[0].GPUs[index].Health == h }
}

// TestRunnerDrainsOnXID79AndRestoresAfterReset follows one GPU through a
// fault and an agent restart, as the control plane would publish it.
func TestRunnerDrainsOnXID79AndRestoresAfterReset(t *testing.T) {
	healthy := exposition(healthyGPU(0, "GPU-aaaa"), healthyGPU(1, "GPU-bbbb"))
	e := startExporter(t, healthy)
	r := startRunner(t, fleetAt(t, e.URL, startExporter(t, vllmPage(nil)).URL))
	r.out.waitFor(t, "GPU 1 serving", gpuHealth(1, topology.HealthServing))

	faulty := healthyGPU(1, "GPU-bbbb")
	faulty.lastXID, faulty.xidCounts = 79, map[int]int{79: 1}
	e.setPage(exposition(healthyGPU(0, "GPU-aaaa"), faulty))
	drained := r.out.waitFor(t, "b and tp out of service", servingAre("a", "other"))
	if g := drained.Nodes[0].GPUs[1]; g.Health != topology.HealthUnhealthy || g.LastXID != 79 {
		t.Errorf("GPU 1 = %+v, want unhealthy with last XID 79", g)
	}
	if n := gathered(t, r.registry, "inferxds_gpu_drains_total", "xid"); n != 1 {
		t.Errorf("inferxds_gpu_drains_total{reason=xid} = %v, want 1 (one fault, however many rounds)", n)
	}
	if !strings.Contains(r.logs.String(), `level=WARN msg="GPU fault: draining its instances" node=n1 gpu=1 uuid=GPU-bbbb reason=xid xid=79 instances="[b tp]"`) {
		t.Errorf("no WARN naming the node, GPU, XID and instances:\n%s", r.logs)
	}

	e.setPage(healthy) // the agent restarted after a GPU reset: counters are back at zero
	r.out.waitFor(t, "all back in service", servingAre("a", "b", "other", "tp"))
	if !strings.Contains(r.logs.String(), `msg="GPU back in service" node=n1 gpu=1`) {
		t.Errorf("recovery not logged:\n%s", r.logs)
	}
}

// gathered is the value of the series of metric name whose only label
// has value label, or -1 if there is none.
func gathered(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if f.GetName() == name && m.GetLabel()[0].GetValue() == label {
				return cmp.Or(m.GetCounter().GetValue(), m.GetGauge().GetValue())
			}
		}
	}
	return -1
}

// TestRunnerKeepsInstancesWhenANodeStopsAnswering: an exporter that stops
// answering makes its GPUs unknown, not unhealthy.
func TestRunnerKeepsInstancesWhenANodeStopsAnswering(t *testing.T) {
	e := startExporter(t, exposition(healthyGPU(0, "GPU-aaaa"), healthyGPU(1, "GPU-bbbb")))
	r := startRunner(t, fleetAt(t, e.URL, startExporter(t, vllmPage(nil)).URL))
	r.out.waitFor(t, "GPU 0 serving", gpuHealth(0, topology.HealthServing))
	if up := gathered(t, r.registry, "inferxds_telemetry_targets", "up"); up != 2 {
		t.Errorf("targets up = %v, want 2 (node and model server)", up)
	}

	e.mode.Store("fail")
	stale := r.out.waitFor(t, "GPU 0 unknown", gpuHealth(0, topology.HealthUnknown))
	if s := serving(stale); !slices.Equal(s, []string{"a", "b", "other", "tp"}) {
		t.Errorf("serving %v after the exporter failed; stale telemetry must not drain", s)
	}
	if n := gathered(t, r.registry, "inferxds_telemetry_targets", "stale"); n != 1 {
		t.Errorf("targets stale = %v, want 1", n)
	}
	if !strings.Contains(r.logs.String(), `level=WARN msg="telemetry scrape failing" target=`+e.URL) {
		t.Errorf("failing target not logged:\n%s", r.logs)
	}
}

// TestRunnerWeighsOnlyUnpinnedInstancesWithTelemetry: a busier instance
// gets less weight; a weight from the fleet file is kept; an instance
// without telemetry keeps the default.
func TestRunnerWeighsOnlyUnpinnedInstancesWithTelemetry(t *testing.T) {
	node := startExporter(t, exposition(healthyGPU(0, "GPU-aaaa"), healthyGPU(1, "GPU-bbbb")))
	model := startExporter(t, vllmPage(map[string]topology.Load{"llama": {Running: 16, QueueDepth: 20, KVCacheUsage: 0.95}}))
	r := startRunner(t, fleetAt(t, node.URL, model.URL))
	weighed := func(f *topology.Fleet) bool {
		return instance(t, f, "a").Weight != 0 && instance(t, f, "tp").Weight != 0
	}
	f := r.out.waitFor(t, "weights for a and tp", weighed)
	a, tp := instance(t, f, "a").Weight, instance(t, f, "tp").Weight
	if a >= tp || tp > topology.MaxWeight {
		t.Errorf("weights a=%d (loaded model server) tp=%d (GPUs 40%% busy): want a < tp <= %d", a, tp, topology.MaxWeight)
	}
	if b := instance(t, f, "b").Weight; b != 7 {
		t.Errorf("b's weight %d, want the fleet file's pinned 7", b)
	}
	if o := instance(t, f, "other").Weight; o != 0 {
		t.Errorf("other has no telemetry but got weight %d", o)
	}
}

func TestNewRunnerRejectsBadSettings(t *testing.T) {
	_, err := telemetry.NewRunner(telemetry.Config{Interval: time.Second, Timeout: 2 * time.Second, StaleAfter: time.Millisecond}, func(*topology.Fleet) {})
	for _, want := range []string{"timeout 2s exceeds the scrape interval 1s", "stale-after 1ms is shorter than the scrape interval 1s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}
