package telemetry_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inferxds/inferxds/topology"
	"github.com/inferxds/inferxds/topology/telemetry"
)

const (
	nodeURL  = "http://10.0.0.1:9400/metrics"
	modelURL = "http://10.0.0.1:8000/metrics"
)

// testFleet: node n1 (telemetry at nodeURL) with GPUs 0 and 1; instance a
// on GPU 0 (load at modelURL), b on GPU 1, tp on both; n2 has no telemetry.
const testFleet = `zones: [{name: az-1, role: active}]
nodes:
  - name: n1
    zone: az-1
    telemetryURL: ` + nodeURL + `
    gpus:
      - {index: 0, uuid: GPU-aaaa, memoryTotalMiB: 81920}
      - {index: 1, uuid: GPU-bbbb, memoryTotalMiB: 81920}
  - name: n2
    zone: az-1
    gpus: [{index: 0, memoryTotalMiB: 81920}]
instances:
  - {name: a, model: llama, node: n1, gpus: [0], address: 127.0.0.1, port: 18001, metricsURL: "` + modelURL + `"}
  - {name: b, model: llama, node: n1, gpus: [1], address: 127.0.0.1, port: 18002, weight: 7}
  - {name: tp, model: big, node: n1, gpus: [0, 1], address: 127.0.0.1, port: 18003}
  - {name: other, model: llama, node: n2, gpus: [0], address: 127.0.0.1, port: 18004}
`

func parseFleet(t testing.TB, text string) *topology.Fleet {
	t.Helper()
	f, err := topology.ParseFleet("fleet.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// gpuPage is what an exporter says about one GPU.
type gpuPage struct {
	index     int
	uuid      string
	util      float64
	usedMiB   float64
	freeMiB   float64
	lastXID   int
	eccDBE    float64
	down      bool        // inferxds_gpu_up 0
	xidCounts map[int]int // inferxds_gpu_xid_errors_total by xid
}

func healthyGPU(index int, uuid string) gpuPage {
	return gpuPage{index: index, uuid: uuid, util: 40, usedMiB: 60000, freeMiB: 21920}
}

// exposition renders gpus as a gpu-agent serves them: dcgm-exporter names
// and labels plus the agent's inferxds_gpu_* series.
func exposition(gpus ...gpuPage) string {
	var b strings.Builder
	metric := func(name, kind string, value func(g gpuPage) float64) {
		fmt.Fprintf(&b, "# HELP %s test\n# TYPE %s %s\n", name, name, kind)
		for _, g := range gpus {
			fmt.Fprintf(&b, "%s{gpu=\"%d\",UUID=\"%s\",device=\"nvidia%d\",modelName=\"NVIDIA A100-SXM4-80GB\",Hostname=\"host-1\"} %v\n",
				name, g.index, g.uuid, g.index, value(g))
		}
	}
	metric("DCGM_FI_DEV_GPU_UTIL", "gauge", func(g gpuPage) float64 { return g.util })
	metric("DCGM_FI_DEV_FB_USED", "gauge", func(g gpuPage) float64 { return g.usedMiB })
	metric("DCGM_FI_DEV_FB_FREE", "gauge", func(g gpuPage) float64 { return g.freeMiB })
	metric("DCGM_FI_DEV_XID_ERRORS", "gauge", func(g gpuPage) float64 { return float64(g.lastXID) })
	metric("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter", func(g gpuPage) float64 { return g.eccDBE })
	metric("DCGM_FI_DEV_GPU_TEMP", "gauge", func(gpuPage) float64 { return 55 })
	fmt.Fprintf(&b, "# TYPE inferxds_gpu_up gauge\n")
	for _, g := range gpus {
		fmt.Fprintf(&b, "inferxds_gpu_up{gpu=\"%d\",UUID=\"%s\"} %d\n", g.index, g.uuid, map[bool]int{false: 1, true: 0}[g.down])
	}
	fmt.Fprintf(&b, "# TYPE inferxds_gpu_xid_errors_total counter\n")
	for _, g := range gpus {
		for _, xid := range slices.Sorted(maps.Keys(g.xidCounts)) {
			fmt.Fprintf(&b, "inferxds_gpu_xid_errors_total{gpu=\"%d\",UUID=\"%s\",xid=\"%d\"} %d\n", g.index, g.uuid, xid, g.xidCounts[xid])
		}
	}
	return b.String()
}

// vllmPage renders a model server's vLLM load gauges for each model.
func vllmPage(loads map[string]topology.Load) string {
	var b strings.Builder
	for _, name := range []string{"vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"} {
		fmt.Fprintf(&b, "# TYPE %s gauge\n", name)
		for _, model := range slices.Sorted(maps.Keys(loads)) {
			l := loads[model]
			v := map[string]float64{"vllm:num_requests_running": l.Running, "vllm:num_requests_waiting": l.QueueDepth, "vllm:kv_cache_usage_perc": l.KVCacheUsage}[name]
			fmt.Fprintf(&b, "%s{model_name=%q} %v\n", name, model, v)
		}
	}
	return b.String()
}

func parseText(t *testing.T, text string) telemetry.Metrics {
	t.Helper()
	m, err := telemetry.ParseText(strings.NewReader(text))
	if err != nil {
		t.Fatalf("ParseText: %v\n%s", err, text)
	}
	return m
}

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

const staleAfter = 15 * time.Second

func instance(t *testing.T, f *topology.Fleet, name string) topology.Instance {
	t.Helper()
	i := slices.IndexFunc(f.Instances, func(in topology.Instance) bool { return in.Name == name })
	if i < 0 {
		t.Fatalf("no instance %s", name)
	}
	return f.Instances[i]
}

// serving lists the names of f's instances that are endpoints.
func serving(f *topology.Fleet) []string {
	var names []string
	for _, in := range f.Instances {
		if in.Serving() {
			names = append(names, in.Name)
		}
	}
	return names
}
