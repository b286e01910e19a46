// Package telemetry turns GPU and model-server metrics into fleet facts: it
// scrapes the Prometheus endpoints a fleet names (nodes' telemetryURL,
// instances' metricsURL), merges the latest samples into a copy of the fleet
// (GPU utilization, memory, XID and ECC counters, GPU health, instance load,
// telemetry age, telemetry-driven weights) and takes instances off faulty
// GPUs out of service.
//
// Apply, Targets and ParseText are pure: no clocks, goroutines or I/O. The
// Scraper and Runner own the HTTP client, goroutines and the clock. Nothing
// here translates to xDS or talks to the controller except through the
// publish function it is given.
//
// Rules:
//   - Stale or missing telemetry is unknown: a node's GPUs get health
//     unknown, its instances keep the fleet file's state. Staleness never
//     drains by itself, but neither does it undo a drain: the faults a
//     node's last sample reported stay in force until a fresh sample
//     clears them, so an agent that dies with its GPU does not send
//     traffic back to the dead instance.
//   - A GPU is faulty on a critical XID (CriticalXIDs; the last XID a
//     dcgm-exporter reports or any count of one in the gpu-agent's
//     inferxds_gpu_xid_errors_total), an uncorrectable (double-bit) ECC
//     error count above zero, or when a fresh scrape of its node lacks it
//     or reports inferxds_gpu_up 0. Instances using a faulty GPU become
//     unhealthy and leave EDS.
//   - Faults are sticky for as long as the exporter keeps reporting them:
//     XID and volatile ECC counts only return to zero when the agent or the
//     driver restarts (after a GPU reset), and that is when the GPU and its
//     instances return to service.
//   - A scrape of a node that yields no GPU metrics at all is treated as
//     unusable (unknown), not as every GPU gone, so a mistyped URL cannot
//     drain a node.
//   - A weight set in the fleet file is pinned. Telemetry sets the weight
//     only of serving instances the file leaves unweighted, and only while
//     their GPUs or model server report fresh load signals; weights.Weigher
//     maps an idle instance to 128, while an unweighted instance without
//     telemetry counts as 1, so give all instances of a model telemetry or
//     none.
package telemetry
