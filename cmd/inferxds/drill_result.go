package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/inferxds/inferxds/drpolicy/dr"
)

// seedBound is one row of the seed design's recovery table (its section
// 5.2) and the project's goal for the same failure.
type seedBound struct {
	Detection time.Duration `json:"detection"`
	Switch    time.Duration `json:"switch"`
	RTO       time.Duration `json:"rto"`
	DataLost  string        `json:"dataLost"`
	// Goal is this project's target for the time to standby.
	Goal time.Duration `json:"goal"`
}

// seedBounds are the seed's bounds per failure type.
var seedBounds = map[dr.FailureType]seedBound{
	dr.FailureProcessCrash:    {time.Second, 5 * time.Second, 6 * time.Second, "in-flight requests", time.Second},
	dr.FailureNodeDown:        {10 * time.Second, 30 * time.Second, 40 * time.Second, "in-flight requests", 3 * time.Second},
	dr.FailureGPU:             {5 * time.Second, 30 * time.Second, 35 * time.Second, "none (GPU memory)", 2 * time.Second},
	dr.FailureAZOutage:        {30 * time.Second, 60 * time.Second, 90 * time.Second, "none (cross-AZ sync)", 5 * time.Second},
	dr.FailureModelCorruption: {time.Second, 60 * time.Second, 61 * time.Second, "reload needed", 2 * time.Second},
}

// marker is one moment of a drill's timeline.
type marker struct {
	Kind  string    `json:"kind"` // fault, detected, drained, switched, promoted, restored
	At    time.Time `json:"at"`
	Label string    `json:"label,omitempty"`
}

// Marker kinds, in the order a recovery goes through them.
const (
	markFault    = "fault"
	markDetected = "detected"
	markDrained  = "drained"
	markSwitched = "switched"
	markPromoted = "promoted"
	markRestored = "restored"
)

// drillResult is one scenario's measurement.
type drillResult struct {
	Scenario string         `json:"scenario"`
	Failure  dr.FailureType `json:"failure"`
	// Failed are the instances the fault took down.
	Failed []string `json:"failed"`
	// Models are the models that lost an instance.
	Models []string `json:"models"`

	FaultAt    time.Time `json:"faultAt"`
	DetectedAt time.Time `json:"detectedAt,omitzero"`
	SwitchedAt time.Time `json:"switchedAt,omitzero"`
	RestoredAt time.Time `json:"restoredAt,omitzero"`

	// Requests and FailedRequests count the requests of Models.
	Requests       int `json:"requests"`
	FailedRequests int `json:"failedRequests"`
	// ByModel counts the requests of every model.
	ByModel map[string]modelCounts `json:"byModel"`
	// RPOLag is how far the promoted instances' checkpoints lag the failed
	// ones' (the worst model); nil when no checkpoint was reported.
	RPOLag *time.Duration `json:"rpoLag,omitempty"`

	Bound     seedBound     `json:"seed"`
	Markers   []marker      `json:"markers"`
	Incidents []dr.Incident `json:"incidents,omitempty"`
	// Notes say which stage was not reached, and why when known.
	Notes []string `json:"notes,omitempty"`
	// Timeline is requests per bucket by model and instance, for the report.
	Timeline map[string]series `json:"-"`
	// Start and End bound the timeline.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// modelCounts are one model's requests in a drill. A model that lost an
// instance has a switch, the first good answer after the failed
// instances' last; its failed requests are split by when they were sent:
// before the switch (in flight to a failed instance, or sent while traffic
// still went to one) or after it (the fleet failed a request it had
// already moved off the fault).
type modelCounts struct {
	Requests               int       `json:"requests"`
	Failed                 int       `json:"failed"`
	SwitchedAt             time.Time `json:"switchedAt,omitzero"`
	FailedSentBeforeSwitch int       `json:"failedSentBeforeSwitch"`
	FailedSentAfterSwitch  int       `json:"failedSentAfterSwitch"`
}

// since is at − FaultAt, or 0 and false when at was not reached.
func (r drillResult) since(at time.Time) (time.Duration, bool) {
	if at.IsZero() {
		return 0, false
	}
	return at.Sub(r.FaultAt), true
}

// stagesInOrder reports whether each reached stage came after the one
// before it: fault, detected, switched... restored; detection may trail
// the switch when proxies moved traffic before the control plane acted.
func (r drillResult) stagesInOrder() error {
	stages := []struct {
		name string
		at   time.Time
	}{{markDetected, r.DetectedAt}, {markSwitched, r.SwitchedAt}, {markRestored, r.RestoredAt}}
	for _, s := range stages {
		if s.at.IsZero() {
			return fmt.Errorf("%s: stage %s not reached", r.Scenario, s.name)
		}
		if s.at.Before(r.FaultAt) {
			return fmt.Errorf("%s: %s at %v, before the fault at %v", r.Scenario, s.name, s.at, r.FaultAt)
		}
	}
	if r.RestoredAt.Before(r.DetectedAt) {
		return fmt.Errorf("%s: restored before detected", r.Scenario)
	}
	return nil
}

// MarshalJSON adds the measured durations, in seconds, as a reader of
// --json wants them.
func (r drillResult) MarshalJSON() ([]byte, error) {
	type plain drillResult // without this method
	out := struct {
		plain
		DetectionSeconds *float64 `json:"detectionSeconds,omitempty"`
		SwitchSeconds    *float64 `json:"switchSeconds,omitempty"`
		RTOSeconds       *float64 `json:"rtoSeconds,omitempty"`
		RPOLagSeconds    *float64 `json:"rpoLagSeconds,omitempty"`
	}{plain: plain(r)}
	out.DetectionSeconds = r.seconds(r.DetectedAt)
	out.SwitchSeconds = r.seconds(r.SwitchedAt)
	out.RTOSeconds = r.seconds(r.RestoredAt)
	if r.RPOLag != nil {
		s := r.RPOLag.Seconds()
		out.RPOLagSeconds = &s
	}
	return json.Marshal(out)
}

func (r drillResult) seconds(at time.Time) *float64 {
	d, ok := r.since(at)
	if !ok {
		return nil
	}
	s := d.Seconds()
	return &s
}

// writeJSONFile writes the results as one indented JSON document.
func writeJSONFile(path string, results []drillResult) error {
	data, err := json.MarshalIndent(map[string]any{"results": results}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// writeTable prints the measured recovery table, each measurement beside
// the seed's bound.
func writeTable(w io.Writer, results []drillResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FAILURE\tDETECTION (seed)\tSWITCH (seed)\tTOTAL RTO (seed)\tFAILED REQUESTS\tDATA LOST (seed)\tGOAL")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d of %d\t%s\t%s\n", r.Scenario,
			r.measured(r.DetectedAt, r.Bound.Detection), r.measured(r.SwitchedAt, r.Bound.Switch),
			r.measured(r.RestoredAt, r.Bound.RTO), r.FailedRequests, r.Requests,
			r.DataLost(), r.Goal())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		for _, n := range r.Notes {
			fmt.Fprintf(w, "%s: %s\n", r.Scenario, n)
		}
	}
	return nil
}

// measured is "1.23s (<5s)", or "not reached (<5s)".
func (r drillResult) measured(at time.Time, bound time.Duration) string {
	d, ok := r.since(at)
	if !ok {
		return "not reached (<" + bound.String() + ")"
	}
	return fmt.Sprintf("%s (<%s)", roundDuration(d), bound)
}

func (r drillResult) DataLost() string {
	lag := "no checkpoint"
	if r.RPOLag != nil {
		lag = "RPO lag " + roundDuration(*r.RPOLag).String()
	}
	return fmt.Sprintf("%s (%s)", lag, r.Bound.DataLost)
}

func (r drillResult) Goal() string {
	g := "≤" + r.Bound.Goal.String()
	if r.Failure == dr.FailureProcessCrash {
		g += ", 0 failed"
	}
	return g
}

// roundDuration keeps a duration readable: milliseconds under 10 s, tenths
// of a second above.
func roundDuration(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}
