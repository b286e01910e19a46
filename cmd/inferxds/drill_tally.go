package main

import (
	"maps"
	"slices"
	"sync"
	"time"
)

// outcome is one request of the drill traffic: when it was sent, when its
// reply (or error) came back, which instance answered (empty when none
// did) and whether it failed; a wrong answer fails with its instance
// known.
type outcome struct {
	Sent, At time.Time
	Instance string
	Failed   bool
}

func (o outcome) failed() bool { return o.Failed }

// tally keeps every request's outcome per model, in arrival order, for the
// live view, the recovery measurements and the report's timeline. Safe for
// concurrent use.
type tally struct {
	mu     sync.Mutex
	models map[string][]outcome
}

func newTally() *tally { return &tally{models: map[string][]outcome{}} }

// record adds the outcome of one request for model.
func (t *tally) record(model string, o outcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.models[model] = append(t.models[model], o)
}

// outcomes returns a copy of model's outcomes in time order.
func (t *tally) outcomes(model string) []outcome {
	t.mu.Lock()
	out := slices.Clone(t.models[model])
	t.mu.Unlock()
	slices.SortStableFunc(out, func(a, b outcome) int { return a.At.Compare(b.At) })
	return out
}

// windowCounts is what happened to a model's requests in a span of time.
type windowCounts struct {
	Answers map[string]int // by instance
	Failed  int
}

// Total is the number of requests in the window.
func (w windowCounts) Total() int {
	n := w.Failed
	for _, c := range w.Answers {
		n += c
	}
	return n
}

// window counts model's outcomes at or after from and before to.
func (t *tally) window(model string, from, to time.Time) windowCounts {
	w := windowCounts{Answers: map[string]int{}}
	for _, o := range t.outcomes(model) {
		switch {
		case o.At.Before(from) || !o.At.Before(to):
		case o.failed():
			w.Failed++
		default:
			w.Answers[o.Instance]++
		}
	}
	return w
}

// switchedAt is when model's traffic was off the instances in gone for
// good after the fault at fault: the first good answer by another
// instance after both the fault and the last answer, right or wrong, of
// any instance in gone. Zero when no other instance answered since.
func (t *tally) switchedAt(model string, gone map[string]bool, fault time.Time) time.Time {
	outs := t.outcomes(model)
	after := fault
	for _, o := range outs {
		if gone[o.Instance] && o.At.After(after) {
			after = o.At
		}
	}
	for _, o := range outs {
		if !o.failed() && !gone[o.Instance] && o.At.After(after) {
			return o.At
		}
	}
	return time.Time{}
}

// failedSplit counts model's failed requests that came back at or after
// from and before to: those sent before at and those sent at or after it.
func (t *tally) failedSplit(model string, from, to, at time.Time) (before, after int) {
	for _, o := range t.outcomes(model) {
		switch {
		case !o.failed() || o.At.Before(from) || !o.At.Before(to):
		case o.Sent.Before(at):
			before++
		default:
			after++
		}
	}
	return before, after
}

// modelNames are the models with outcomes, sorted.
func (t *tally) modelNames() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Sorted(maps.Keys(t.models))
}

// series is a model's requests per bucket from start: answers per
// instance and failures, for the report's timeline.
type series struct {
	Bucket    time.Duration
	Instances map[string][]int
	Failed    []int
}

// series buckets model's outcomes from start until end.
func (t *tally) series(model string, start, end time.Time, bucket time.Duration) series {
	n := int(end.Sub(start)/bucket) + 1
	s := series{Bucket: bucket, Instances: map[string][]int{}, Failed: make([]int, n)}
	for _, o := range t.outcomes(model) {
		i := int(o.At.Sub(start) / bucket)
		if o.At.Before(start) || i >= n {
			continue
		}
		if o.failed() {
			s.Failed[i]++
			continue
		}
		if s.Instances[o.Instance] == nil {
			s.Instances[o.Instance] = make([]int, n)
		}
		s.Instances[o.Instance][i]++
	}
	return s
}
