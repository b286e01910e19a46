package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/topology"
)

// crashRun is crashTally's crash of a at 1000 ms as the engine recorded
// it: detected at 1010 ms, drained at 1020 ms, standby b's replacement
// ready at 2000 ms and the counts restored at 3500 ms.
func crashRun(restored bool) drillRun {
	inc := dr.Incident{ID: "m/a/1", Model: "m", Instance: "a", Failure: dr.FailureProcessCrash, Replacement: "c",
		FaultAt: at(1000), DetectedAt: at(1010), DrainedAt: at(1020), PromotedReadyAt: at(2000)}
	if restored {
		inc.RestoredAt = at(3500)
	}
	state := &dr.State{
		Instances: []dr.InstanceState{
			{Name: "a", Model: "m", Checkpoint: &dr.Checkpoint{ID: "new", Time: at(60_000)}},
			{Name: "c", Model: "m", Checkpoint: &dr.Checkpoint{ID: "old", Time: at(0)}},
		},
		Incidents: []dr.Incident{inc, {ID: "other", Model: "other", Instance: "x", DetectedAt: at(50)}},
	}
	return drillRun{
		Scenario: "process-crash", Failure: dr.FailureProcessCrash,
		Failed: []topology.Instance{{Name: "a", Model: "m", Tier: topology.TierHot}},
		Start:  t0, FaultAt: at(1000), End: at(4000), Tally: crashTally(), State: state,
	}
}

func TestDrillRunResultReadsStagesOffTheIncidentAndTraffic(t *testing.T) {
	r := crashRun(true).result()
	if !r.DetectedAt.Equal(at(1010)) || !r.SwitchedAt.Equal(at(1100)) || !r.RestoredAt.Equal(at(3500)) {
		t.Errorf("detected %v switched %v restored %v; want 1010, 1100, 3500 ms after t0",
			r.DetectedAt.Sub(t0), r.SwitchedAt.Sub(t0), r.RestoredAt.Sub(t0))
	}
	if r.Requests != 7 || r.FailedRequests != 1 {
		t.Errorf("requests %d failed %d, want 7 and 1 (model m only)", r.Requests, r.FailedRequests)
	}
	wantCounts := map[string]modelCounts{
		"m":     {Requests: 7, Failed: 1, SwitchedAt: at(1100), FailedSentBeforeSwitch: 1},
		"other": {Requests: 1},
	}
	if diff := cmp.Diff(wantCounts, r.ByModel); diff != "" {
		t.Errorf("by model (-want +got):\n%s", diff)
	}
	if r.RPOLag == nil || *r.RPOLag != time.Minute {
		t.Errorf("RPO lag %v, want 1m (the replacement's checkpoint is a minute older)", r.RPOLag)
	}
	var kinds []string
	for _, m := range r.Markers {
		kinds = append(kinds, m.Kind)
	}
	want := []string{markFault, markDetected, markDrained, markSwitched, markPromoted, markRestored}
	if !slices.Equal(kinds, want) {
		t.Errorf("markers %v, want %v in time order", kinds, want)
	}
	if r.Markers[1].Label != "process-crash" || r.Markers[4].Label != "c" {
		t.Errorf("detected says %q, promoted %q; want the failure type and the replacement", r.Markers[1].Label, r.Markers[4].Label)
	}
	if len(r.Incidents) != 1 || r.Incidents[0].ID != "m/a/1" {
		t.Errorf("incidents %v, want only the crash's", r.Incidents)
	}
	if err := r.stagesInOrder(); err != nil {
		t.Error(err)
	}
}

func TestDrillRunNotRestoredSaysSo(t *testing.T) {
	run := crashRun(false)
	if run.recovered() {
		t.Error("recovered with the incident open")
	}
	r := run.result()
	if !r.RestoredAt.IsZero() || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "not restored") {
		t.Errorf("restored %v notes %q", r.RestoredAt, r.Notes)
	}
}

func TestDrillRunWithoutIncidentIsNotRecovered(t *testing.T) {
	run := crashRun(true)
	run.State = &dr.State{}
	if run.recovered() {
		t.Error("recovered without an incident")
	}
	if r := run.result(); !r.DetectedAt.IsZero() || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "no incident for a (hot)") {
		t.Errorf("detected %v notes %q", r.DetectedAt, r.Notes)
	}
}

func TestDrillRunWarmStandbyWithoutIncidentIsNoted(t *testing.T) {
	run := crashRun(true)
	run.Failed = append(run.Failed, topology.Instance{Name: "w", Model: "m", Tier: topology.TierWarm})
	if !run.recovered() {
		t.Error("not recovered: a warm standby's loss the engine did not record holds the restore")
	}
	if r := run.result(); len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "no incident for w (warm)") {
		t.Errorf("notes %q", r.Notes)
	}
}
