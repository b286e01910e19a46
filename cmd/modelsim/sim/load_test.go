package sim

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// gauges reads the load's vLLM gauges for model, as one scrape would.
func gauges(t *testing.T, l *load, model string) (running, waiting float64) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(l)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() != model {
				continue
			}
			switch f.GetName() {
			case MetricRequestsRunning:
				running = m.GetGauge().GetValue()
			case MetricRequestsWaiting:
				waiting = m.GetGauge().GetValue()
			}
		}
	}
	return running, waiting
}

// queueWaiter starts an acquire that has to wait and returns what it gets.
func queueWaiter(t *testing.T, ctx context.Context, l *load, model string, wantWaiting float64) <-chan func() {
	t.Helper()
	got := make(chan func(), 1)
	go func() {
		release, err := l.acquire(ctx, model)
		if err != nil {
			release = nil
		}
		got <- release
	}()
	deadline := time.Now().Add(5 * time.Second)
	for _, waiting := gauges(t, l, model); waiting != wantWaiting; _, waiting = gauges(t, l, model) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting never reached %v", wantWaiting)
		}
		time.Sleep(time.Millisecond)
	}
	return got
}

// TestFinishingRequestHandsItsSlotToTheFirstWaiter: while requests queue,
// the batch never looks empty, as in a continuous-batching server — a
// scrape between one request's end and the next one's start would
// otherwise report an idle server.
func TestFinishingRequestHandsItsSlotToTheFirstWaiter(t *testing.T) {
	l := newLoad(1, []string{"m"})
	release, err := l.acquire(context.Background(), "m")
	if err != nil {
		t.Fatal(err)
	}
	first := queueWaiter(t, context.Background(), l, "m", 1)
	second := queueWaiter(t, context.Background(), l, "m", 2)

	release()
	if running, waiting := gauges(t, l, "m"); running != 1 || waiting != 1 {
		t.Fatalf("right after a release: running %v waiting %v, want 1 and 1", running, waiting)
	}
	(<-first)()
	(<-second)()
	if running, waiting := gauges(t, l, "m"); running != 0 || waiting != 0 {
		t.Errorf("all released: running %v waiting %v, want 0 and 0", running, waiting)
	}
	if got := testutil.CollectAndCount(l, MetricKVCacheUsage); got != 1 {
		t.Errorf("%d kv-cache series, want 1 (model m)", got)
	}
}

// TestCancelledWaiterLeavesTheQueue: a request given up while waiting no
// longer counts as waiting and takes no slot.
func TestCancelledWaiterLeavesTheQueue(t *testing.T) {
	l := newLoad(1, []string{"m"})
	release, err := l.acquire(context.Background(), "m")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	abandoned := queueWaiter(t, ctx, l, "m", 1)
	cancel()
	if r := <-abandoned; r != nil {
		t.Fatal("a cancelled acquire returned a slot")
	}
	release()
	if running, waiting := gauges(t, l, "m"); running != 0 || waiting != 0 {
		t.Errorf("running %v waiting %v, want 0 and 0", running, waiting)
	}
	if _, err := l.acquire(context.Background(), "m"); err != nil {
		t.Errorf("the slot was not freed: %v", err)
	}
}
