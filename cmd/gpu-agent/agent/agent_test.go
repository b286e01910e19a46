package agent_test

import (
	"errors"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	dto "github.com/prometheus/client_model/go"

	"github.com/inferxds/inferxds/cmd/gpu-agent/agent"
	"github.com/inferxds/inferxds/cmd/gpu-agent/agent/nvmlmock"
)

// loadOf gives every GPU of a test a different load, so a value shown under
// the wrong GPU's labels is caught.
func loadOf(i int) nvmlmock.Load {
	return nvmlmock.Load{
		GPUUtilPct:      uint32(10 + i),
		MemoryUtilPct:   uint32(50 + i),
		MemoryUsedMiB:   uint64(1000 * (i + 1)),
		TemperatureC:    uint32(40 + i),
		PowerMilliwatts: uint32(100_500 + 1000*i),
	}
}

func TestMetricsHaveDCGMNamesLabelsAndValuesForEveryGPU(t *testing.T) {
	m := nvmlmock.NewDGXA100()
	for i := range m.NumGPUs() {
		m.SetLoad(i, loadOf(i))
	}
	_, url := startAgent(t, m)
	s := scrapeMetrics(t, url)

	const totalMiB = 40960 // an A100-SXM4-40GB
	for i := range m.NumGPUs() {
		l := loadOf(i)
		want := map[string]float64{
			"DCGM_FI_DEV_GPU_UTIL":          float64(l.GPUUtilPct),
			"DCGM_FI_DEV_MEM_COPY_UTIL":     float64(l.MemoryUtilPct),
			"DCGM_FI_DEV_FB_TOTAL":          totalMiB,
			"DCGM_FI_DEV_FB_USED":           float64(l.MemoryUsedMiB),
			"DCGM_FI_DEV_FB_FREE":           float64(totalMiB - l.MemoryUsedMiB),
			"DCGM_FI_DEV_GPU_TEMP":          float64(l.TemperatureC),
			"DCGM_FI_DEV_POWER_USAGE":       float64(l.PowerMilliwatts) / 1000,
			"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": 0,
			"DCGM_FI_DEV_ECC_SBE_VOL_TOTAL": 0,
			"DCGM_FI_DEV_ECC_DBE_AGG_TOTAL": 0,
			"DCGM_FI_DEV_ECC_SBE_AGG_TOTAL": 0,
			"DCGM_FI_DEV_XID_ERRORS":        0,
		}
		wantLabels := map[string]string{
			"gpu": strconv.Itoa(i), "UUID": m.UUID(i), "device": "nvidia" + strconv.Itoa(i),
			"modelName": m.ModelName(i), "Hostname": testHostname,
		}
		for name, wantValue := range want {
			found := s.series(name, map[string]string{"gpu": strconv.Itoa(i)})
			if len(found) != 1 {
				t.Fatalf("%s GPU %d: %d series, want 1", name, i, len(found))
			}
			if got := labelMap(found[0]); !maps.Equal(got, wantLabels) {
				t.Errorf("%s GPU %d labels = %v, want %v", name, i, got, wantLabels)
			}
			if got := value(found[0]); got != wantValue {
				t.Errorf("%s GPU %d = %v, want %v", name, i, got, wantValue)
			}
		}
		if up := s.mustGPUValue(t, "inferxds_gpu_up", i); up != 1 {
			t.Errorf("inferxds_gpu_up GPU %d = %v, want 1", i, up)
		}
	}
}

func TestMetricTypesMatchDCGMExporter(t *testing.T) {
	_, url := startAgent(t, nvmlmock.NewDGXA100())
	s := scrapeMetrics(t, url)
	want := map[string]dto.MetricType{
		"DCGM_FI_DEV_GPU_UTIL":          dto.MetricType_GAUGE,
		"DCGM_FI_DEV_FB_USED":           dto.MetricType_GAUGE,
		"DCGM_FI_DEV_XID_ERRORS":        dto.MetricType_GAUGE,
		"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": dto.MetricType_COUNTER,
		"DCGM_FI_DEV_ECC_SBE_VOL_TOTAL": dto.MetricType_COUNTER,
		"inferxds_gpu_up":               dto.MetricType_GAUGE,
	}
	for name, typ := range want {
		if got := s[name].GetType(); got != typ {
			t.Errorf("%s type = %v, want %v", name, got, typ)
		}
	}
}

func TestXID79ShowsAsLastXIDAndInTheCounter(t *testing.T) {
	m := nvmlmock.NewDGXA100()
	_, url := startAgent(t, m)
	if err := m.InjectXID(3, 79); err != nil {
		t.Fatal(err)
	}
	s := waitForGPUValue(t, url, "DCGM_FI_DEV_XID_ERRORS", 3, 79)
	if n := xidCount(s, m, 3, 79); n != 1 {
		t.Errorf("inferxds_gpu_xid_errors_total{gpu=3,xid=79} = %v, want 1", n)
	}
	if other := s.mustGPUValue(t, "DCGM_FI_DEV_XID_ERRORS", 4); other != 0 {
		t.Errorf("DCGM_FI_DEV_XID_ERRORS on GPU 4 = %v, want 0: the XID was on GPU 3", other)
	}
	if _, ok := s.gpuValue(t, "inferxds_gpu_xid_errors_total", 4); ok {
		t.Error("GPU 4 has an XID counter, but no XID was raised on it")
	}

	for _, xid := range []uint64{79, 48} {
		if err := m.InjectXID(3, xid); err != nil {
			t.Fatal(err)
		}
	}
	s = waitForGPUValue(t, url, "DCGM_FI_DEV_XID_ERRORS", 3, 48)
	if n := xidCount(s, m, 3, 79); n != 2 {
		t.Errorf("xid=79 count = %v, want 2", n)
	}
	if n := xidCount(s, m, 3, 48); n != 1 {
		t.Errorf("xid=48 count = %v, want 1", n)
	}
}

func xidCount(s scrape, m *nvmlmock.Machine, gpu int, xid int) float64 {
	found := s.series("inferxds_gpu_xid_errors_total", map[string]string{
		"gpu": strconv.Itoa(gpu), "UUID": m.UUID(gpu), "xid": strconv.Itoa(xid),
	})
	if len(found) != 1 {
		return -1
	}
	return value(found[0])
}

func TestUncorrectableECCErrorsShow(t *testing.T) {
	m := nvmlmock.NewDGXA100()
	_, url := startAgent(t, m)
	m.AddECCErrors(5, nvml.MEMORY_ERROR_TYPE_UNCORRECTED, 2)
	m.AddECCErrors(5, nvml.MEMORY_ERROR_TYPE_CORRECTED, 7)
	s := scrapeMetrics(t, url)
	want := map[string]float64{
		"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": 2, "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL": 2,
		"DCGM_FI_DEV_ECC_SBE_VOL_TOTAL": 7, "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL": 7,
	}
	for name, v := range want {
		if got := s.mustGPUValue(t, name, 5); got != v {
			t.Errorf("%s on GPU 5 = %v, want %v", name, got, v)
		}
		if got := s.mustGPUValue(t, name, 6); got != 0 {
			t.Errorf("%s on GPU 6 = %v, want 0: the errors were on GPU 5", name, got)
		}
	}
}

func TestLostGPUIsDownWithoutStaleValues(t *testing.T) {
	m := nvmlmock.NewDGXA100()
	m.SetLoad(2, loadOf(2))
	m.SetProcesses(2, nvml.ProcessInfo{Pid: uint32(os.Getpid()), UsedGpuMemory: 1 << 30})
	_, url := startAgent(t, m)
	if err := m.InjectXID(2, 79); err != nil {
		t.Fatal(err)
	}
	waitForGPUValue(t, url, "DCGM_FI_DEV_XID_ERRORS", 2, 79)

	m.RemoveGPU(2)
	s := scrapeMetrics(t, url)
	if up := s.mustGPUValue(t, "inferxds_gpu_up", 2); up != 0 {
		t.Errorf("inferxds_gpu_up on the lost GPU = %v, want 0", up)
	}
	for _, name := range append(dcgmReadings, "inferxds_gpu_process_memory_used_bytes") {
		if v, ok := s.gpuValue(t, name, 2); ok {
			t.Errorf("%s on the lost GPU = %v; a GPU that did not answer must not show a value", name, v)
		}
	}
	if last := s.mustGPUValue(t, "DCGM_FI_DEV_XID_ERRORS", 2); last != 79 {
		t.Errorf("DCGM_FI_DEV_XID_ERRORS on the lost GPU = %v, want the 79 seen before it was lost", last)
	}
	for i := range m.NumGPUs() {
		if i != 2 && s.mustGPUValue(t, "inferxds_gpu_up", i) != 1 {
			t.Errorf("GPU %d is down, but only GPU 2 was lost", i)
		}
	}
	if code := getStatus(t, url+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d with one GPU lost, want 200: NVML still answers", code)
	}
}

func TestHealthzFollowsNVML(t *testing.T) {
	m := nvmlmock.NewDGXA100()
	_, url := startAgent(t, m)
	if code := getStatus(t, url+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d, want 200", code)
	}
	m.SetDriverError(nvml.ERROR_UNKNOWN)
	if code := getStatus(t, url+"/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz with NVML failing = %d, want 503", code)
	}
	s := scrapeMetrics(t, url)
	for i := range m.NumGPUs() {
		if up := s.mustGPUValue(t, "inferxds_gpu_up", i); up != 0 {
			t.Errorf("inferxds_gpu_up GPU %d = %v with NVML failing, want 0", i, up)
		}
	}
	m.SetDriverError(nvml.SUCCESS)
	if code := getStatus(t, url+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz after NVML recovered = %d, want 200", code)
	}
}

func TestProcessesShowTheirMemoryAndName(t *testing.T) {
	m := nvmlmock.NewDGXA100()
	self := uint32(os.Getpid())
	gone := unusedPID(t)
	m.SetProcesses(1,
		// A process on two MIG instances of one GPU is listed twice.
		nvml.ProcessInfo{Pid: self, UsedGpuMemory: 2 << 30, GpuInstanceId: 1},
		nvml.ProcessInfo{Pid: self, UsedGpuMemory: 1 << 30, GpuInstanceId: 2},
		nvml.ProcessInfo{Pid: gone, UsedGpuMemory: 1 << 20},
		nvml.ProcessInfo{Pid: self + 1, UsedGpuMemory: ^uint64(0)}, // NVML_VALUE_NOT_AVAILABLE
	)
	_, url := startAgent(t, m)
	s := scrapeMetrics(t, url)

	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		process string
		bytes   float64
	}{
		strconv.Itoa(int(self)): {strings.TrimSpace(string(comm)), 3 << 30},
		strconv.Itoa(int(gone)): {"", 1 << 20},
	}
	found := s.series("inferxds_gpu_process_memory_used_bytes", map[string]string{"gpu": "1", "UUID": m.UUID(1)})
	if len(found) != len(want) {
		t.Fatalf("%d process series on GPU 1, want %d (one per PID, none without a memory figure)", len(found), len(want))
	}
	for _, p := range found {
		labels := labelMap(p)
		w, ok := want[labels["pid"]]
		if !ok || labels["process"] != w.process || value(p) != w.bytes {
			t.Errorf("process series %v = %v, want one of %v", labels, value(p), want)
		}
	}
}

// unusedPID is a PID no process can have: pid_max itself.
func unusedPID(t *testing.T) uint32 {
	t.Helper()
	data, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	pidMax, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(pidMax)
}

func TestCloseStopsWatchingAndShutsNVMLDown(t *testing.T) {
	m := nvmlmock.NewDGXA100()
	a, err := agent.Start(t.Context(), agent.Config{NVML: m.NVML()})
	if err != nil {
		t.Fatal(err)
	}
	if m.OpenEventSets() != 1 || !m.Initialized() {
		t.Fatalf("after Start: %d event sets, initialized %v; want 1, true", m.OpenEventSets(), m.Initialized())
	}
	if err := a.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if m.OpenEventSets() != 0 || m.Initialized() {
		t.Errorf("after Close: %d event sets, initialized %v; want 0, false", m.OpenEventSets(), m.Initialized())
	}
	if err := m.InjectXID(0, 79); err == nil {
		t.Error("an XID could still be delivered after Close")
	}
	if err := a.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

func TestStartWithoutTheNVMLLibraryIsUnavailable(t *testing.T) {
	missing := nvml.New(nvml.WithLibraryPath(filepath.Join(t.TempDir(), "libnvidia-ml.so.1")))
	_, err := agent.Start(t.Context(), agent.Config{NVML: missing})
	if !errors.Is(err, agent.ErrNVMLUnavailable) {
		t.Fatalf("Start = %v, want ErrNVMLUnavailable", err)
	}
}

func TestStartFailsAndShutsDownWhenNVMLCannotCountGPUs(t *testing.T) {
	m := nvmlmock.NewDGXA100()
	m.SetDriverError(nvml.ERROR_UNKNOWN)
	_, err := agent.Start(t.Context(), agent.Config{NVML: m.NVML()})
	if err == nil || !strings.Contains(err.Error(), "device count") {
		t.Fatalf("Start = %v, want a device count error", err)
	}
	if m.Initialized() {
		t.Error("NVML was left initialised after a failed Start")
	}
}
