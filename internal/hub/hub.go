// Package hub holds what the control plane believes now: the latest value
// of each input (the source fleet, the policy, the fleet as telemetry sees
// it, the DR engine's state) as named, versioned values that any number of
// consumers read and subscribe to, and the latest error of each source.
//
// Sources publish; consumers (the xDS controller, a DR planner, status
// views) read a consistent latest value and are woken when it changes. The
// hub owns no goroutines and never blocks a publisher.
package hub

import (
	"context"
	"maps"
	"reflect"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/topology"
)

// Value is one input (the Hub's field names it): its latest content, a
// version counting the changes published, and the consumers to wake.
type Value[T any] struct {
	equal func(a, b T) bool

	mu      sync.Mutex
	latest  T
	version uint64
	subs    map[chan struct{}]bool
}

// NewValue returns an empty value; equal decides which publishes are no
// change.
func NewValue[T any](equal func(a, b T) bool) *Value[T] {
	return &Value[T]{equal: equal, subs: map[chan struct{}]bool{}}
}

// Publish makes x the latest value and wakes every subscriber, unless x
// equals the latest one; it reports whether it did. Consumers share x:
// the publisher must not modify it afterwards.
func (v *Value[T]) Publish(x T) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.version > 0 && v.equal(v.latest, x) {
		return false
	}
	v.latest = x
	v.version++
	for ch := range v.subs {
		wake(ch)
	}
	return true
}

// Get returns the latest value and its version; version 0 means nothing
// was published yet.
func (v *Value[T]) Get() (T, uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.latest, v.version
}

// Subscribe returns a channel that receives a signal after each change (and
// at once when a value is already there), and a function that ends the
// subscription. Signals that arrive while one is pending merge: read Get
// after each.
func (v *Value[T]) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.subs[ch] = true
	if v.version > 0 {
		wake(ch)
	}
	return ch, func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		delete(v.subs, ch)
	}
}

// Follow calls fn with the latest value after each change (and at once when
// a value is already there) until ctx ends; it runs in the caller's
// goroutine and returns when ctx ends.
func (v *Value[T]) Follow(ctx context.Context, fn func(T)) {
	changed, stop := v.Subscribe()
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			latest, _ := v.Get()
			fn(latest)
		}
	}
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default: // a signal is already pending
	}
}

// SourceError is the latest error a source reported.
type SourceError struct {
	Err error
	At  time.Time
}

// Hub is the control plane's inputs.
type Hub struct {
	// Fleet is the fleet as its sources (file, Kubernetes) describe it.
	Fleet *Value[*topology.Fleet]
	// Policy is the DR policy.
	Policy *Value[*drpolicy.Policy]
	// Telemetry is Fleet with telemetry applied (GPU and instance health,
	// load, telemetry-driven weights); published only while scraping.
	Telemetry *Value[*topology.Fleet]
	// DR is the DR engine's state (failed and promoted instances, zone
	// roles, incidents); translation reads the fleet through it.
	DR *Value[*dr.State]

	sourceErrorGauge *prometheus.GaugeVec
	mu               sync.Mutex
	sourceErrors     map[string]SourceError
}

// New returns an empty hub; its source-error gauge is registered on reg
// when reg is not nil.
func New(reg prometheus.Registerer) *Hub {
	h := &Hub{
		Fleet:     NewValue((*topology.Fleet).Equal),
		Policy:    NewValue(samePolicy),
		Telemetry: NewValue((*topology.Fleet).Equal),
		DR:        NewValue(sameDRState),
		sourceErrorGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "inferxds_source_error", Help: "1 while the source's latest report is an error.",
		}, []string{"source"}),
		sourceErrors: map[string]SourceError{},
	}
	if reg != nil {
		reg.MustRegister(h.sourceErrorGauge)
	}
	return h
}

func samePolicy(a, b *drpolicy.Policy) bool { return reflect.DeepEqual(a, b) }

func sameDRState(a, b *dr.State) bool { return reflect.DeepEqual(a, b) }

// ReportSourceError records the latest error of a source (nil clears it).
// A failed source keeps its last good value in the hub.
func (h *Hub) ReportSourceError(source string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		delete(h.sourceErrors, source)
		h.sourceErrorGauge.WithLabelValues(source).Set(0)
		return
	}
	h.sourceErrors[source] = SourceError{Err: err, At: time.Now()}
	h.sourceErrorGauge.WithLabelValues(source).Set(1)
}

// SourceErrors returns the sources whose latest report is an error.
func (h *Hub) SourceErrors() map[string]SourceError {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.sourceErrors)
}
