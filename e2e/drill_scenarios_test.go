package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// drillTimeout is the hang guard on one `inferxds drill --scenario`: the
// local world's start, a 2 s warm-up, the recovery (a cold load of 3 s at
// most), a second of settling and the requests still out (15 s at most)
// take well under a minute on an idle machine.
const drillTimeout = 4 * time.Minute

// drillResult is what `inferxds drill --json` says of one scenario.
type drillResult struct {
	Scenario         string    `json:"scenario"`
	Failed           []string  `json:"failed"`
	FaultAt          time.Time `json:"faultAt"`
	DetectedAt       time.Time `json:"detectedAt"`
	SwitchedAt       time.Time `json:"switchedAt"`
	RestoredAt       time.Time `json:"restoredAt"`
	Requests         int       `json:"requests"`
	FailedRequests   int       `json:"failedRequests"`
	DetectionSeconds float64   `json:"detectionSeconds"`
	SwitchSeconds    float64   `json:"switchSeconds"`
	RTOSeconds       float64   `json:"rtoSeconds"`
	Markers          []struct {
		Kind string    `json:"kind"`
		At   time.Time `json:"at"`
	} `json:"markers"`
	Notes []string `json:"notes"`
}

// runDrill runs one drill scenario through a real Envoy and returns its
// measurement; the test fails unless the drill exits 0 (every stage
// reached) and leaves no process behind.
func runDrill(t *testing.T, scenario string) drillResult {
	t.Helper()
	requireEnvoy(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "drill.json")
	p := startProcess(t, "inferxds drill", binaries.inferxds, "drill", "--scenario", scenario,
		"--json", out, "--report", filepath.Join(dir, "drill.html"), "--dir", dir)
	awaitExit(t, p, drillTimeout)
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("inferxds drill --scenario %s exited %d:\n%s", scenario, code, p.output.String())
	}
	assertNoProcessUnder(t, dir)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Results []drillResult `json:"results"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || len(doc.Results) != 1 {
		t.Fatalf("drill JSON (%v):\n%s", err, data)
	}
	r := doc.Results[0]
	report(t, "drill %s failed-instances=%s detection=%.3fs switch=%.3fs rto=%.3fs failed-requests=%d of %d notes=%q",
		r.Scenario, strings.Join(r.Failed, ","), r.DetectionSeconds, r.SwitchSeconds, r.RTOSeconds, r.FailedRequests, r.Requests, r.Notes)
	assertStagesInOrder(t, r)
	return r
}

// assertStagesInOrder: the fault, then detection, the switch and the
// restore each happened, none before the fault, the restore last; the
// markers are in time order.
func assertStagesInOrder(t *testing.T, r drillResult) {
	t.Helper()
	for name, at := range map[string]time.Time{"detected": r.DetectedAt, "switched": r.SwitchedAt, "restored": r.RestoredAt} {
		if at.IsZero() {
			t.Errorf("%s: stage %s not reached", r.Scenario, name)
		} else if at.Before(r.FaultAt) {
			t.Errorf("%s: %s %v before the fault", r.Scenario, name, r.FaultAt.Sub(at))
		}
	}
	if r.RestoredAt.Before(r.DetectedAt) || r.RestoredAt.Before(r.SwitchedAt) {
		t.Errorf("%s: restored at %v, before detection (%v) or the switch (%v)", r.Scenario, r.RestoredAt, r.DetectedAt, r.SwitchedAt)
	}
	for i := 1; i < len(r.Markers); i++ {
		if r.Markers[i].At.Before(r.Markers[i-1].At) {
			t.Errorf("%s: marker %s before %s", r.Scenario, r.Markers[i].Kind, r.Markers[i-1].Kind)
		}
	}
	if len(r.Markers) == 0 || r.Markers[0].Kind != "fault" {
		t.Errorf("%s: the timeline does not start at the fault: %v", r.Scenario, r.Markers)
	}
}

// awaitExit waits for p to exit on its own.
func awaitExit(t *testing.T, p *process, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("%s still running after %v:\n%s", p.name, timeout, p.output.String())
	}
}

// assertNoProcessUnder fails if any process runs with dir in its command
// line: the model servers' ready files and Envoy's config live there.
func assertNoProcessUnder(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), dir) {
			t.Errorf("process %s outlived the command: %s", e.Name(), strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
}

// TestDrillProcessCrash: SIGKILL of the critical model's primary in the
// proxy's zone; Envoy retries on the other priorities, so no request
// fails, and the engine restores the standby counts.
func TestDrillProcessCrash(t *testing.T) {
	if r := runDrill(t, "process-crash"); r.FailedRequests != 0 {
		t.Errorf("%d of %d requests failed; a crash with a hot standby must fail none", r.FailedRequests, r.Requests)
	}
}

// TestDrillNodeDown: every process of the proxy's node (az-1) frozen: no
// exit, no answer, requests out to it hang; the probes find it.
func TestDrillNodeDown(t *testing.T) { runDrill(t, "node-down") }

// TestDrillGPUFailure: XID 79 on the critical primary's GPU, through the
// node's gpu-agent on go-nvml's mock; the instance stays up while it is
// drained, so no request fails.
func TestDrillGPUFailure(t *testing.T) {
	if r := runDrill(t, "gpu-failure"); r.FailedRequests != 0 {
		t.Errorf("%d of %d requests failed; the faulty GPU's model server stayed up, so none should", r.FailedRequests, r.Requests)
	}
}

// TestDrillAZOutage: every process of az-1, the proxy's own zone, killed.
func TestDrillAZOutage(t *testing.T) { runDrill(t, "az-outage") }

// TestDrillModelCorruption: the critical primary answers 200 but wrongly;
// the deep probe finds it and traffic moves off it.
func TestDrillModelCorruption(t *testing.T) { runDrill(t, "model-corruption") }
