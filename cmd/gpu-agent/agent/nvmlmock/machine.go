// Package nvmlmock is test support built on go-nvml's mock: a DGX A100
// (github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100, eight A100-SXM4-40GB
// GPUs) whose load, ECC counters, compute processes, XID events and presence
// can be changed while a gpu-agent reads it through nvml.Interface.
//
// dgxa100 leaves most of the mock's function fields nil and reads some of its
// state without a lock; Machine fills the fields the agent calls with
// functions that read Machine's own state under its lock, so tests can change
// it from any goroutine. Changes go through NVML's interface, never around
// the agent. The package is for tests (unit and e2e) only; the gpu-agent
// binary must not import it.
package nvmlmock

import (
	"fmt"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
)

// Load is what a GPU reports about how busy it is.
type Load struct {
	GPUUtilPct      uint32 // nvml.Utilization.Gpu
	MemoryUtilPct   uint32 // nvml.Utilization.Memory
	MemoryUsedMiB   uint64 // free is the rest of the GPU's memory
	TemperatureC    uint32
	PowerMilliwatts uint32
}

// idle is every GPU's Load until SetLoad changes it.
var idle = Load{TemperatureC: 30, PowerMilliwatts: 55_000}

// supportedEvents are the event types an A100 reports as supported.
const supportedEvents = nvml.EventTypeXidCriticalError | nvml.EventTypeSingleBitEccError | nvml.EventTypeDoubleBitEccError

// Machine is a mock DGX A100. Its methods are safe to call concurrently with
// an agent reading it.
type Machine struct {
	server *dgxa100.Server

	mu        sync.Mutex
	gpus      []*gpuState
	driverErr nvml.Return // returned by system-level calls when not SUCCESS
	inits     int         // Init calls not yet matched by Shutdown
	eventSets map[*eventSet]bool
}

type eccKey struct {
	errType nvml.MemoryErrorType
	counter nvml.EccCounterType
}

type gpuState struct {
	dev       *dgxa100.Device
	load      Load
	ecc       map[eccKey]uint64
	processes []nvml.ProcessInfo
	lost      bool
	eventSets []*eventSet // the sets this GPU's XIDs are delivered to
}

// NewDGXA100 returns a machine with eight idle A100 GPUs, no processes, no
// ECC errors and a working driver.
func NewDGXA100() *Machine {
	m := &Machine{server: dgxa100.New(), driverErr: nvml.SUCCESS, eventSets: map[*eventSet]bool{}}
	for i, d := range m.server.Devices {
		dev := d.(*dgxa100.Device)
		m.gpus = append(m.gpus, &gpuState{dev: dev, load: idle, ecc: map[eccKey]uint64{}})
		m.fillDevice(i, dev)
	}
	m.fillServer()
	return m
}

// NVML is the machine as the agent sees it.
func (m *Machine) NVML() nvml.Interface { return m.server }

// NumGPUs is how many GPUs the machine was built with, lost ones included.
func (m *Machine) NumGPUs() int { return len(m.gpus) }

// UUID is GPU i's UUID (random per Machine).
func (m *Machine) UUID(i int) string { return m.gpus[i].dev.UUID }

// ModelName is GPU i's name as NVML reports it.
func (m *Machine) ModelName(i int) string { return m.gpus[i].dev.Config.Name }

// SetLoad sets what GPU i reports as its utilization, memory use,
// temperature and power draw.
func (m *Machine) SetLoad(i int, l Load) {
	m.update(i, func(g *gpuState) { g.load = l })
}

// AddECCErrors adds n errors of errType (nvml.MEMORY_ERROR_TYPE_UNCORRECTED
// or _CORRECTED) to GPU i's volatile and aggregate counters.
func (m *Machine) AddECCErrors(i int, errType nvml.MemoryErrorType, n uint64) {
	m.update(i, func(g *gpuState) {
		g.ecc[eccKey{errType, nvml.VOLATILE_ECC}] += n
		g.ecc[eccKey{errType, nvml.AGGREGATE_ECC}] += n
	})
}

// SetProcesses replaces the compute processes running on GPU i.
func (m *Machine) SetProcesses(i int, processes ...nvml.ProcessInfo) {
	m.update(i, func(g *gpuState) { g.processes = processes })
}

// RemoveGPU makes GPU i fall off the bus: the device count drops by one,
// looking its handle up fails, and every query on a handle already held
// returns nvml.ERROR_GPU_IS_LOST. Indexes of the other GPUs do not change.
func (m *Machine) RemoveGPU(i int) {
	m.update(i, func(g *gpuState) { g.lost = true })
}

// SetDriverError makes system-level calls (device count, handle lookups)
// return ret, as when the driver stops answering; nvml.SUCCESS restores them.
func (m *Machine) SetDriverError(ret nvml.Return) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.driverErr = ret
}

// Initialized says whether NVML has been Init'ed more often than Shut down.
func (m *Machine) Initialized() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.inits > 0
}

// OpenEventSets is how many event sets were created and not yet freed.
func (m *Machine) OpenEventSets() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.eventSets)
}

func (m *Machine) update(i int, change func(*gpuState)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	change(m.gpus[i])
}

// query runs read on GPU i's state unless the GPU is lost.
func (m *Machine) query(i int, read func(*gpuState)) nvml.Return {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.gpus[i]
	if g.lost {
		return nvml.ERROR_GPU_IS_LOST
	}
	read(g)
	return nvml.SUCCESS
}

func (m *Machine) fillServer() {
	s := m.server
	s.InitFunc = func() nvml.Return {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.inits++
		return nvml.SUCCESS
	}
	s.ShutdownFunc = func() nvml.Return {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.inits == 0 {
			return nvml.ERROR_UNINITIALIZED
		}
		m.inits--
		return nvml.SUCCESS
	}
	s.DeviceGetCountFunc = m.deviceCount
	s.DeviceGetHandleByIndexFunc = m.handleByIndex
	s.DeviceGetHandleByUUIDFunc = m.handleByUUID
	s.EventSetCreateFunc = m.createEventSet
}

func (m *Machine) deviceCount() (int, nvml.Return) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.driverErr != nvml.SUCCESS {
		return 0, m.driverErr
	}
	present := 0
	for _, g := range m.gpus {
		if !g.lost {
			present++
		}
	}
	return present, nvml.SUCCESS
}

func (m *Machine) handleByIndex(index int) (nvml.Device, nvml.Return) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if index < 0 || index >= len(m.gpus) {
		return nil, nvml.ERROR_INVALID_ARGUMENT
	}
	return m.handleLocked(m.gpus[index])
}

func (m *Machine) handleByUUID(uuid string) (nvml.Device, nvml.Return) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, g := range m.gpus {
		if g.dev.UUID == uuid {
			return m.handleLocked(g)
		}
	}
	return nil, nvml.ERROR_NOT_FOUND
}

func (m *Machine) handleLocked(g *gpuState) (nvml.Device, nvml.Return) {
	switch {
	case m.driverErr != nvml.SUCCESS:
		return nil, m.driverErr
	case g.lost:
		return nil, nvml.ERROR_GPU_IS_LOST
	default:
		return g.dev, nvml.SUCCESS
	}
}

// fillDevice sets the function fields of GPU i that the agent calls.
func (m *Machine) fillDevice(i int, dev *dgxa100.Device) {
	dev.GetUUIDFunc = func() (uuid string, ret nvml.Return) {
		return dev.UUID, m.query(i, func(*gpuState) {})
	}
	dev.GetNameFunc = func() (string, nvml.Return) {
		return dev.Config.Name, m.query(i, func(*gpuState) {})
	}
	dev.GetMemoryInfoFunc = func() (mem nvml.Memory, ret nvml.Return) {
		ret = m.query(i, func(g *gpuState) { mem = memoryInfo(dev, g.load) })
		return mem, ret
	}
	dev.GetUtilizationRatesFunc = func() (u nvml.Utilization, ret nvml.Return) {
		ret = m.query(i, func(g *gpuState) { u = nvml.Utilization{Gpu: g.load.GPUUtilPct, Memory: g.load.MemoryUtilPct} })
		return u, ret
	}
	dev.GetTemperatureFunc = func(nvml.TemperatureSensors) (celsius uint32, ret nvml.Return) {
		ret = m.query(i, func(g *gpuState) { celsius = g.load.TemperatureC })
		return celsius, ret
	}
	dev.GetPowerUsageFunc = func() (milliwatts uint32, ret nvml.Return) {
		ret = m.query(i, func(g *gpuState) { milliwatts = g.load.PowerMilliwatts })
		return milliwatts, ret
	}
	dev.GetTotalEccErrorsFunc = func(errType nvml.MemoryErrorType, counter nvml.EccCounterType) (n uint64, ret nvml.Return) {
		ret = m.query(i, func(g *gpuState) { n = g.ecc[eccKey{errType, counter}] })
		return n, ret
	}
	dev.GetComputeRunningProcessesFunc = func() (procs []nvml.ProcessInfo, ret nvml.Return) {
		ret = m.query(i, func(g *gpuState) { procs = append([]nvml.ProcessInfo(nil), g.processes...) })
		return procs, ret
	}
	dev.GetSupportedEventTypesFunc = func() (uint64, nvml.Return) {
		return supportedEvents, m.query(i, func(*gpuState) {})
	}
	dev.RegisterEventsFunc = func(types uint64, set nvml.EventSet) nvml.Return {
		return m.registerEvents(i, types, set)
	}
}

func memoryInfo(dev *dgxa100.Device, l Load) nvml.Memory {
	total := dev.MemoryInfo.Total
	used := min(l.MemoryUsedMiB<<20, total)
	return nvml.Memory{Total: total, Used: used, Free: total - used}
}

// gpuName names GPU i in errors.
func (m *Machine) gpuName(i int) string { return fmt.Sprintf("GPU %d (%s)", i, m.UUID(i)) }
