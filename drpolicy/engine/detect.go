package engine

import (
	"sort"
	"time"

	"github.com/inferxds/inferxds/drpolicy/dr"
)

// ProbeResult is one probe of one instance in a round.
type ProbeResult struct {
	Instance string
	Node     string
	Err      error
	// Corrupt is a deep probe that got a wrong answer: a failure at once.
	Corrupt bool
}

// Round is what a round of probes found.
type Round struct {
	Failures  []dr.Failure
	Recovered []string
	// Held is a round the guard discarded: too many instances failed at
	// once to trust the probes (the control plane's own network trouble).
	Held bool
}

// Detector turns probe rounds into failures: an instance is down after
// Threshold consecutive failed probes, and back after one good one.
type Detector struct {
	Threshold int
	// GuardShare is the share of probed instances failing in one round
	// above which the round is held; 0 disables the guard.
	GuardShare float64
	failed     map[string]int
	down       map[string]bool
}

// NewDetector returns a Detector with no instance down.
func NewDetector(threshold int, guardShare float64) *Detector {
	return &Detector{Threshold: max(threshold, 1), GuardShare: guardShare, failed: map[string]int{}, down: map[string]bool{}}
}

// Observe folds one round of probes in.
func (d *Detector) Observe(results []ProbeResult, now time.Time) Round {
	if d.guardHolds(results) {
		return Round{Held: true}
	}
	var r Round
	var newlyDown []ProbeResult
	for _, p := range results {
		switch {
		case p.Err == nil && !p.Corrupt:
			d.failed[p.Instance] = 0
			if d.down[p.Instance] {
				delete(d.down, p.Instance)
				r.Recovered = append(r.Recovered, p.Instance)
			}
		case d.down[p.Instance]:
		case p.Corrupt:
			d.down[p.Instance] = true
			r.Failures = append(r.Failures, failure(p, dr.FailureModelCorruption, now))
		default:
			d.failed[p.Instance]++
			if d.failed[p.Instance] >= d.Threshold {
				d.down[p.Instance] = true
				newlyDown = append(newlyDown, p)
			}
		}
	}
	deadNodes := nodesAllFailing(results)
	for _, p := range newlyDown {
		typ := dr.FailureProbe
		if deadNodes[p.Node] {
			typ = dr.FailureNodeDown
		}
		r.Failures = append(r.Failures, failure(p, typ, now))
	}
	sort.Slice(r.Failures, func(i, j int) bool { return r.Failures[i].Instance < r.Failures[j].Instance })
	sort.Strings(r.Recovered)
	return r
}

// Forget drops what the detector knows of an instance: one taken out of
// service is counted afresh once it is back.
func (d *Detector) Forget(instance string) {
	delete(d.failed, instance)
	delete(d.down, instance)
}

func (d *Detector) guardHolds(results []ProbeResult) bool {
	if d.GuardShare <= 0 || len(results) < 2 {
		return false
	}
	failing := 0
	for _, p := range results {
		if p.Err != nil {
			failing++
		}
	}
	return float64(failing) > d.GuardShare*float64(len(results))
}

// nodesAllFailing names the nodes with more than one probed instance, all
// of which failed this round.
func nodesAllFailing(results []ProbeResult) map[string]bool {
	total, failing := map[string]int{}, map[string]int{}
	for _, p := range results {
		if p.Node == "" {
			continue
		}
		total[p.Node]++
		if p.Err != nil {
			failing[p.Node]++
		}
	}
	dead := map[string]bool{}
	for n, t := range total {
		if t > 1 && failing[n] == t {
			dead[n] = true
		}
	}
	return dead
}

func failure(p ProbeResult, typ dr.FailureType, now time.Time) dr.Failure {
	f := dr.Failure{Instance: p.Instance, Type: typ, At: now}
	if p.Err != nil {
		f.Detail = p.Err.Error()
	}
	return f
}
