package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/inferxds/inferxds/drpolicy/dr"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// answer is a request sent 50 ms before instance's good answer at ms.
func answer(ms int, instance string) outcome {
	return outcome{Sent: at(ms - 50), At: at(ms), Instance: instance}
}

// failure is a request sent at sent that failed at ms, with no answer.
func failure(sent, ms int) outcome { return outcome{Sent: at(sent), At: at(ms), Failed: true} }

// crashTally is a model served by a and b; a crashes at 1000 ms, one
// request (sent at 980 ms) fails, b takes everything from 1100 ms.
func crashTally() *tally {
	t := newTally()
	for _, o := range []outcome{
		answer(100, "a"), answer(200, "b"), answer(900, "a"), answer(950, "b"),
		failure(980, 1050), answer(1100, "b"), answer(1200, "b"),
	} {
		t.record("m", o)
	}
	t.record("other", answer(500, "x"))
	return t
}

func TestTallyWindowCountsAnswersAndFailures(t *testing.T) {
	got := crashTally().window("m", at(900), at(1200))
	want := windowCounts{Answers: map[string]int{"a": 1, "b": 2}, Failed: 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("window (-want +got):\n%s", diff)
	}
	if got.Total() != 4 {
		t.Errorf("total = %d, want 4", got.Total())
	}
}

func TestTallySwitchedAtIsFirstOtherAnswerAfterTheLastOfTheFailed(t *testing.T) {
	tl := crashTally()
	if got := tl.switchedAt("m", map[string]bool{"a": true}, at(1000)); !got.Equal(at(1100)) {
		t.Errorf("crash at 1000 ms: switched at %v, want 1100 ms", got.Sub(t0))
	}
	// A failed instance that kept answering after the fault (a corrupted
	// model) is switched away from only after its last answer.
	if got := tl.switchedAt("m", map[string]bool{"a": true}, at(800)); !got.Equal(at(950)) {
		t.Errorf("fault at 800 ms, last answer of a at 900 ms: switched at %v, want 950 ms", got.Sub(t0))
	}
	if got := tl.switchedAt("m", map[string]bool{"a": true, "b": true}, at(1000)); !got.IsZero() {
		t.Errorf("no other instance answered: switched at %v, want never", got.Sub(t0))
	}
}

func TestTallySwitchedAtWaitsForTheLastWrongAnswer(t *testing.T) {
	tl := crashTally()
	wrong := answer(1150, "a")
	wrong.Failed = true
	tl.record("m", wrong)
	if got := tl.switchedAt("m", map[string]bool{"a": true}, at(1000)); !got.Equal(at(1200)) {
		t.Errorf("a answered wrongly at 1150 ms: switched at %v, want 1200 ms", got.Sub(t0))
	}
}

func TestTallyFailedSplitBySendTime(t *testing.T) {
	tl := crashTally()
	tl.record("m", failure(1150, 1300))
	tl.record("m", failure(1150, 5000)) // came back after the window
	before, after := tl.failedSplit("m", t0, at(4000), at(1100))
	if before != 1 || after != 1 {
		t.Errorf("split at 1100 ms: %d sent before, %d after; want 1 (sent at 980 ms) and 1 (at 1150 ms)", before, after)
	}
	if before, after := tl.failedSplit("m", t0, at(4000), at(980)); before != 0 || after != 2 {
		t.Errorf("split at 980 ms: %d before, %d after; want 0 and 2 (sent at the switch counts after)", before, after)
	}
}

func TestTallySeriesBucketsByInstance(t *testing.T) {
	got := crashTally().series("m", t0, at(1299), 500*time.Millisecond)
	want := series{Bucket: 500 * time.Millisecond,
		Instances: map[string][]int{"a": {1, 1, 0}, "b": {1, 1, 2}}, Failed: []int{0, 0, 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
}

func crashResult() drillResult {
	lag := 1500 * time.Millisecond
	return drillResult{
		Scenario: "process-crash", Failure: dr.FailureProcessCrash, Failed: []string{"a"}, Models: []string{"m"},
		FaultAt: at(1000), DetectedAt: at(1010), SwitchedAt: at(1100), RestoredAt: at(3500),
		Requests: 7, FailedRequests: 1, RPOLag: &lag, Bound: seedBounds[dr.FailureProcessCrash],
		Markers: []marker{{markFault, at(1000), ""}, {markDetected, at(1010), ""}, {markSwitched, at(1100), "b"}, {markRestored, at(3500), ""}},
		Start:   t0, End: at(4000),
		Timeline: map[string]series{"m": crashTally().series("m", t0, at(4000), 100*time.Millisecond)},
	}
}

func TestWriteTableShowsMeasurementsBesideTheSeedBounds(t *testing.T) {
	notReached := drillResult{Scenario: "az-outage", Failure: dr.FailureAZOutage, FaultAt: at(0), DetectedAt: at(2000),
		Requests: 10, Bound: seedBounds[dr.FailureAZOutage], Notes: []string{"restored: not within 1m0s"}}
	var out bytes.Buffer
	if err := writeTable(&out, []drillResult{crashResult(), notReached}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`process-crash +10ms \(<1s\) +100ms \(<5s\) +2.5s \(<6s\) +1 of 7 +RPO lag 1.5s \(in-flight requests\) +≤1s, 0 failed`,
		`az-outage +2s \(<30s\) +not reached \(<1m0s\) +not reached \(<1m30s\) +0 of 10 +no checkpoint \(none \(cross-AZ sync\)\) +≤5s`,
		`az-outage: restored: not within 1m0s`,
	} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("table lacks a line matching %q:\n%s", want, out.String())
		}
	}
}

func TestStagesInOrder(t *testing.T) {
	r := crashResult()
	if err := r.stagesInOrder(); err != nil {
		t.Errorf("crash result: %v", err)
	}
	r.RestoredAt = time.Time{}
	if err := r.stagesInOrder(); err == nil || !strings.Contains(err.Error(), "restored not reached") {
		t.Errorf("without restore: %v, want restored not reached", err)
	}
	r = crashResult()
	r.DetectedAt = at(900)
	if err := r.stagesInOrder(); err == nil || !strings.Contains(err.Error(), "before the fault") {
		t.Errorf("detected before the fault: %v", err)
	}
}

func TestWriteJSONFileHasSecondsAndTimes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "drill.json")
	if err := writeJSONFile(path, []drillResult{crashResult()}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Results []struct {
			Scenario         string    `json:"scenario"`
			FaultAt          time.Time `json:"faultAt"`
			DetectionSeconds float64   `json:"detectionSeconds"`
			SwitchSeconds    float64   `json:"switchSeconds"`
			RTOSeconds       float64   `json:"rtoSeconds"`
			RPOLagSeconds    float64   `json:"rpoLagSeconds"`
			FailedRequests   int       `json:"failedRequests"`
			Seed             struct {
				RTO int64 `json:"rto"`
			} `json:"seed"`
		} `json:"results"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	r := got.Results[0]
	if r.Scenario != "process-crash" || !r.FaultAt.Equal(at(1000)) || r.DetectionSeconds != 0.01 ||
		r.SwitchSeconds != 0.1 || r.RTOSeconds != 2.5 || r.RPOLagSeconds != 1.5 || r.FailedRequests != 1 ||
		time.Duration(r.Seed.RTO) != 6*time.Second {
		t.Errorf("decoded %+v from\n%s", r, data)
	}
}
