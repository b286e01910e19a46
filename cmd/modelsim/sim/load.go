package sim

import (
	"context"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// load admits at most a fixed number of requests at once and queues the
// rest in arrival order. A finishing request hands its slot straight to the
// first waiter, so, as in a continuous-batching server, the batch never
// looks empty while requests wait. It is also the Prometheus collector of
// the vLLM gauges, reading them in one consistent snapshot.
type load struct {
	slots int

	mu       sync.Mutex
	inUse    int
	queue    []*waiter
	running  map[string]int
	waiting  map[string]int
	runningD *prometheus.Desc
	waitingD *prometheus.Desc
	kvCacheD *prometheus.Desc
}

// waiter is a queued request; ready closes once it holds a slot.
type waiter struct {
	model string
	ready chan struct{}
}

func newLoad(maxConcurrency int, models []string) *load {
	l := &load{
		slots:    maxConcurrency,
		running:  map[string]int{},
		waiting:  map[string]int{},
		runningD: modelGaugeDesc(MetricRequestsRunning, "Requests holding a concurrency slot (in flight)."),
		waitingD: modelGaugeDesc(MetricRequestsWaiting, "Requests waiting for a concurrency slot."),
		kvCacheD: modelGaugeDesc(MetricKVCacheUsage, "Stand-in for KV-cache use: running requests / max concurrency (1 = full)."),
	}
	for _, m := range models {
		l.running[m], l.waiting[m] = 0, 0
	}
	return l
}

func modelGaugeDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, []string{"model_name"}, nil)
}

// acquire waits for a slot (or ctx) and returns the function that frees it.
func (l *load) acquire(ctx context.Context, model string) (release func(), err error) {
	l.mu.Lock()
	if l.inUse < l.slots {
		l.inUse++
		l.running[model]++
		l.mu.Unlock()
		return func() { l.release(model) }, nil
	}
	w := &waiter{model: model, ready: make(chan struct{})}
	l.queue = append(l.queue, w)
	l.waiting[model]++
	l.mu.Unlock()
	select {
	case <-w.ready:
		return func() { l.release(model) }, nil
	case <-ctx.Done():
		l.abandon(w)
		return nil, ctx.Err()
	}
}

// release frees model's slot, handing it to the first waiter if any.
func (l *load) release(model string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running[model]--
	if len(l.queue) == 0 {
		l.inUse--
		return
	}
	next := l.queue[0]
	l.queue = l.queue[1:]
	l.waiting[next.model]--
	l.running[next.model]++
	close(next.ready)
}

// abandon takes a cancelled waiter out of the queue, or, when the slot was
// handed to it meanwhile, passes the slot on.
func (l *load) abandon(w *waiter) {
	l.mu.Lock()
	i := slices.Index(l.queue, w)
	if i >= 0 {
		l.queue = slices.Delete(l.queue, i, i+1)
		l.waiting[w.model]--
	}
	l.mu.Unlock()
	if i < 0 {
		l.release(w.model)
	}
}

// Describe implements prometheus.Collector.
func (l *load) Describe(ch chan<- *prometheus.Desc) {
	ch <- l.runningD
	ch <- l.waitingD
	ch <- l.kvCacheD
}

// Collect implements prometheus.Collector.
func (l *load) Collect(ch chan<- prometheus.Metric) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for model, n := range l.running {
		ch <- prometheus.MustNewConstMetric(l.runningD, prometheus.GaugeValue, float64(n), model)
		ch <- prometheus.MustNewConstMetric(l.kvCacheD, prometheus.GaugeValue, float64(n)/float64(l.slots), model)
	}
	for model, n := range l.waiting {
		ch <- prometheus.MustNewConstMetric(l.waitingD, prometheus.GaugeValue, float64(n), model)
	}
}
