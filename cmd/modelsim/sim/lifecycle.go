package sim

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Status is what an instance is doing, as GET /healthz reports it. Only
// StatusServing answers inference.
type Status string

const (
	// StatusLoading: the weights load after start (Config.ColdLoadTime).
	StatusLoading Status = "loading"
	// StatusSleeping: a warm standby, weights in host memory, not serving.
	StatusSleeping Status = "sleeping"
	// StatusWaking: a wake-up moves the weights back (Config.WarmLoadTime).
	StatusWaking Status = "waking"
	// StatusServing: loaded, awake, answering.
	StatusServing Status = "serving"
	// StatusFailing: every request fails (an injected total failure).
	StatusFailing Status = "failing"
)

var errStopped = errors.New("instance stopped")

// lifecycle is vLLM's sleep mode on top of one cold load: the instance loads
// once after start, then sleeps and wakes on request. A wake-up takes the
// warm load time; callers asking while one runs wait for the same one.
type lifecycle struct {
	warmLoad time.Duration
	stop     <-chan struct{} // closed when the server stops
	changed  func()          // called after every transition, outside mu

	mu       sync.Mutex
	isLoaded bool
	loaded   chan struct{} // closed once isLoaded
	asleep   bool          // stays true while waking, as vLLM's is_sleeping
	waking   chan struct{} // non-nil while a wake-up runs; closed when it ends
}

func newLifecycle(cfg Config, stop <-chan struct{}, changed func()) *lifecycle {
	return &lifecycle{warmLoad: cfg.WarmLoadTime, stop: stop, changed: changed, loaded: make(chan struct{}), asleep: cfg.StartAsleep}
}

// startLoading begins the cold load; with no load time it is done at once.
func (l *lifecycle) startLoading(d time.Duration) {
	if d <= 0 {
		l.finishLoad()
		l.changed()
		return
	}
	go func() {
		if waitOrStop(l.stop, d) {
			l.finishLoad()
			l.changed()
		}
	}()
}

func (l *lifecycle) finishLoad() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.isLoaded = true
	close(l.loaded)
}

// phase is the status before failure injection is taken into account.
func (l *lifecycle) phase() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case !l.isLoaded:
		return StatusLoading
	case l.waking != nil:
		return StatusWaking
	case l.asleep:
		return StatusSleeping
	}
	return StatusServing
}

func (l *lifecycle) sleeping() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.asleep
}

// wake returns once the instance is loaded and a wake-up has ended: the one
// in progress, or one started here when asleep. It is idempotent: awake, it
// returns at once. A sleep that comes in while waking wins once the wake-up
// ends.
func (l *lifecycle) wake(ctx context.Context) error {
	if err := l.await(ctx, l.loaded); err != nil {
		return err
	}
	done, started := l.startWake()
	if started {
		l.changed()
	}
	if done == nil {
		return nil
	}
	return l.await(ctx, done)
}

// startWake returns the wake-up in progress, started here (started true)
// when the instance sleeps and none runs; nil when it is awake.
func (l *lifecycle) startWake() (done <-chan struct{}, started bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.waking != nil:
		return l.waking, false
	case !l.asleep:
		return nil, false
	}
	l.waking = make(chan struct{})
	go l.finishWake(l.waking)
	return l.waking, true
}

// await waits for done, ctx or the server's stop.
func (l *lifecycle) await(ctx context.Context, done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.stop:
		return errStopped
	}
}

func (l *lifecycle) finishWake(done chan struct{}) {
	woke := waitOrStop(l.stop, l.warmLoad)
	l.mu.Lock()
	if woke {
		l.asleep = false
	}
	l.waking = nil
	close(done)
	l.mu.Unlock()
	l.changed()
}

// sleep puts the instance to sleep; a wake-up in progress finishes first.
// While loading, the instance goes to sleep once loaded.
func (l *lifecycle) sleep(ctx context.Context) error {
	for {
		l.mu.Lock()
		waking := l.waking
		if waking == nil {
			l.asleep = true
			l.mu.Unlock()
			l.changed()
			return nil
		}
		l.mu.Unlock()
		if err := l.await(ctx, waking); err != nil {
			return err
		}
	}
}

// waitOrStop waits d and reports true, or false when stop closes first.
func waitOrStop(stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}
