package telemetry

import (
	"slices"

	"github.com/inferxds/inferxds/topology"
)

// vLLM's metric names, as modelsim also serves them; each series carries
// the model_name label. Older vLLM releases call the KV-cache gauge
// gpu_cache_usage_perc.
const (
	metricRunning    = "vllm:num_requests_running"
	metricWaiting    = "vllm:num_requests_waiting"
	metricKVCache    = "vllm:kv_cache_usage_perc"
	metricKVCacheOld = "vllm:gpu_cache_usage_perc"
	labelModelName   = "model_name"
)

// modelLoad reads one model's load from a model server's metrics: requests
// running and waiting summed over the server's series for the model, the
// fullest KV cache. ok is false when the server reports nothing for it.
func modelLoad(m Metrics, model string) (load topology.Load, ok bool) {
	var found [3]bool
	load.Running, found[0] = reduce(m[metricRunning], model, sum)
	load.QueueDepth, found[1] = reduce(m[metricWaiting], model, sum)
	load.KVCacheUsage, found[2] = reduce(slices.Concat(m[metricKVCache], m[metricKVCacheOld]), model, larger)
	return load, found[0] || found[1] || found[2]
}

func sum(a, b float64) float64    { return a + b }
func larger(a, b float64) float64 { return max(a, b) }

// reduce folds the values of model's series; ok is false when there are none.
func reduce(series []Series, model string, fold func(a, b float64) float64) (v float64, ok bool) {
	for _, s := range series {
		if s.Labels[labelModelName] != model {
			continue
		}
		if !ok {
			v, ok = s.Value, true
			continue
		}
		v = fold(v, s.Value)
	}
	return v, ok
}
