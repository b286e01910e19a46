package hub

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
)

func TestPublishVersionsChangesAndWakesSubscribers(t *testing.T) {
	h := New(nil)
	early, stopEarly := h.Policy.Subscribe()
	defer stopEarly()

	p := &drpolicy.Policy{Models: []drpolicy.Model{{Name: "llama"}}}
	if !h.Policy.Publish(p) {
		t.Fatal("the first policy was not taken")
	}
	if h.Policy.Publish(&drpolicy.Policy{Models: []drpolicy.Model{{Name: "llama"}}}) {
		t.Error("an equal policy counted as a change")
	}
	if got, version := h.Policy.Get(); got != p || version != 1 {
		t.Errorf("Get = %p, %d; want the first policy at version 1", got, version)
	}
	select {
	case <-early:
	default:
		t.Error("a subscriber was not woken by a change")
	}
	select {
	case <-early:
		t.Error("an equal publish woke a subscriber")
	default:
	}

	late, stopLate := h.Policy.Subscribe()
	select {
	case <-late:
	default:
		t.Error("a subscriber that came after a value was not woken at once")
	}
	stopLate()
	h.Policy.Publish(&drpolicy.Policy{})
	select {
	case <-late:
		t.Error("an ended subscription was woken")
	default:
	}
}

func TestFollowHandsOverEachChangeUntilCancelled(t *testing.T) {
	h := New(nil)
	h.Policy.Publish(&drpolicy.Policy{Models: []drpolicy.Model{{Name: "first"}}})
	ctx, cancel := context.WithCancel(context.Background())
	seen := make(chan string)
	done := make(chan struct{})
	go func() {
		h.Policy.Follow(ctx, func(p *drpolicy.Policy) { seen <- p.Models[0].Name })
		close(done)
	}()
	if got := <-seen; got != "first" {
		t.Errorf("Follow began with %q, want the value already there, first", got)
	}
	h.Policy.Publish(&drpolicy.Policy{Models: []drpolicy.Model{{Name: "second"}}})
	if got := <-seen; got != "second" {
		t.Errorf("Follow after a change got %q, want second", got)
	}
	cancel()
	<-done
}

func TestSubscribersMergeSignalsAndReadTheLatest(t *testing.T) {
	h := New(nil)
	changed, stop := h.Fleet.Subscribe()
	defer stop()
	for _, zone := range []string{"az-1", "az-2", "az-3"} {
		h.Fleet.Publish(&topology.Fleet{Zones: []topology.Zone{{Name: zone}}})
	}
	<-changed
	if f, version := h.Fleet.Get(); version != 3 || f.Zones[0].Name != "az-3" {
		t.Errorf("after three changes Get = %v at version %d, want az-3 at 3", f.Zones, version)
	}
	select {
	case <-changed:
		t.Error("three changes left more than one signal pending")
	default:
	}
}

func TestSourceErrorsAreKeptUntilCleared(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := New(reg)
	h.ReportSourceError("fleet", errors.New("fleet.yaml:3: unknown field"))
	h.ReportSourceError("policy", errors.New("policy.yaml:9: bad duration"))
	h.ReportSourceError("policy", nil)

	errs := h.SourceErrors()
	if len(errs) != 1 || errs["fleet"].Err == nil {
		t.Errorf("SourceErrors = %v, want only fleet", errs)
	}
	if got := testutil.ToFloat64(h.sourceErrorGauge.WithLabelValues("policy")); got != 0 {
		t.Errorf("source_error{source=policy} = %v after it cleared, want 0", got)
	}
	if got := testutil.ToFloat64(h.sourceErrorGauge.WithLabelValues("fleet")); got != 1 {
		t.Errorf("source_error{source=fleet} = %v, want 1", got)
	}
}
