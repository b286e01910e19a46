package telemetry_test

import (
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/inferxds/inferxds/topology"
	"github.com/inferxds/inferxds/topology/telemetry"
)

func TestApplyDrainsOnlyTheInstancesOfAFaultyGPU(t *testing.T) {
	gpu0, gpu1 := healthyGPU(0, "GPU-aaaa"), healthyGPU(1, "GPU-bbbb")
	with := func(g gpuPage, change func(*gpuPage)) gpuPage { change(&g); return g }
	tests := []struct {
		name        string
		page        string
		wantFaults  []telemetry.Fault
		wantServing []string
	}{
		{"healthy", exposition(gpu0, gpu1), nil, []string{"a", "b", "other", "tp"}},
		{"XID 79 fell off the bus", exposition(gpu0, with(gpu1, func(g *gpuPage) { g.lastXID = 79 })),
			[]telemetry.Fault{{Node: "n1", GPU: 1, UUID: "GPU-bbbb", Reason: telemetry.ReasonXID, XID: 79, Instances: []string{"b", "tp"}}},
			[]string{"a", "other"}},
		{"critical XID counted, then an application XID", exposition(with(gpu0, func(g *gpuPage) { g.lastXID, g.xidCounts = 13, map[int]int{48: 1, 13: 2} }), gpu1),
			[]telemetry.Fault{{Node: "n1", GPU: 0, UUID: "GPU-aaaa", Reason: telemetry.ReasonXID, XID: 48, Instances: []string{"a", "tp"}}},
			[]string{"b", "other"}},
		{"application XID only", exposition(with(gpu0, func(g *gpuPage) { g.lastXID, g.xidCounts = 13, map[int]int{13: 1} }), gpu1),
			nil, []string{"a", "b", "other", "tp"}},
		{"uncorrectable ECC", exposition(with(gpu0, func(g *gpuPage) { g.eccDBE = 2 }), gpu1),
			[]telemetry.Fault{{Node: "n1", GPU: 0, UUID: "GPU-aaaa", Reason: telemetry.ReasonECC, Instances: []string{"a", "tp"}}},
			[]string{"b", "other"}},
		{"GPU missing from a fresh scrape", exposition(gpu0),
			[]telemetry.Fault{{Node: "n1", GPU: 1, UUID: "GPU-bbbb", Reason: telemetry.ReasonLost, Instances: []string{"b", "tp"}}},
			[]string{"a", "other"}},
		{"GPU reported down", exposition(gpu0, with(gpu1, func(g *gpuPage) { g.down = true })),
			[]telemetry.Fault{{Node: "n1", GPU: 1, UUID: "GPU-bbbb", Reason: telemetry.ReasonLost, Instances: []string{"b", "tp"}}},
			[]string{"a", "other"}},
		{"GPUs renumbered: matched by UUID", exposition(with(gpu0, func(g *gpuPage) { g.index = 1 }), with(gpu1, func(g *gpuPage) { g.index, g.lastXID = 0, 79 })),
			[]telemetry.Fault{{Node: "n1", GPU: 1, UUID: "GPU-bbbb", Reason: telemetry.ReasonXID, XID: 79, Instances: []string{"b", "tp"}}},
			[]string{"a", "other"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fleet := parseFleet(t, testFleet)
			samples := telemetry.Samples{nodeURL: {At: t0, Metrics: parseText(t, tt.page)}}
			got, faults := telemetry.Apply(fleet, samples, t0.Add(time.Second), staleAfter)
			if !reflect.DeepEqual(faults, tt.wantFaults) {
				t.Errorf("faults = %+v, want %+v", faults, tt.wantFaults)
			}
			if s := serving(got); !slices.Equal(s, tt.wantServing) {
				t.Errorf("serving instances = %v, want %v", s, tt.wantServing)
			}
			for _, f := range tt.wantFaults {
				if g := got.Nodes[0].GPUs[f.GPU]; g.Health != topology.HealthUnhealthy {
					t.Errorf("GPU %d health %q, want unhealthy", f.GPU, g.Health)
				}
			}
			if !fleet.Equal(parseFleet(t, testFleet)) {
				t.Error("Apply modified its input fleet")
			}
		})
	}
}

func TestApplyFillsGPUReadings(t *testing.T) {
	gpu0 := healthyGPU(0, "GPU-aaaa")
	gpu0.xidCounts = map[int]int{13: 2, 31: 1}
	gpu0.lastXID = 31
	samples := telemetry.Samples{nodeURL: {At: t0, Metrics: parseText(t, exposition(gpu0, healthyGPU(1, "GPU-bbbb")))}}
	got, _ := telemetry.Apply(parseFleet(t, testFleet), samples, t0.Add(2*time.Second), staleAfter)
	want := topology.GPU{Index: 0, UUID: "GPU-aaaa", MemoryTotalMiB: 81920, MemoryUsedMiB: 60000, UtilizationPct: 40,
		Health: topology.HealthServing, XIDErrors: 3, LastXID: 31}
	if g := got.Nodes[0].GPUs[0]; g != want {
		t.Errorf("GPU 0 = %+v, want %+v", g, want)
	}
	if age := got.Nodes[0].TelemetryAge; age != 2*time.Second {
		t.Errorf("telemetry age %v, want 2s", age)
	}
	if n2 := got.Nodes[1]; n2.TelemetryAge != 0 || n2.GPUs[0].Health != "" {
		t.Errorf("node without telemetry changed: %+v", n2)
	}
}

func TestApplyFillsMemoryTotalFromUsedAndFree(t *testing.T) {
	fleet := parseFleet(t, testFleet)
	fleet.Nodes[0].GPUs[1].MemoryTotalMiB = 0
	samples := telemetry.Samples{nodeURL: {At: t0, Metrics: parseText(t, exposition(healthyGPU(0, "GPU-aaaa"), healthyGPU(1, "GPU-bbbb")))}}
	got, _ := telemetry.Apply(fleet, samples, t0, staleAfter)
	if total := got.Nodes[0].GPUs[1].MemoryTotalMiB; total != 60000+21920 {
		t.Errorf("memory total %d, want used+free %d", total, 60000+21920)
	}
}

// TestApplyTreatsStaleOrMissingTelemetryAsUnknown: without a fresh usable
// sample no instance leaves service.
func TestApplyTreatsStaleOrMissingTelemetryAsUnknown(t *testing.T) {
	page := exposition(healthyGPU(0, "GPU-aaaa"), healthyGPU(1, "GPU-bbbb"))
	tests := []struct {
		name    string
		samples telemetry.Samples
		wantAge time.Duration
	}{
		{"never scraped", telemetry.Samples{}, 0},
		{"stale", telemetry.Samples{nodeURL: {At: t0, Metrics: parseText(t, page)}}, staleAfter + time.Second},
		{"fresh but no GPU metrics", telemetry.Samples{nodeURL: {At: t0.Add(staleAfter), Metrics: parseText(t, "up 1\n")}}, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, faults := telemetry.Apply(parseFleet(t, testFleet), tt.samples, t0.Add(staleAfter+time.Second), staleAfter)
			if len(faults) != 0 {
				t.Errorf("faults %+v from unusable telemetry", faults)
			}
			if s := serving(got); !slices.Equal(s, []string{"a", "b", "other", "tp"}) {
				t.Errorf("serving %v; instances must stay as in the file", s)
			}
			for _, g := range got.Nodes[0].GPUs {
				if g.Health != topology.HealthUnknown || g.UtilizationPct != 0 || g.LastXID != 0 {
					t.Errorf("GPU %d = %+v, want unknown health and the file's values", g.Index, g)
				}
			}
			if age := got.Nodes[0].TelemetryAge; age != tt.wantAge {
				t.Errorf("telemetry age %v, want %v", age, tt.wantAge)
			}
		})
	}
}

// TestApplyKeepsAFaultWhileTelemetryIsStale: the agent of a node whose GPU
// fell off the bus going quiet must not bring the GPU's instances back.
func TestApplyKeepsAFaultWhileTelemetryIsStale(t *testing.T) {
	faulty := healthyGPU(1, "GPU-bbbb")
	faulty.lastXID = 79
	samples := telemetry.Samples{nodeURL: {At: t0, Metrics: parseText(t, exposition(healthyGPU(0, "GPU-aaaa"), faulty))}}
	got, faults := telemetry.Apply(parseFleet(t, testFleet), samples, t0.Add(staleAfter+time.Second), staleAfter)
	want := []telemetry.Fault{{Node: "n1", GPU: 1, UUID: "GPU-bbbb", Reason: telemetry.ReasonXID, XID: 79, Instances: []string{"b", "tp"}}}
	if !reflect.DeepEqual(faults, want) {
		t.Errorf("faults = %+v, want %+v", faults, want)
	}
	if s := serving(got); !slices.Equal(s, []string{"a", "other"}) {
		t.Errorf("serving %v, want the drained instances kept out", s)
	}
	gpus := got.Nodes[0].GPUs
	if gpus[0].Health != topology.HealthUnknown || gpus[0].UtilizationPct != 0 {
		t.Errorf("healthy GPU with stale telemetry = %+v, want unknown without readings", gpus[0])
	}
	if gpus[1].Health != topology.HealthUnhealthy {
		t.Errorf("faulty GPU health %q, want unhealthy", gpus[1].Health)
	}
}

func TestApplyFillsInstanceLoadForItsModel(t *testing.T) {
	page := vllmPage(map[string]topology.Load{
		"llama": {Running: 3, QueueDepth: 5, KVCacheUsage: 0.75},
		"other": {Running: 9, QueueDepth: 9, KVCacheUsage: 0.9},
	})
	fresh := telemetry.Samples{modelURL: {At: t0, Metrics: parseText(t, page)}}
	got, _ := telemetry.Apply(parseFleet(t, testFleet), fresh, t0.Add(time.Second), staleAfter)
	if l := instance(t, got, "a").Load; l != (topology.Load{Running: 3, QueueDepth: 5, KVCacheUsage: 0.75}) {
		t.Errorf("a's load = %+v, want llama's", l)
	}
	if l := instance(t, got, "b").Load; l != (topology.Load{}) {
		t.Errorf("b has no metricsURL but got load %+v", l)
	}
	stale, _ := telemetry.Apply(parseFleet(t, testFleet), fresh, t0.Add(staleAfter+time.Second), staleAfter)
	if l := instance(t, stale, "a").Load; l != (topology.Load{}) {
		t.Errorf("stale load applied: %+v", l)
	}
}

// TestApplyReadsADCGMExporterPage: a page as dcgm-exporter 3.x serves it
// (more fields than used, its label set) parses and fills the GPUs.
func TestApplyReadsADCGMExporterPage(t *testing.T) {
	page, err := os.ReadFile("testdata/dcgm-exporter.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, faults := telemetry.Apply(parseFleet(t, testFleet), telemetry.Samples{nodeURL: {At: t0, Metrics: parseText(t, string(page))}}, t0, staleAfter)
	if len(faults) != 1 || faults[0].GPU != 1 || faults[0].XID != 79 {
		t.Fatalf("faults = %+v, want XID 79 on GPU 1 (as the page says)", faults)
	}
	if g := got.Nodes[0].GPUs[0]; g.UtilizationPct != 87 || g.MemoryUsedMiB != 71234 || g.Health != topology.HealthServing {
		t.Errorf("GPU 0 = %+v, want utilization 87, 71234 MiB used, serving", g)
	}
}

func TestTargetsAreTheFleetsURLs(t *testing.T) {
	fleet := parseFleet(t, testFleet)
	fleet.Instances[2].MetricsURL = modelURL                                              // two instances, one server
	if got := telemetry.Targets(fleet); !slices.Equal(got, []string{modelURL, nodeURL}) { // sorted
		t.Errorf("Targets = %v", got)
	}
}
