package main

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestTrafficIsNotHeldBackByStuckRequests: while the first requests hang
// (a frozen instance), the load keeps sending and new requests are
// answered; stop waits for the stuck ones and counts them.
func TestTrafficIsNotHeldBackByStuckRequests(t *testing.T) {
	release := make(chan struct{})
	var sent atomic.Int64
	send := func(ctx context.Context, model string) (string, error) {
		if sent.Add(1) <= 3 {
			<-release
			return "", errors.New("stuck, then cut")
		}
		return "live", nil
	}
	tl := newTally()
	stop := traffic{Send: send, Models: []string{"m"}, Interval: time.Millisecond, InFlight: 100, Tally: tl}.start(context.Background())
	deadline := time.Now().Add(30 * time.Second)
	for tl.window("m", time.Time{}, time.Now().Add(time.Hour)).Answers["live"] < 20 {
		if time.Now().After(deadline) {
			close(release)
			stop()
			t.Fatal("no answers while three requests were stuck")
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	stop()
	if got := tl.window("m", time.Time{}, time.Now().Add(time.Hour)); got.Failed != 3 {
		t.Errorf("%d failed, want the 3 stuck requests counted", got.Failed)
	}
}

// TestTrafficSendsNoMoreThanInFlight: a request due while InFlight are out
// is not sent.
func TestTrafficSendsNoMoreThanInFlight(t *testing.T) {
	release := make(chan struct{})
	var out, most atomic.Int64
	send := func(ctx context.Context, model string) (string, error) {
		n := out.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		out.Add(-1)
		return "i", nil
	}
	tl := newTally()
	stop := traffic{Send: send, Models: []string{"m"}, Interval: time.Millisecond, InFlight: 5, Tally: tl}.start(context.Background())
	for out.Load() < 5 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // 20 more due, none may be sent
	close(release)
	stop()
	if most.Load() != 5 {
		t.Errorf("%d requests out at once, want at most InFlight 5", most.Load())
	}
}
