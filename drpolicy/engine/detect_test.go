package engine

import (
	"errors"
	"testing"
	"time"

	"github.com/inferxds/inferxds/drpolicy/dr"
)

var errDown = errors.New("connection refused")

func TestDetectorDownAfterThresholdAndBack(t *testing.T) {
	d := NewDetector(3, 0)
	now := time.Unix(100, 0)
	bad := []ProbeResult{{Instance: "a", Err: errDown}, {Instance: "b"}}
	for i := range 2 {
		if r := d.Observe(bad, now); len(r.Failures) != 0 {
			t.Fatalf("round %d: failures %+v before the threshold", i+1, r.Failures)
		}
	}
	r := d.Observe(bad, now)
	if len(r.Failures) != 1 || r.Failures[0].Instance != "a" || r.Failures[0].Type != dr.FailureProbe {
		t.Fatalf("third failed round: %+v, want a probe failure of a", r.Failures)
	}
	if r := d.Observe(bad, now); len(r.Failures) != 0 {
		t.Fatalf("a down instance reported again: %+v", r.Failures)
	}
	r = d.Observe([]ProbeResult{{Instance: "a"}, {Instance: "b"}}, now)
	if len(r.Recovered) != 1 || r.Recovered[0] != "a" {
		t.Fatalf("recovered = %v, want [a]", r.Recovered)
	}
}

func TestDetectorCorruptionAtOnce(t *testing.T) {
	d := NewDetector(3, 0)
	r := d.Observe([]ProbeResult{{Instance: "a", Corrupt: true}, {Instance: "b"}}, time.Unix(1, 0))
	if len(r.Failures) != 1 || r.Failures[0].Type != dr.FailureModelCorruption {
		t.Fatalf("failures = %+v, want model corruption at once", r.Failures)
	}
}

func TestDetectorNodeDownWhenAllItsInstancesFail(t *testing.T) {
	d := NewDetector(1, 0)
	r := d.Observe([]ProbeResult{
		{Instance: "a1", Node: "n1", Err: errDown},
		{Instance: "a2", Node: "n1", Err: errDown},
		{Instance: "b1", Node: "n2", Err: errDown},
		{Instance: "b2", Node: "n2"},
		{Instance: "c1", Node: "n3"},
	}, time.Unix(1, 0))
	want := map[string]dr.FailureType{"a1": dr.FailureNodeDown, "a2": dr.FailureNodeDown, "b1": dr.FailureProbe}
	if len(r.Failures) != len(want) {
		t.Fatalf("failures = %+v, want %v", r.Failures, want)
	}
	for _, f := range r.Failures {
		if want[f.Instance] != f.Type {
			t.Errorf("%s: %s, want %s", f.Instance, f.Type, want[f.Instance])
		}
	}
}

func TestDetectorGuardHoldsMassFailure(t *testing.T) {
	d := NewDetector(1, 0.5)
	all := []ProbeResult{{Instance: "a", Err: errDown}, {Instance: "b", Err: errDown}, {Instance: "c"}}
	r := d.Observe(all, time.Unix(1, 0))
	if !r.Held || len(r.Failures) != 0 {
		t.Fatalf("2 of 3 failing: %+v, want held with no failures", r)
	}
	r = d.Observe([]ProbeResult{{Instance: "a", Err: errDown}, {Instance: "b"}, {Instance: "c"}}, time.Unix(2, 0))
	if r.Held || len(r.Failures) != 1 || r.Failures[0].Instance != "a" {
		t.Fatalf("1 of 3 failing: %+v, want a reported", r)
	}
}
