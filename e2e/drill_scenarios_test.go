package e2e

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
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
	Models           []string  `json:"models"`
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
	Notes   []string               `json:"notes"`
	ByModel map[string]modelCounts `json:"byModel"`
}

// modelCounts is what `inferxds drill --json` says of one model's
// requests.
type modelCounts struct {
	Requests               int       `json:"requests"`
	Failed                 int       `json:"failed"`
	SwitchedAt             time.Time `json:"switchedAt"`
	FailedSentBeforeSwitch int       `json:"failedSentBeforeSwitch"`
	FailedSentAfterSwitch  int       `json:"failedSentAfterSwitch"`
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
	for _, model := range slices.Sorted(maps.Keys(r.ByModel)) {
		c := r.ByModel[model]
		report(t, "drill %s %s: failed %d of %d (sent before the switch %d, after %d)",
			r.Scenario, model, c.Failed, c.Requests, c.FailedSentBeforeSwitch, c.FailedSentAfterSwitch)
	}
	assertStagesInOrder(t, r)
	return r
}

// assertNoFailureAfterSwitch: every model that lost an instance switched,
// and none failed a request sent after its switch; the requests that fail
// were in flight to a failed instance or sent before traffic left it.
func assertNoFailureAfterSwitch(t *testing.T, r drillResult) {
	t.Helper()
	for _, model := range r.Models {
		c, ok := r.ByModel[model]
		switch {
		case !ok || c.Requests == 0:
			t.Errorf("%s: no request of %s counted", r.Scenario, model)
		case c.SwitchedAt.IsZero():
			t.Errorf("%s: %s never switched off the failed instances", r.Scenario, model)
		case c.FailedSentAfterSwitch != 0:
			t.Errorf("%s: %s failed %d requests sent after its switch at %v", r.Scenario, model,
				c.FailedSentAfterSwitch, c.SwitchedAt.Sub(r.FaultAt))
		}
	}
}

// assertNoFailure: models failed no request.
func assertNoFailure(t *testing.T, r drillResult, models ...string) {
	t.Helper()
	for _, model := range models {
		c, ok := r.ByModel[model]
		if !ok || c.Requests == 0 {
			t.Errorf("%s: no request of %s counted", r.Scenario, model)
		} else if c.Failed != 0 {
			t.Errorf("%s: %s failed %d of %d requests, want none", r.Scenario, model, c.Failed, c.Requests)
		}
	}
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
// exit, no answer, requests out to it hang; the probes find it. Requests
// in flight to it may fail (mistral-7b's rto is the drill client's
// timeout, so Envoy sets no per-try timeout; gpt-4-8b has no hot
// standby), none sent after the switch does. llama-2-7b's per-try
// timeout (its rto, 10 s) is under the client's 15 s and Envoy retries on
// another host, so it fails none.
func TestDrillNodeDown(t *testing.T) {
	r := runDrill(t, "node-down")
	assertNoFailureAfterSwitch(t, r)
	assertNoFailure(t, r, "llama-2-7b")
}

// TestDrillGPUFailure: XID 79 on the critical primary's GPU, through the
// node's gpu-agent on go-nvml's mock; the instance stays up while it is
// drained, so no request fails.
func TestDrillGPUFailure(t *testing.T) {
	if r := runDrill(t, "gpu-failure"); r.FailedRequests != 0 {
		t.Errorf("%d of %d requests failed; the faulty GPU's model server stayed up, so none should", r.FailedRequests, r.Requests)
	}
}

// TestDrillAZOutage: every process of az-1, the proxy's own zone, killed.
// llama-2-7b and mistral-7b have hot standbys outside it, where Envoy
// retries, so they fail nothing; gpt-4-8b has no hot standby, and fails
// only requests sent before its warm one served.
func TestDrillAZOutage(t *testing.T) {
	r := runDrill(t, "az-outage")
	assertNoFailureAfterSwitch(t, r)
	assertNoFailure(t, r, "llama-2-7b", "mistral-7b")
}

// TestDrillModelCorruption: the critical primary answers 200 but wrongly;
// the deep probe finds it and traffic moves off it. Only the corrupted
// model's requests sent before the switch get a wrong answer.
func TestDrillModelCorruption(t *testing.T) {
	r := runDrill(t, "model-corruption")
	assertNoFailureAfterSwitch(t, r)
	for model := range r.ByModel {
		if !slices.Contains(r.Models, model) {
			assertNoFailure(t, r, model)
		}
	}
	if len(r.Models) != 1 || len(r.ByModel) < 2 {
		t.Errorf("corrupted models %v, models counted %d; want one corrupted of several", r.Models, len(r.ByModel))
	}
}
