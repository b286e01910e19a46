package agent

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// xidLog is the XID history of the GPUs being watched, by UUID. A GPU that
// is not in it is not watched, so its XID metrics are left out rather than
// shown as "no XID".
type xidLog struct {
	mu      sync.Mutex
	byUUID  map[string]*xidHistory
	handles map[nvml.Device]string // handle -> UUID
}

// xidHistory is one GPU's XIDs since the agent started.
type xidHistory struct {
	last   uint64            // the latest XID; 0 before the first
	counts map[uint64]uint64 // XID -> how many times
}

func newXIDLog() *xidLog {
	return &xidLog{byUUID: map[string]*xidHistory{}, handles: map[nvml.Device]string{}}
}

// watch starts the history of the GPU dev. Events are matched to GPUs by
// handle, not by asking the device its UUID: after an XID such as 79 (fallen
// off the bus) the device no longer answers.
func (l *xidLog) watch(dev nvml.Device, uuid string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.handles[dev] = uuid
	l.byUUID[uuid] = &xidHistory{counts: map[uint64]uint64{}}
}

// record notes xid on the GPU dev, and returns that GPU's UUID or false
// when dev is not watched.
func (l *xidLog) record(dev nvml.Device, xid uint64) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	uuid, ok := l.handles[dev]
	if !ok {
		return "", false
	}
	h := l.byUUID[uuid]
	h.last = xid
	h.counts[xid]++
	return uuid, true
}

// history returns a copy of the GPU's history, and false when it is not
// watched.
func (l *xidLog) history(uuid string) (xidHistory, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.byUUID[uuid]
	if !ok {
		return xidHistory{}, false
	}
	return xidHistory{last: h.last, counts: maps.Clone(h.counts)}, true
}

// startXIDWatcher registers every GPU that supports it for XID critical
// error events and starts the goroutine that waits for them. Without an
// event set, or with no GPU registered, there is nothing to wait for.
func (a *Agent) startXIDWatcher(ctx context.Context, pollTimeout time.Duration) {
	ctx, a.stopWatcher = context.WithCancel(ctx)
	set, ret := a.lib.EventSetCreate()
	if ret != nvml.SUCCESS {
		a.log.Warn("XID events are not watched: cannot create an NVML event set", "err", ret)
		return
	}
	if !a.registerXIDEvents(set) {
		if ret := set.Free(); ret != nvml.SUCCESS {
			a.log.Warn("free XID event set", "err", ret)
		}
		return
	}
	a.eventSet = set
	a.watcherDone.Add(1)
	go func() {
		defer a.watcherDone.Done()
		a.watchXIDs(ctx, set, pollTimeout)
	}()
}

// registerXIDEvents says whether at least one GPU was registered.
func (a *Agent) registerXIDEvents(set nvml.EventSet) bool {
	registered := false
	for _, g := range a.gpus {
		dev, err := registerXID(a.lib, g, set)
		if err != nil {
			a.log.Warn("XID events are not watched on this GPU", "err", err)
			continue
		}
		a.xids.watch(dev, g.uuid)
		registered = true
	}
	return registered
}

// registerXID returns the handle of the GPU it registered.
func registerXID(lib nvml.Interface, g gpu, set nvml.EventSet) (nvml.Device, error) {
	dev, ret := lib.DeviceGetHandleByUUID(g.uuid)
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("GPU %d (%s): handle: %v", g.index, g.uuid, ret)
	}
	supported, ret := dev.GetSupportedEventTypes()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("GPU %d (%s): supported event types: %v", g.index, g.uuid, ret)
	}
	if supported&nvml.EventTypeXidCriticalError == 0 {
		return nil, fmt.Errorf("GPU %d (%s): XID critical error events are not supported", g.index, g.uuid)
	}
	if ret := dev.RegisterEvents(nvml.EventTypeXidCriticalError, set); ret != nvml.SUCCESS {
		return nil, fmt.Errorf("GPU %d (%s): register XID events: %v", g.index, g.uuid, ret)
	}
	return dev, nil
}

// watchXIDs waits for events until ctx ends. Each wait returns within
// pollTimeout, which is how long stopping can take. After an error other
// than a timeout it pauses pollTimeout, so a broken event set is logged
// once per pollTimeout instead of in a busy loop.
func (a *Agent) watchXIDs(ctx context.Context, set nvml.EventSet, pollTimeout time.Duration) {
	timeoutMillis := uint32(pollTimeout.Milliseconds())
	for ctx.Err() == nil {
		event, ret := set.Wait(timeoutMillis)
		switch ret {
		case nvml.SUCCESS:
			a.recordXID(event)
		case nvml.ERROR_TIMEOUT:
		default:
			a.log.Warn("waiting for XID events", "err", ret)
			pause(ctx, pollTimeout)
		}
	}
}

func (a *Agent) recordXID(event nvml.EventData) {
	if event.EventType != nvml.EventTypeXidCriticalError {
		return
	}
	uuid, ok := a.xids.record(event.Device, event.EventData)
	if !ok {
		a.log.Warn("XID critical error on a GPU that is not watched", "xid", event.EventData)
		return
	}
	a.log.Warn("XID critical error", "gpu", uuid, "xid", event.EventData)
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
