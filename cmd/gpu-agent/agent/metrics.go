package agent

import (
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// dcgmLabels are dcgm-exporter's labels, spelled as it spells them.
var dcgmLabels = []string{"gpu", "UUID", "device", "modelName", "Hostname"}

// gpuLabels identify a GPU on the metrics that are ours, not dcgm's.
var gpuLabels = []string{"gpu", "UUID"}

func dcgmDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, dcgmLabels, nil)
}

// fieldMetrics describes the dcgm metric of each field, indexed by field.
var fieldMetrics = [fieldCount]struct {
	desc      *prometheus.Desc
	valueType prometheus.ValueType
}{
	fieldGPUUtil:        {dcgmDesc("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %)."), prometheus.GaugeValue},
	fieldMemCopyUtil:    {dcgmDesc("DCGM_FI_DEV_MEM_COPY_UTIL", "Memory utilization (in %)."), prometheus.GaugeValue},
	fieldFBTotal:        {dcgmDesc("DCGM_FI_DEV_FB_TOTAL", "Framebuffer memory total (in MiB)."), prometheus.GaugeValue},
	fieldFBUsed:         {dcgmDesc("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB)."), prometheus.GaugeValue},
	fieldFBFree:         {dcgmDesc("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB)."), prometheus.GaugeValue},
	fieldGPUTemp:        {dcgmDesc("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C)."), prometheus.GaugeValue},
	fieldPowerUsage:     {dcgmDesc("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W)."), prometheus.GaugeValue},
	fieldECCDBEVolTotal: {dcgmDesc("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "Uncorrectable (double-bit) ECC errors since the driver loaded."), prometheus.CounterValue},
	fieldECCSBEVolTotal: {dcgmDesc("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "Corrected (single-bit) ECC errors since the driver loaded."), prometheus.CounterValue},
	fieldECCDBEAggTotal: {dcgmDesc("DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", "Uncorrectable (double-bit) ECC errors over the GPU's life."), prometheus.CounterValue},
	fieldECCSBEAggTotal: {dcgmDesc("DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", "Corrected (single-bit) ECC errors over the GPU's life."), prometheus.CounterValue},
}

var (
	lastXIDDesc = dcgmDesc("DCGM_FI_DEV_XID_ERRORS",
		"Value of the last XID critical error seen since the agent started; 0 before the first.")
	xidCountDesc = prometheus.NewDesc("inferxds_gpu_xid_errors_total",
		"XID critical errors seen since the agent started, by XID.", slices.Concat(gpuLabels, []string{"xid"}), nil)
	processMemoryDesc = prometheus.NewDesc("inferxds_gpu_process_memory_used_bytes",
		"GPU memory used by a compute process; process is its /proc comm name, empty when unreadable.",
		slices.Concat(gpuLabels, []string{"pid", "process"}), nil)
	upDesc = prometheus.NewDesc("inferxds_gpu_up",
		"1 when the GPU answered every query of this scrape, 0 when one failed (its values are left out).",
		gpuLabels, nil)
)

// collector reads the GPUs on every scrape.
type collector struct{ a *Agent }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range fieldMetrics {
		ch <- m.desc
	}
	ch <- lastXIDDesc
	ch <- xidCountDesc
	ch <- processMemoryDesc
	ch <- upDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range c.a.read() {
		if !r.up() {
			c.a.log.Warn("GPU query failed", "err", r.err())
		}
		c.collectReading(ch, r)
		c.collectXIDs(ch, r.gpu)
	}
}

func (c collector) collectReading(ch chan<- prometheus.Metric, r reading) {
	dcgm := c.dcgmLabelValues(r.gpu)
	for f, value := range r.values {
		m := fieldMetrics[f]
		ch <- prometheus.MustNewConstMetric(m.desc, m.valueType, value, dcgm...)
	}
	ids := gpuLabelValues(r.gpu)
	for _, p := range r.processes {
		if p.usedBytes != nil {
			pid := strconv.FormatUint(uint64(p.pid), 10)
			ch <- prometheus.MustNewConstMetric(processMemoryDesc, prometheus.GaugeValue, float64(*p.usedBytes), slices.Concat(ids, []string{pid, p.name})...)
		}
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, boolValue(r.up()), ids...)
}

// collectXIDs reports what the watcher saw. These are kept for a GPU that is
// down too: they are a record of events, not a reading, and the XID that
// took a GPU down is what an operator wants to see.
func (c collector) collectXIDs(ch chan<- prometheus.Metric, g gpu) {
	h, watched := c.a.xids.history(g.uuid)
	if !watched {
		return
	}
	ch <- prometheus.MustNewConstMetric(lastXIDDesc, prometheus.GaugeValue, float64(h.last), c.dcgmLabelValues(g)...)
	ids := gpuLabelValues(g)
	for xid, n := range h.counts {
		ch <- prometheus.MustNewConstMetric(xidCountDesc, prometheus.CounterValue, float64(n), slices.Concat(ids, []string{strconv.FormatUint(xid, 10)})...)
	}
}

func (c collector) dcgmLabelValues(g gpu) []string {
	return []string{strconv.Itoa(g.index), g.uuid, "nvidia" + strconv.Itoa(g.index), g.name, c.a.hostname}
}

func gpuLabelValues(g gpu) []string { return []string{strconv.Itoa(g.index), g.uuid} }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
