package e2e

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// outcome is one finished call: when it returned, who answered, or why not.
type outcome struct {
	at  time.Time
	id  string
	err error
}

// load keeps a fixed number of callers sending requests until stopped, and
// records every outcome.
type load struct {
	stopping atomic.Bool
	wg       sync.WaitGroup
	mu       sync.Mutex
	outcomes []outcome
}

// startLoad starts callers goroutines that each call model back to back.
func startLoad(call func() (string, error), callers int) *load {
	l := &load{}
	for range callers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for !l.stopping.Load() {
				id, err := call()
				l.record(outcome{at: time.Now(), id: id, err: err})
			}
		}()
	}
	return l
}

func (l *load) record(o outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.outcomes = append(l.outcomes, o)
}

// stop waits for the callers' in-flight calls to finish and returns every
// outcome in the order recorded.
func (l *load) stop() []outcome {
	l.stopping.Store(true)
	l.wg.Wait()
	return l.snapshot()
}

func (l *load) snapshot() []outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]outcome(nil), l.outcomes...)
}

// waitFor polls the outcomes until done holds for them or timeout passes,
// and reports whether it did.
func (l *load) waitFor(timeout time.Duration, done func([]outcome) bool) bool {
	return poll(timeout, func() error {
		if done(l.snapshot()) {
			return nil
		}
		return context.DeadlineExceeded
	}) == nil
}
