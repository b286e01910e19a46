package agent

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// field is one per-GPU value read from NVML, in dcgm-exporter's unit.
type field int

const (
	fieldGPUUtil     field = iota // %
	fieldMemCopyUtil              // %
	fieldFBTotal                  // MiB
	fieldFBUsed                   // MiB
	fieldFBFree                   // MiB
	fieldGPUTemp                  // °C
	fieldPowerUsage               // W
	fieldECCDBEVolTotal
	fieldECCSBEVolTotal
	fieldECCDBEAggTotal
	fieldECCSBEAggTotal
	fieldCount
)

// reading is what one GPU answered in one scrape. values holds only the
// fields that were read; failures holds the queries that failed.
type reading struct {
	gpu       gpu
	values    map[field]float64
	processes []process
	failures  []error
}

// up says whether the GPU answered every query it supports.
func (r reading) up() bool { return len(r.failures) == 0 }

// process is one compute process on a GPU. usedBytes is nil when NVML cannot
// say (it cannot, for instance, in some virtualised setups).
type process struct {
	pid       uint32
	name      string
	usedBytes *uint64
}

// query reads some fields of one GPU into r; it writes nothing unless it
// returns SUCCESS.
type query struct {
	what string
	read func(dev nvml.Device, r *reading) nvml.Return
}

var queries = []query{
	{"memory info", readMemory},
	{"utilization", readUtilization},
	{"temperature", readTemperature},
	{"power usage", readPower},
	{"volatile uncorrectable ECC", eccQuery(nvml.MEMORY_ERROR_TYPE_UNCORRECTED, nvml.VOLATILE_ECC, fieldECCDBEVolTotal)},
	{"volatile corrected ECC", eccQuery(nvml.MEMORY_ERROR_TYPE_CORRECTED, nvml.VOLATILE_ECC, fieldECCSBEVolTotal)},
	{"aggregate uncorrectable ECC", eccQuery(nvml.MEMORY_ERROR_TYPE_UNCORRECTED, nvml.AGGREGATE_ECC, fieldECCDBEAggTotal)},
	{"aggregate corrected ECC", eccQuery(nvml.MEMORY_ERROR_TYPE_CORRECTED, nvml.AGGREGATE_ECC, fieldECCSBEAggTotal)},
	{"compute processes", readProcesses},
}

// read queries every GPU listed at Start, in index order.
func (a *Agent) read() []reading {
	readings := make([]reading, len(a.gpus))
	for i, g := range a.gpus {
		readings[i] = a.readGPU(g)
	}
	return readings
}

func (a *Agent) readGPU(g gpu) reading {
	r := reading{gpu: g, values: make(map[field]float64, fieldCount)}
	dev, ret := a.lib.DeviceGetHandleByUUID(g.uuid)
	if ret != nvml.SUCCESS {
		r.fail("handle", ret)
		return r
	}
	for _, q := range queries {
		if ret := q.read(dev, &r); ret != nvml.SUCCESS && ret != nvml.ERROR_NOT_SUPPORTED {
			r.fail(q.what, ret)
		}
	}
	return r
}

func (r *reading) fail(what string, ret nvml.Return) {
	r.failures = append(r.failures, fmt.Errorf("GPU %d (%s): %s: %v", r.gpu.index, r.gpu.uuid, what, ret))
}

func (r reading) err() error { return errors.Join(r.failures...) }

func readMemory(dev nvml.Device, r *reading) nvml.Return {
	mem, ret := dev.GetMemoryInfo()
	if ret == nvml.SUCCESS {
		r.values[fieldFBTotal] = mebibytes(mem.Total)
		r.values[fieldFBUsed] = mebibytes(mem.Used)
		r.values[fieldFBFree] = mebibytes(mem.Free)
	}
	return ret
}

// mebibytes truncates as dcgm-exporter's integer MiB fields do.
func mebibytes(bytes uint64) float64 { return float64(bytes >> 20) }

func readUtilization(dev nvml.Device, r *reading) nvml.Return {
	util, ret := dev.GetUtilizationRates()
	if ret == nvml.SUCCESS {
		r.values[fieldGPUUtil] = float64(util.Gpu)
		r.values[fieldMemCopyUtil] = float64(util.Memory)
	}
	return ret
}

func readTemperature(dev nvml.Device, r *reading) nvml.Return {
	celsius, ret := dev.GetTemperature(nvml.TEMPERATURE_GPU)
	if ret == nvml.SUCCESS {
		r.values[fieldGPUTemp] = float64(celsius)
	}
	return ret
}

func readPower(dev nvml.Device, r *reading) nvml.Return {
	milliwatts, ret := dev.GetPowerUsage()
	if ret == nvml.SUCCESS {
		r.values[fieldPowerUsage] = float64(milliwatts) / 1000
	}
	return ret
}

func eccQuery(errType nvml.MemoryErrorType, counter nvml.EccCounterType, f field) func(nvml.Device, *reading) nvml.Return {
	return func(dev nvml.Device, r *reading) nvml.Return {
		count, ret := dev.GetTotalEccErrors(errType, counter)
		if ret == nvml.SUCCESS {
			r.values[f] = float64(count)
		}
		return ret
	}
}

// readProcesses lists the GPU's compute processes, one per PID: NVML lists a
// process once per MIG instance it runs on, and its memory is summed.
func readProcesses(dev nvml.Device, r *reading) nvml.Return {
	infos, ret := dev.GetComputeRunningProcesses()
	if ret != nvml.SUCCESS {
		return ret
	}
	byPID := map[uint32]*process{}
	for _, info := range infos {
		p, seen := byPID[info.Pid]
		if !seen {
			p = &process{pid: info.Pid, name: processName(info.Pid)}
			byPID[info.Pid] = p
		}
		p.addMemory(info.UsedGpuMemory)
	}
	for _, p := range byPID {
		r.processes = append(r.processes, *p)
	}
	return ret
}

// memoryNotAvailable is NVML_VALUE_NOT_AVAILABLE as an unsigned long long.
const memoryNotAvailable = ^uint64(0)

func (p *process) addMemory(bytes uint64) {
	if bytes == memoryNotAvailable {
		return
	}
	if p.usedBytes == nil {
		p.usedBytes = new(uint64)
	}
	*p.usedBytes += bytes
}

// processName is the command name from /proc/<pid>/comm, or "" when it
// cannot be read (the process has exited, or lives in another PID namespace
// than the agent: run the agent with the host's PID namespace to see names).
func processName(pid uint32) string {
	comm, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/comm")
	if err != nil {
		return ""
	}
	// A label value must be UTF-8, and comm is whatever bytes the process set.
	return strings.ToValidUTF8(strings.TrimSpace(string(comm)), "\uFFFD")
}
