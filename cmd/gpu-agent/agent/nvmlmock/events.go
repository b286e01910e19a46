package nvmlmock

import (
	"fmt"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
)

// eventBuffer is how many undelivered events one set holds; InjectXID fails
// rather than block when it is full.
const eventBuffer = 64

// eventSet is go-nvml's mock event set, delivering injected events.
type eventSet struct {
	mock.EventSet
	events chan nvml.EventData
}

func (m *Machine) createEventSet() (nvml.EventSet, nvml.Return) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.driverErr != nvml.SUCCESS {
		return nil, m.driverErr
	}
	s := &eventSet{events: make(chan nvml.EventData, eventBuffer)}
	s.WaitFunc = s.wait
	s.FreeFunc = func() nvml.Return { return m.freeEventSet(s) }
	m.eventSets[s] = true
	return s, nvml.SUCCESS
}

// wait is nvmlEventSetWait: the next event, or ERROR_TIMEOUT after
// timeoutMillis.
func (s *eventSet) wait(timeoutMillis uint32) (nvml.EventData, nvml.Return) {
	timer := time.NewTimer(time.Duration(timeoutMillis) * time.Millisecond)
	defer timer.Stop()
	select {
	case e := <-s.events:
		return e, nvml.SUCCESS
	case <-timer.C:
		return nvml.EventData{}, nvml.ERROR_TIMEOUT
	}
}

func (m *Machine) freeEventSet(s *eventSet) nvml.Return {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.eventSets[s] {
		return nvml.ERROR_INVALID_ARGUMENT
	}
	delete(m.eventSets, s)
	for _, g := range m.gpus {
		g.eventSets = without(g.eventSets, s)
	}
	return nvml.SUCCESS
}

func without(sets []*eventSet, s *eventSet) []*eventSet {
	var kept []*eventSet
	for _, set := range sets {
		if set != s {
			kept = append(kept, set)
		}
	}
	return kept
}

func (m *Machine) registerEvents(i int, types uint64, set nvml.EventSet) nvml.Return {
	s, ok := set.(*eventSet)
	if !ok || types&^supportedEvents != 0 {
		return nvml.ERROR_NOT_SUPPORTED
	}
	return m.query(i, func(g *gpuState) { g.eventSets = append(g.eventSets, s) })
}

// InjectXID raises XID critical error xid on GPU i (79: the GPU has fallen
// off the bus; 48: a double-bit ECC error; 31: a memory page fault), as the
// driver would: an event to every event set GPU i is registered with. It
// fails when no set is listening, so a test learns the agent is not
// watching. The GPU keeps answering; call RemoveGPU too for a 79 that takes
// it away.
func (m *Machine) InjectXID(i int, xid uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.gpus[i]
	if len(g.eventSets) == 0 {
		return fmt.Errorf("%s: no event set is registered for its XID events", m.gpuName(i))
	}
	event := nvml.EventData{Device: g.dev, EventType: nvml.EventTypeXidCriticalError, EventData: xid}
	for _, s := range g.eventSets {
		select {
		case s.events <- event:
		default:
			return fmt.Errorf("%s: XID %d not delivered: %d events are waiting already", m.gpuName(i), xid, eventBuffer)
		}
	}
	return nil
}
