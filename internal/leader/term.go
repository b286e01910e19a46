package leader

import (
	"context"
	"time"

	"github.com/inferxds/inferxds/drpolicy/dr"
)

// startTerm begins leading once the state written last is on the hub, so
// the DR loop continues the incidents in flight; until then the replica
// does not lead. ctx ends when the lease is lost.
func (e *Elector) startTerm(ctx context.Context) {
	e.mu.Lock()
	e.starting = true // the state read now is newer than any still to come from the watch
	e.mu.Unlock()
	st, ok := e.readUntilDone(ctx)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.starting = false
	if ctx.Err() != nil {
		return
	}
	if ok {
		e.hub.DR.Publish(st)
	}
	e.term = ctx
	e.leadingGauge.Set(1)
	e.leading.Publish(true)
	e.log.Info("leading", "lease", e.ns+"/"+e.leaseName, "identity", e.id, "continued", ok)
}

// readUntilDone reads the state, again after each failure, until it has
// it or ctx ends.
func (e *Elector) readUntilDone(ctx context.Context) (*dr.State, bool) {
	for {
		st, ok, err := e.state.read(ctx)
		if err == nil || ctx.Err() != nil {
			return st, ok
		}
		e.log.Error("reading the DR state to continue from", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(e.lease * 2 / 15):
		}
	}
}

// endTerm stops leading (the term's context is cancelled already) and
// goes back to serving the state the leader writes.
func (e *Elector) endTerm() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.term == nil {
		return
	}
	e.term = nil
	e.leadingGauge.Set(0)
	e.leading.Publish(false)
	e.log.Warn("stopped leading", "lease", e.ns+"/"+e.leaseName, "identity", e.id)
	if st, ok := e.lastWritten(); ok {
		e.hub.DR.Publish(st)
	}
}

// adopt publishes a state the leader wrote, unless this replica leads or
// is starting to.
func (e *Elector) adopt(st *dr.State) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.term == nil && !e.starting {
		e.hub.DR.Publish(st)
	}
}

// writeStates writes each new DR state while leading; a failed write is
// tried again after the retry period.
func (e *Elector) writeStates(ctx context.Context) {
	states, stopStates := e.hub.DR.Subscribe()
	defer stopStates()
	terms, stopTerms := e.leading.Subscribe()
	defer stopTerms()
	var written uint64
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-states:
		case <-terms:
		case <-retry.C:
		}
		term := e.currentTerm()
		if term == nil {
			written = 0
			continue
		}
		st, version := e.hub.DR.Get()
		if version == 0 || version == written {
			continue
		}
		if err := e.state.write(term, st); err != nil {
			e.log.Error("writing the DR state", "error", err)
			e.hub.ReportSourceError(stateSource, err)
			retry.Reset(e.lease * 2 / 15)
			continue
		}
		e.hub.ReportSourceError(stateSource, nil)
		written = version
	}
}

// stateSource names DR state publication in source errors.
const stateSource = "dr-state"
