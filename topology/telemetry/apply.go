package telemetry

import (
	"slices"
	"time"

	"github.com/inferxds/inferxds/topology"
)

// Fault is a GPU taken out of service and the instances that left with it.
type Fault struct {
	Node   string
	GPU    int
	UUID   string
	Reason Reason
	// XID is the critical XID behind a ReasonXID fault.
	XID int64
	// Instances are those using the GPU, now unhealthy (sorted).
	Instances []string
}

// Targets are the URLs a fleet asks to be scraped, sorted, without repeats.
func Targets(f *topology.Fleet) []string {
	var urls []string
	for _, n := range f.Nodes {
		urls = append(urls, n.TelemetryURL)
	}
	for _, in := range f.Instances {
		urls = append(urls, in.MetricsURL)
	}
	slices.Sort(urls)
	urls = slices.Compact(urls)
	return slices.DeleteFunc(urls, func(u string) bool { return u == "" })
}

// Apply returns a copy of f with samples merged in, and the GPU faults in
// force: the GPUs of nodes with a telemetryURL get their readings and a
// health (unknown when the node's sample is missing or older than
// staleAfter at now), instances with a metricsURL get their load, and
// instances on faulty GPUs become unhealthy. f is not modified; weights are
// left alone (see Weights).
func Apply(f *topology.Fleet, samples Samples, now time.Time, staleAfter time.Duration) (*topology.Fleet, []Fault) {
	out := clone(f)
	var faults []Fault
	for i := range out.Nodes {
		faults = append(faults, applyNode(&out.Nodes[i], samples, now, staleAfter)...)
	}
	for i := range out.Instances {
		in := &out.Instances[i]
		if s, ok := fresh(samples, in.MetricsURL, now, staleAfter); ok {
			if load, reported := modelLoad(s.Metrics, in.Model); reported {
				in.Load = load
			}
		}
	}
	for i := range faults {
		faults[i].Instances = takeOutOfService(out.Instances, faults[i])
	}
	return out, faults
}

// clone copies every slice Apply may write to, and the rest, so that the
// result shares nothing with f.
func clone(f *topology.Fleet) *topology.Fleet {
	out := &topology.Fleet{Zones: slices.Clone(f.Zones), Nodes: slices.Clone(f.Nodes), Instances: slices.Clone(f.Instances)}
	for i := range out.Nodes {
		out.Nodes[i].GPUs = slices.Clone(out.Nodes[i].GPUs)
	}
	for i := range out.Instances {
		out.Instances[i].GPUs = slices.Clone(out.Instances[i].GPUs)
	}
	return out
}

// fresh returns url's sample if there is one no older than staleAfter.
func fresh(samples Samples, url string, now time.Time, staleAfter time.Duration) (Sample, bool) {
	s, ok := samples[url]
	if url == "" || !ok || now.Sub(s.At) > staleAfter {
		return Sample{}, false
	}
	return s, true
}

// applyNode fills a node's telemetry age and GPUs and returns its faulty
// GPUs. Nodes without a telemetryURL are left as they are. A stale sample
// fills no readings, but the faults it last reported stay in force: a GPU
// that fell off the bus is not trusted again because its agent went quiet.
func applyNode(n *topology.Node, samples Samples, now time.Time, staleAfter time.Duration) []Fault {
	if n.TelemetryURL == "" {
		return nil
	}
	n.TelemetryAge = 0
	s, scraped := samples[n.TelemetryURL]
	if scraped {
		// At least 1ns: a zero age means "never received".
		n.TelemetryAge = max(now.Sub(s.At), time.Nanosecond)
	}
	readings := gpuReadings(s.Metrics)
	if len(readings) == 0 {
		for j := range n.GPUs {
			n.GPUs[j].Health = topology.HealthUnknown
		}
		return nil
	}
	stale := now.Sub(s.At) > staleAfter
	var faults []Fault
	for j := range n.GPUs {
		if fault, faulty := applyGPU(&n.GPUs[j], readings, stale); faulty {
			fault.Node = n.Name
			faults = append(faults, fault)
		}
	}
	return faults
}

// applyGPU says whether g is faulty by its reading and sets its health; a
// fresh reading also fills g's values, a stale one leaves a healthy GPU
// unknown.
func applyGPU(g *topology.GPU, readings map[int]*gpuReading, stale bool) (Fault, bool) {
	reason, xid, faulty := ReasonLost, int64(0), true
	if r := match(readings, *g); r != nil {
		if !stale {
			r.fill(g)
		}
		reason, xid, faulty = r.fault()
	}
	switch {
	case faulty:
		g.Health = topology.HealthUnhealthy
		return Fault{GPU: g.Index, UUID: g.UUID, Reason: reason, XID: xid}, true
	case stale:
		g.Health = topology.HealthUnknown
	default:
		g.Health = topology.HealthServing
	}
	return Fault{}, false
}

// match finds g's reading: by UUID when both the fleet and the exporter
// name one (so a GPU renumbered after a reboot is not mistaken for
// another), else by index.
func match(readings map[int]*gpuReading, g topology.GPU) *gpuReading {
	atIndex := readings[g.Index]
	if g.UUID == "" {
		return atIndex
	}
	for _, r := range readings {
		if r.uuid == g.UUID {
			return r
		}
	}
	if atIndex != nil && atIndex.uuid == "" {
		return atIndex
	}
	return nil
}

// takeOutOfService marks the instances on the fault's GPU unhealthy and
// returns their names.
func takeOutOfService(instances []topology.Instance, fault Fault) []string {
	var names []string
	for i := range instances {
		in := &instances[i]
		if in.Node == fault.Node && slices.Contains(in.GPUs, fault.GPU) {
			in.Health = topology.HealthUnhealthy
			names = append(names, in.Name)
		}
	}
	return names
}
