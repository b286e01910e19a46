package telemetry

import (
	"slices"
	"time"

	"github.com/inferxds/inferxds/topology"
	"github.com/inferxds/inferxds/topology/telemetry/weights"
)

// Signals returns what a weights.Weigher reads for each instance whose
// weight telemetry drives: serving instances the fleet file leaves
// unweighted (a file weight is pinned) for which a fresh sample reports a
// load signal — GPU utilization or memory from the node, queue or KV cache
// from the model server. applied is Apply's result for the same samples,
// now and staleAfter. An instance on several GPUs reports the busiest: the
// highest utilization, the least memory headroom.
func Signals(applied *topology.Fleet, samples Samples, now time.Time, staleAfter time.Duration) map[string]weights.Signals {
	out := map[string]weights.Signals{}
	readings := freshReadings(applied, samples, now, staleAfter)
	for _, in := range applied.Instances {
		if !in.Serving() || in.Weight != 0 {
			continue
		}
		var s weights.Signals
		known := gpuSignals(&s, applied, in, readings[in.Node])
		if sample, ok := fresh(samples, in.MetricsURL, now, staleAfter); ok {
			if load, reported := modelLoad(sample.Metrics, in.Model); reported {
				s.QueueDepth, s.KVCacheUsage = weights.Measured(load.QueueDepth), weights.Measured(load.KVCacheUsage)
				known = true
			}
		}
		if known {
			out[in.Name] = s
		}
	}
	return out
}

// freshReadings parses each node's fresh telemetry page once, however many
// instances share the node; nodes without one are absent.
func freshReadings(f *topology.Fleet, samples Samples, now time.Time, staleAfter time.Duration) map[string]map[int]*gpuReading {
	out := map[string]map[int]*gpuReading{}
	for _, n := range f.Nodes {
		if sample, ok := fresh(samples, n.TelemetryURL, now, staleAfter); ok {
			out[n.Name] = gpuReadings(sample.Metrics)
		}
	}
	return out
}

// gpuSignals sets what the node's readings report for in's GPUs and says
// whether there was anything.
func gpuSignals(s *weights.Signals, applied *topology.Fleet, in topology.Instance, readings map[int]*gpuReading) bool {
	node, ok := applied.Node(in.Node)
	if !ok || readings == nil {
		return false
	}
	known := false
	for _, g := range node.GPUs {
		r := match(readings, g)
		if r == nil || !slices.Contains(in.GPUs, g.Index) {
			continue
		}
		if util, ok := r.values[metricGPUUtil]; ok {
			s.UtilizationPct = weights.Measured(max(s.UtilizationPct.Value, util))
			known = true
		}
		if used, ok := r.values[metricFBUsed]; ok && g.MemoryTotalMiB > 0 {
			headroom := 1 - used/float64(g.MemoryTotalMiB)
			if !s.MemoryHeadroom.Known || headroom < s.MemoryHeadroom.Value {
				s.MemoryHeadroom = weights.Measured(headroom)
			}
			known = true
		}
	}
	return known
}
