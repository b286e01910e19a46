package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/topology"
)

// gatedActuator answers each action when the test releases it.
type gatedActuator struct {
	calls   chan dr.Action
	release chan error
}

func (g *gatedActuator) Do(ctx context.Context, a dr.Action) (topology.Instance, error) {
	g.calls <- a
	return topology.Instance{Name: a.Instance}, <-g.release
}

func newGated() *gatedActuator {
	return &gatedActuator{calls: make(chan dr.Action, 10), release: make(chan error)}
}

func TestDispatcherNoRepeatWhileInFlightThenBackoff(t *testing.T) {
	act := newGated()
	results := make(chan Result, 10)
	d := NewDispatcher(act, nil, results, time.Hour, 4*time.Hour)
	now := time.Unix(1000, 0)
	d.now = func() time.Time { return now }
	ctx := t.Context()
	wake := dr.Action{Kind: dr.ActionWake, Instance: "w1"}
	drain := dr.Action{Kind: dr.ActionDrain, Instance: "p1"}

	if got := d.Start(ctx, []dr.Action{wake, drain}); len(got) != 1 || got[0].Key() != wake.Key() {
		t.Fatalf("started %v, want only the wake", got)
	}
	<-act.calls
	if got := d.Start(ctx, []dr.Action{wake}); len(got) != 0 {
		t.Fatalf("started %v while the wake was in flight", got)
	}
	if in := d.InFlight(); len(in) != 1 || in[0].Key() != wake.Key() {
		t.Fatalf("in flight %v", in)
	}
	act.release <- errors.New("no GPU")
	if r := <-results; r.Err == nil {
		t.Fatal("result lost the actuator's error")
	}
	if got := d.Start(ctx, []dr.Action{wake}); len(got) != 0 {
		t.Fatalf("started %v during the backoff", got)
	}
	now = now.Add(time.Hour)
	if got := d.Start(ctx, []dr.Action{wake}); len(got) != 1 {
		t.Fatal("wake not retried after the backoff")
	}
	<-act.calls
	act.release <- nil
	if r := <-results; r.Err != nil || r.Instance.Name != "w1" {
		t.Fatalf("result %+v", r)
	}
}

func TestDispatcherDelayDoublesToCap(t *testing.T) {
	d := NewDispatcher(newGated(), nil, nil, time.Second, 5*time.Second)
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 50: 5 * time.Second} {
		if got := d.delay(n); got != want {
			t.Errorf("delay(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestDispatcherNotLeadingStartsNothing(t *testing.T) {
	act := newGated()
	d := NewDispatcher(act, func() bool { return false }, make(chan Result, 1), time.Second, time.Second)
	if got := d.Start(t.Context(), []dr.Action{{Kind: dr.ActionCreate, Instance: "c"}}); len(got) != 0 {
		t.Fatalf("started %v while not leading", got)
	}
}
