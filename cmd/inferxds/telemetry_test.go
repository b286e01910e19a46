package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// gpuAgent is a node's GPU metrics endpoint on 127.0.0.1 serving four GPUs
// the way the gpu-agent (and dcgm-exporter) names them; lastXID is GPU 0's.
type gpuAgent struct {
	*httptest.Server
	lastXID atomic.Int64
}

func startGPUAgent(t *testing.T) *gpuAgent {
	a := &gpuAgent{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "# TYPE DCGM_FI_DEV_XID_ERRORS gauge")
		for gpu := range 4 {
			xid := int64(0)
			if gpu == 0 {
				xid = a.lastXID.Load()
			}
			fmt.Fprintf(w, "DCGM_FI_DEV_XID_ERRORS{gpu=\"%d\",UUID=\"GPU-%d\",device=\"nvidia%d\",modelName=\"NVIDIA A100-SXM4-80GB\",Hostname=\"gpu-az1-a\"} %d\n", gpu, gpu, gpu, xid)
		}
	}))
	t.Cleanup(a.Close)
	return a
}

// TestServeDrainsTheInstancesOfAGPUThatFellOffTheBus: once the fleet file
// names gpu-az1-a's telemetry, an XID 79 on its GPU 0 takes the instance on
// that GPU (llama-2-7b-az1-primary, port 18100) out of EDS and leaves the
// one on GPU 1 (mistral-7b-az1-primary, port 18110); a healthy page brings
// it back.
func TestServeDrainsTheInstancesOfAGPUThatFellOffTheBus(t *testing.T) {
	agent := startGPUAgent(t)
	agent.lastXID.Store(79)
	policyDir, fleetFile := copyExamples(t)
	s := startServe(t, "--policy-dir", policyDir, "--fleet", fleetFile, "--scrape-interval", "50ms")
	endpointsOf := func(want18100 bool) func() error {
		return func() error {
			out, err := s.dump(t, "az-1", true)
			if err != nil {
				return err
			}
			if has := strings.Contains(out, "portValue: 18100"); has != want18100 || !strings.Contains(out, "portValue: 18110") {
				return fmt.Errorf("endpoint 18100 present %v, want %v; 18110 must stay", has, want18100)
			}
			return nil
		}
	}
	waitFor(t, 30*time.Second, endpointsOf(true))

	editFile(t, fleetFile, "  - name: gpu-az1-a\n    zone: az-1\n", "  - name: gpu-az1-a\n    zone: az-1\n    telemetryURL: "+agent.URL+"/metrics\n")
	waitFor(t, 30*time.Second, endpointsOf(false))
	if !lineHas(s.logs.String(), "level=WARN", "node=gpu-az1-a", "gpu=0", "xid=79", "llama-2-7b-az1-primary") {
		t.Errorf("no WARN naming the node, GPU, XID and instance:\n%s", s.logs)
	}
	if m := s.get(t, "/metrics"); !strings.Contains(m, `inferxds_gpu_drains_total{reason="xid"} 1`) || !strings.Contains(m, `inferxds_telemetry_targets{state="up"} 1`) {
		t.Errorf("/metrics lacks the drain count or the target state:\n%s", m)
	}

	agent.lastXID.Store(0)
	waitFor(t, 30*time.Second, endpointsOf(true))

	agent.lastXID.Store(79)
	start := time.Now()
	waitFor(t, 30*time.Second, endpointsOf(false))
	t.Logf("XID 79 to endpoint out of EDS (scrape interval 50ms, debounce 100ms): %v", time.Since(start))
}
