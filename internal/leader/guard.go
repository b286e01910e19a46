package leader

import (
	"context"
	"errors"

	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/topology"
)

// ErrNotLeading is an action refused because this replica does not lead.
var ErrNotLeading = errors.New("not the leader: only the Lease holder actuates")

// Guard returns act bounded by leadership: an action starts only while
// this replica leads and is cancelled the moment the lease is lost. An act
// that reports failures still does.
func (e *Elector) Guard(act dr.Actuator) dr.Actuator {
	g := guarded{e: e, act: act}
	if r, ok := act.(dr.FailureReporter); ok {
		return guardedReporter{guarded: g, FailureReporter: r}
	}
	return g
}

type guarded struct {
	e   *Elector
	act dr.Actuator
}

type guardedReporter struct {
	guarded
	dr.FailureReporter
}

func (g guarded) Do(ctx context.Context, a dr.Action) (topology.Instance, error) {
	term := g.e.currentTerm()
	if term == nil {
		return topology.Instance{}, ErrNotLeading
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(term, func() { cancel(ErrNotLeading) })
	defer stop()
	in, err := g.act.Do(ctx, a)
	if err != nil && context.Cause(ctx) == ErrNotLeading {
		return topology.Instance{}, errors.Join(ErrNotLeading, err)
	}
	return in, err
}
