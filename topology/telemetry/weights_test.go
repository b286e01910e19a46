package telemetry_test

import (
	"testing"
	"time"

	"github.com/inferxds/inferxds/topology"
	"github.com/inferxds/inferxds/topology/telemetry"
	"github.com/inferxds/inferxds/topology/telemetry/weights"
)

func TestSignalsComeOnlyFromReportedValues(t *testing.T) {
	busy0, idle1 := healthyGPU(0, "GPU-aaaa"), healthyGPU(1, "GPU-bbbb")
	busy0.util, busy0.usedMiB = 90, 40960
	idle1.util, idle1.usedMiB = 10, 61440
	samples := telemetry.Samples{
		nodeURL:  {At: t0, Metrics: parseText(t, exposition(busy0, idle1))},
		modelURL: {At: t0, Metrics: parseText(t, vllmPage(map[string]topology.Load{"llama": {QueueDepth: 3, KVCacheUsage: 0.5}}))},
	}
	now := t0.Add(time.Second)
	applied, _ := telemetry.Apply(parseFleet(t, testFleet), samples, now, staleAfter)
	got := telemetry.Signals(applied, samples, now, staleAfter)

	m := weights.Measured
	want := map[string]weights.Signals{
		"a":  {UtilizationPct: m(90), MemoryHeadroom: m(0.5), QueueDepth: m(3), KVCacheUsage: m(0.5)},
		"tp": {UtilizationPct: m(90), MemoryHeadroom: m(0.25)}, // the busier GPU of each kind
	}
	if len(got) != len(want) || got["a"] != want["a"] || got["tp"] != want["tp"] {
		t.Errorf("Signals = %+v\nwant %+v (b's weight is pinned, other has no telemetry)", got, want)
	}

	xidOnly := telemetry.Samples{nodeURL: {At: t0, Metrics: parseText(t, "DCGM_FI_DEV_XID_ERRORS{gpu=\"0\",UUID=\"GPU-aaaa\"} 0\nDCGM_FI_DEV_XID_ERRORS{gpu=\"1\",UUID=\"GPU-bbbb\"} 0\n")}}
	applied, _ = telemetry.Apply(parseFleet(t, testFleet), xidOnly, now, staleAfter)
	if got := telemetry.Signals(applied, xidOnly, now, staleAfter); len(got) != 0 {
		t.Errorf("signals %+v from a page without load metrics", got)
	}
}
