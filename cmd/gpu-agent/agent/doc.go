// Package agent owns the gpu-agent's work on one node: it reads the node's
// GPUs through NVML (any nvml.Interface: the real library, or go-nvml's mock
// in tests), watches them for XID critical errors, and serves what it read as
// Prometheus metrics named and labelled as dcgm-exporter names and labels
// them, so the control plane can scrape either this agent or dcgm-exporter.
//
// Metrics are read on scrape: the collector queries every GPU while
// /metrics is being served, so a value is never older than the scrape, and
// inferxds_gpu_up says whether the GPU answered that very scrape. There is
// no refresh loop; the only goroutine is the XID watcher, because XIDs are
// events that happen between scrapes.
//
// A query that fails is not turned into a zero: its value is left out and the
// GPU shows inferxds_gpu_up 0. A query the GPU does not support (ECC on a
// board without it, say) is left out too, but does not mark the GPU down.
// The GPUs are the ones NVML listed at Start; a GPU added later needs a
// restart.
//
// The package must not read configuration files or flags, or decide process
// exit codes: cmd/gpu-agent does that.
package agent
