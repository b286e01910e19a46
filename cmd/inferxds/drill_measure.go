package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/topology"
)

// timelineBucket is the width of one bar of the report's timeline.
const timelineBucket = 100 * time.Millisecond

// drillRun is what one scenario's run saw: the instances its fault took
// down, when, the traffic's outcomes and the DR engine's incidents.
type drillRun struct {
	Scenario string
	Failure  dr.FailureType
	Failed   []topology.Instance
	// Fault says how the fault was injected.
	Fault string
	// Start is when the traffic started; FaultAt when the fault was
	// injected; End when the run stopped.
	Start, FaultAt, End time.Time
	Tally               *tally
	State               *dr.State
}

// failedNames is the set of instances the fault took down.
func (r drillRun) failedNames() map[string]bool {
	set := map[string]bool{}
	for _, in := range r.Failed {
		set[in.Name] = true
	}
	return set
}

// models are the models that lost an instance, sorted.
func (r drillRun) models() []string {
	var out []string
	for _, in := range r.Failed {
		out = append(out, in.Model)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// incidents are the engine's incidents about the failed instances.
func (r drillRun) incidents() []dr.Incident {
	failed := r.failedNames()
	var out []dr.Incident
	for _, inc := range r.State.Incidents {
		if failed[inc.Instance] {
			out = append(out, inc)
		}
	}
	return out
}

// recovered reports whether every failed hot instance has an incident
// and every incident about a failed instance is restored. A warm standby
// serves no traffic: the engine may notice its loss late, or only when it
// needs it.
func (r drillRun) recovered() bool {
	seen := map[string]bool{}
	for _, inc := range r.incidents() {
		if inc.Open() {
			return false
		}
		seen[inc.Instance] = true
	}
	for _, in := range r.Failed {
		if in.Tier == topology.TierHot && !seen[in.Name] {
			return false
		}
	}
	return true
}

// unrecorded are the failed instances the engine has no incident about.
func (r drillRun) unrecorded() []string {
	seen := map[string]bool{}
	for _, inc := range r.incidents() {
		seen[inc.Instance] = true
	}
	var out []string
	for _, in := range r.Failed {
		if !seen[in.Name] {
			out = append(out, fmt.Sprintf("%s (%s)", in.Name, in.Tier))
		}
	}
	return out
}

// result measures the run: every stage's time is the latest over the
// failed instances (the fault is recovered from when the last of them
// is), the switch the latest over the models.
func (r drillRun) result() drillResult {
	res := drillResult{
		Scenario: r.Scenario, Failure: r.Failure, Models: r.models(), FaultAt: r.FaultAt,
		Bound: seedBounds[r.Failure], Start: r.Start, End: r.End, Incidents: r.incidents(),
		Timeline: map[string]series{},
	}
	for _, in := range r.Failed {
		res.Failed = append(res.Failed, in.Name)
	}
	res.Markers = []marker{{Kind: markFault, At: r.FaultAt, Label: r.Fault}}
	r.stages(&res)
	r.traffic(&res)
	res.RPOLag = r.rpoLag()
	slices.SortStableFunc(res.Markers, func(a, b marker) int { return a.At.Compare(b.At) })
	return res
}

// stages reads detection, drain, promotion and restore off the incidents.
func (r drillRun) stages(res *drillResult) {
	// stage marks the latest time of a stage every incident reached,
	// labelled with what the incidents say of it.
	stage := func(kind string, at func(dr.Incident) time.Time, label func(dr.Incident) string) time.Time {
		var latest time.Time
		var labels []string
		for _, inc := range res.Incidents {
			t := at(inc)
			if t.IsZero() {
				return time.Time{} // not every failed instance reached it
			}
			latest = later(latest, t)
			if l := label(inc); l != "" && !slices.Contains(labels, l) {
				labels = append(labels, l)
			}
		}
		if !latest.IsZero() {
			res.Markers = append(res.Markers, marker{Kind: kind, At: latest, Label: strings.Join(labels, ", ")})
		}
		return latest
	}
	none := func(dr.Incident) string { return "" }
	res.DetectedAt = stage(markDetected, func(i dr.Incident) time.Time { return i.DetectedAt }, func(i dr.Incident) string { return string(i.Failure) })
	stage(markDrained, func(i dr.Incident) time.Time { return i.DrainedAt }, none)
	stage(markPromoted, func(i dr.Incident) time.Time { return i.PromotedReadyAt }, func(i dr.Incident) string { return i.Replacement })
	if r.recovered() {
		res.RestoredAt = stage(markRestored, func(i dr.Incident) time.Time { return i.RestoredAt }, none)
	}
	if missing := r.unrecorded(); len(missing) > 0 {
		res.Notes = append(res.Notes, "the DR engine recorded no incident for "+strings.Join(missing, ", "))
	}
	if len(res.Incidents) > 0 && res.RestoredAt.IsZero() {
		res.Notes = append(res.Notes, "policy counts not restored by the end of the run")
	}
}

// traffic counts the requests from the start, per model and in all for
// the models that lost an instance, and finds each model's switch.
func (r drillRun) traffic(res *drillResult) {
	gone := r.failedNames()
	res.ByModel = map[string]modelCounts{}
	for _, model := range r.Tally.modelNames() {
		res.ByModel[model] = r.modelCounts(model, gone, slices.Contains(res.Models, model))
	}
	allSwitched := true
	for _, model := range res.Models {
		c := res.ByModel[model]
		res.Requests += c.Requests
		res.FailedRequests += c.Failed
		res.Timeline[model] = r.Tally.series(model, r.Start, r.End, timelineBucket)
		if c.SwitchedAt.IsZero() {
			res.Notes = append(res.Notes, model+": no other instance answered after the fault")
			allSwitched = false
		}
		res.SwitchedAt = later(res.SwitchedAt, c.SwitchedAt)
	}
	if !allSwitched {
		res.SwitchedAt = time.Time{}
	}
	if !res.SwitchedAt.IsZero() {
		res.Markers = append(res.Markers, marker{Kind: markSwitched, At: res.SwitchedAt})
	}
}

// modelCounts counts model's requests from the start and, when it lost an
// instance, splits its failures at its switch off the instances in gone.
func (r drillRun) modelCounts(model string, gone map[string]bool, lost bool) modelCounts {
	w := r.Tally.window(model, r.Start, r.End)
	c := modelCounts{Requests: w.Total(), Failed: w.Failed}
	if !lost {
		return c
	}
	if c.SwitchedAt = r.Tally.switchedAt(model, gone, r.FaultAt); !c.SwitchedAt.IsZero() {
		c.FailedSentBeforeSwitch, c.FailedSentAfterSwitch = r.Tally.failedSplit(model, r.Start, r.End, c.SwitchedAt)
	}
	return c
}

// rpoLag is the worst lag of a replacement's checkpoint behind the
// checkpoint of the instance it replaced; nil when none was reported.
func (r drillRun) rpoLag() *time.Duration {
	var worst *time.Duration
	for _, inc := range r.incidents() {
		failed, ok1 := r.State.Instance(inc.Instance)
		repl, ok2 := r.State.Instance(inc.Replacement)
		if !ok1 || !ok2 || failed.Checkpoint == nil || repl.Checkpoint == nil {
			continue
		}
		lag := max(failed.Checkpoint.Time.Sub(repl.Checkpoint.Time), 0)
		if worst == nil || lag > *worst {
			worst = &lag
		}
	}
	return worst
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
