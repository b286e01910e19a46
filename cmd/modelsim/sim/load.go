package sim

import (
	"context"
	"sync"
)

// load admits at most a fixed number of requests at once, queues the rest,
// and mirrors both counts into the vLLM gauges.
type load struct {
	slots   chan struct{}
	metrics *metrics

	mu      sync.Mutex
	running map[string]int
}

func newLoad(maxConcurrency int, m *metrics) *load {
	return &load{slots: make(chan struct{}, maxConcurrency), metrics: m, running: map[string]int{}}
}

// acquire waits for a slot (or ctx) and returns the function that frees it.
func (l *load) acquire(ctx context.Context, model string) (release func(), err error) {
	select {
	case l.slots <- struct{}{}:
	default:
		if err := l.wait(ctx, model); err != nil {
			return nil, err
		}
	}
	l.addRunning(model, 1)
	return func() {
		l.addRunning(model, -1)
		<-l.slots
	}, nil
}

func (l *load) wait(ctx context.Context, model string) error {
	waiting := l.metrics.waiting.WithLabelValues(model)
	waiting.Inc()
	defer waiting.Dec()
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *load) addRunning(model string, delta int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running[model] += delta
	n := float64(l.running[model])
	l.metrics.running.WithLabelValues(model).Set(n)
	l.metrics.kvCache.WithLabelValues(model).Set(n / float64(cap(l.slots)))
}
