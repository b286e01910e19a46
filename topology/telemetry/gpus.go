package telemetry

import (
	"cmp"
	"math"
	"slices"
	"strconv"

	"github.com/inferxds/inferxds/topology"
)

// Metric names read from a node's telemetry: dcgm-exporter's, which the
// gpu-agent also serves, plus the agent's own.
const (
	metricGPUUtil  = "DCGM_FI_DEV_GPU_UTIL"
	metricFBUsed   = "DCGM_FI_DEV_FB_USED" // MiB
	metricFBFree   = "DCGM_FI_DEV_FB_FREE" // MiB
	metricLastXID  = "DCGM_FI_DEV_XID_ERRORS"
	metricECCDBE   = "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"
	metricGPUUp    = "inferxds_gpu_up"
	metricXIDTotal = "inferxds_gpu_xid_errors_total"
	labelGPUIndex  = "gpu"
	labelGPUUUID   = "UUID"
	labelXID       = "xid"
)

// CriticalXIDs are the XID codes that take a GPU out of service: errors
// after which NVIDIA's XID catalog says the GPU needs a reset or a reboot
// (or is gone), not the ones an application causes.
//
//	48  double-bit ECC error          62  internal micro-controller halt
//	63  ECC page retirement / row remap recorded (reset to apply)
//	64  ECC page retirement / row remap failure
//	74  NVLink error                  79  GPU has fallen off the bus
//	92  high single-bit ECC rate      94  contained ECC error
//	95  uncontained ECC error         119 GSP RPC timeout
//	120 GSP error
var CriticalXIDs = []int64{48, 62, 63, 64, 74, 79, 92, 94, 95, 119, 120}

// IsCriticalXID reports whether xid is in CriticalXIDs.
func IsCriticalXID(xid int64) bool { return slices.Contains(CriticalXIDs, xid) }

// gpuReading is what one scrape says about one GPU.
type gpuReading struct {
	uuid   string
	values map[string]float64 // per-GPU metric name → value
	// xidCounts is inferxds_gpu_xid_errors_total by XID code.
	xidCounts map[int64]float64
}

// gpuReadings groups a node scrape's per-GPU series by the gpu (index)
// label; series without a numeric gpu label are ignored.
func gpuReadings(m Metrics) map[int]*gpuReading {
	readings := map[int]*gpuReading{}
	reading := func(s Series) *gpuReading {
		index, err := strconv.Atoi(s.Labels[labelGPUIndex])
		if err != nil {
			return nil
		}
		r := readings[index]
		if r == nil {
			r = &gpuReading{values: map[string]float64{}, xidCounts: map[int64]float64{}}
			readings[index] = r
		}
		r.uuid = cmp.Or(r.uuid, s.Labels[labelGPUUUID])
		return r
	}
	for _, name := range []string{metricGPUUtil, metricFBUsed, metricFBFree, metricLastXID, metricECCDBE, metricGPUUp} {
		for _, s := range m[name] {
			if r := reading(s); r != nil {
				r.values[name] = s.Value
			}
		}
	}
	for _, s := range m[metricXIDTotal] {
		xid, err := strconv.ParseInt(s.Labels[labelXID], 10, 64)
		if r := reading(s); r != nil && err == nil {
			r.xidCounts[xid] += s.Value
		}
	}
	return readings
}

// Reason says why a GPU was taken out of service; it labels
// inferxds_gpu_drains_total.
type Reason string

// Fault reasons.
const (
	ReasonXID  Reason = "xid"  // a critical XID error
	ReasonECC  Reason = "ecc"  // an uncorrectable ECC error
	ReasonLost Reason = "lost" // missing from its node's scrape, or reported down
)

// fault says why the reading makes its GPU faulty, and the XID behind it;
// ok is false for a healthy GPU.
func (r *gpuReading) fault() (reason Reason, xid int64, ok bool) {
	if up, known := r.values[metricGPUUp]; known && up == 0 {
		return ReasonLost, 0, true
	}
	if last := int64(r.values[metricLastXID]); IsCriticalXID(last) {
		return ReasonXID, last, true
	}
	for _, code := range CriticalXIDs {
		if r.xidCounts[code] > 0 {
			return ReasonXID, code, true
		}
	}
	if r.values[metricECCDBE] > 0 {
		return ReasonECC, 0, true
	}
	return "", 0, false
}

// fill copies what the reading knows into g; fields it lacks keep the
// fleet file's values.
func (r *gpuReading) fill(g *topology.GPU) {
	setFrom(r.values, metricGPUUtil, &g.UtilizationPct, func(v float64) (float64, bool) { return v, v >= 0 && v <= 100 })
	setFrom(r.values, metricFBUsed, &g.MemoryUsedMiB, toInt)
	setFrom(r.values, metricLastXID, &g.LastXID, toInt)
	setFrom(r.values, metricECCDBE, &g.ECCUncorrectable, toInt)
	if free, ok := r.values[metricFBFree]; ok && g.MemoryTotalMiB == 0 {
		if n, ok := toInt(free); ok && n <= math.MaxInt64-g.MemoryUsedMiB {
			g.MemoryTotalMiB = g.MemoryUsedMiB + n
		}
	}
	if len(r.xidCounts) > 0 {
		var total float64
		for _, n := range r.xidCounts {
			total += n
		}
		if n, ok := toInt(total); ok {
			g.XIDErrors = n
		}
	}
}

// setFrom sets *field from the named value when convert accepts it: a value
// no GPU can report (NaN, out of range) leaves the fleet file's value.
func setFrom[T any](values map[string]float64, name string, field *T, convert func(float64) (T, bool)) {
	if v, ok := values[name]; ok {
		if converted, ok := convert(v); ok {
			*field = converted
		}
	}
}

// toInt converts a count or a size in MiB, refusing NaN, negative values and
// what int64 cannot hold.
func toInt(v float64) (int64, bool) {
	if !(v >= 0 && v < math.MaxInt64) {
		return 0, false
	}
	return int64(v), true
}
