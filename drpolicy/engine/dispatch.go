package engine

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/topology"
)

// Result is an Actuator's answer to one action.
type Result struct {
	Action   dr.Action
	Instance topology.Instance
	Err      error
	At       time.Time
}

// Dispatcher hands actions to the Actuator, one goroutine each: never an
// action while the same one is in flight, a failed one again only after
// an exponential backoff, and none while not leading.
type Dispatcher struct {
	act        dr.Actuator
	leading    func() bool
	results    chan<- Result
	now        func() time.Time
	backoff    time.Duration
	maxBackoff time.Duration

	mu        sync.Mutex
	inFlight  map[string]dr.Action
	failures  map[string]int
	notBefore map[string]time.Time
}

// NewDispatcher sends results to results; leading nil is always leading.
func NewDispatcher(act dr.Actuator, leading func() bool, results chan<- Result, backoff, maxBackoff time.Duration) *Dispatcher {
	if leading == nil {
		leading = func() bool { return true }
	}
	return &Dispatcher{
		act: act, leading: leading, results: results, now: time.Now,
		backoff: backoff, maxBackoff: maxBackoff,
		inFlight: map[string]dr.Action{}, failures: map[string]int{}, notBefore: map[string]time.Time{},
	}
}

// Start starts each action that is for the Actuator, not in flight and not
// backing off, and returns the ones it started.
func (d *Dispatcher) Start(ctx context.Context, actions []dr.Action) []dr.Action {
	if !d.leading() {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var started []dr.Action
	now := d.now()
	for _, a := range actions {
		k := a.Key()
		if _, busy := d.inFlight[k]; busy || a.Kind.StateOnly() || now.Before(d.notBefore[k]) {
			continue
		}
		d.inFlight[k] = a
		started = append(started, a)
		go d.do(ctx, a)
	}
	return started
}

func (d *Dispatcher) do(ctx context.Context, a dr.Action) {
	got, err := d.act.Do(ctx, a)
	d.mu.Lock()
	k := a.Key()
	delete(d.inFlight, k)
	if err != nil {
		d.failures[k]++
		d.notBefore[k] = d.now().Add(d.delay(d.failures[k]))
	} else {
		delete(d.failures, k)
		delete(d.notBefore, k)
	}
	d.mu.Unlock()
	select {
	case d.results <- Result{Action: a, Instance: got, Err: err, At: d.now()}:
	case <-ctx.Done():
	}
}

// delay is the backoff after n consecutive failures: doubling, capped.
func (d *Dispatcher) delay(n int) time.Duration {
	wait := d.backoff
	for i := 1; i < n && wait < d.maxBackoff; i++ {
		wait *= 2
	}
	return min(wait, d.maxBackoff)
}

// InFlight lists the actions being carried out, in key order.
func (d *Dispatcher) InFlight() []dr.Action {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]dr.Action, 0, len(d.inFlight))
	for _, a := range d.inFlight {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}
