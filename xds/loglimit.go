package xds

import (
	"sync"
	"time"
)

// maxLogKeys bounds the keys a logLimiter remembers: keys are built from
// client-supplied strings, so their number must not grow with the clients.
const maxLogKeys = 4096

// logLimiter lets through at most one log line per key per interval and
// counts the lines it held back.
type logLimiter struct {
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	keys map[string]*logWindow
}

type logWindow struct {
	start      time.Time
	suppressed int
}

func newLogLimiter(every time.Duration) *logLimiter {
	return &logLimiter{every: every, now: time.Now, keys: map[string]*logWindow{}}
}

// allow reports whether a line for key may be logged now and, if so, how
// many lines for key were held back since the last one.
func (l *logLimiter) allow(key string) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	w := l.keys[key]
	if w != nil && now.Sub(w.start) < l.every {
		w.suppressed++
		return false, 0
	}
	if w == nil && !l.makeRoom(now) {
		return false, 0
	}
	if w != nil {
		suppressed = w.suppressed
	}
	l.keys[key] = &logWindow{start: now}
	return true, suppressed
}

// makeRoom forgets the keys whose window has ended when the limiter is
// full; with every window still open, a new key is not logged.
func (l *logLimiter) makeRoom(now time.Time) bool {
	if len(l.keys) < maxLogKeys {
		return true
	}
	for key, w := range l.keys {
		if now.Sub(w.start) >= l.every {
			delete(l.keys, key)
		}
	}
	return len(l.keys) < maxLogKeys
}
