package engine

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/inferxds/inferxds/drpolicy/dr"
)

func TestIncidentLogWritesEachStageOnce(t *testing.T) {
	var buf strings.Builder
	l := NewIncidentLog(&buf)
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	inc := dr.Incident{ID: "i1", Model: "m", Instance: "a", Failure: dr.FailureProcessCrash, DetectedAt: t0}
	steps := []func(){
		func() {},
		func() {},
		func() { inc.DrainedAt = t0.Add(time.Second) },
		func() { inc.RestoredAt = t0.Add(2 * time.Second) },
		func() {},
	}
	for _, step := range steps {
		step()
		if err := l.Record([]dr.Incident{inc}); err != nil {
			t.Fatal(err)
		}
	}
	got := parseIncidents(t, buf.String())
	if len(got) != 3 {
		t.Fatalf("%d lines, want 3 (detected, drained, restored):\n%s", len(got), buf.String())
	}
	if !got[1].DrainedAt.Equal(t0.Add(time.Second)) || !got[1].Open() || got[2].Open() {
		t.Fatalf("stages out of order:\n%s", buf.String())
	}
}

// parseIncidents parses an incident log, one JSON incident a line.
func parseIncidents(t *testing.T, log string) []dr.Incident {
	t.Helper()
	var out []dr.Incident
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var inc dr.Incident
		if err := json.Unmarshal(sc.Bytes(), &inc); err != nil {
			t.Fatalf("incident line %q: %v", sc.Text(), err)
		}
		out = append(out, inc)
	}
	return out
}
