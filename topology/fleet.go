// Package topology owns the fleet IR — zones, GPU nodes, GPUs and model
// instances — and the sources that produce it (a watched file today).
//
// The IR is plain data: slices are kept sorted by name so that equal fleets
// compare equal and translate to byte-identical xDS. Telemetry that is missing
// or stale is unknown, never unhealthy by itself.
package topology

import (
	"cmp"
	"slices"
	"time"
)

// ZoneRole says whether a zone carries traffic or waits to take it over.
type ZoneRole string

// Zone roles.
const (
	ZoneActive  ZoneRole = "active"
	ZoneStandby ZoneRole = "standby"
)

// Tier is how ready an instance is to serve: hot instances hold the model in
// GPU memory, warm ones in host memory, cold ones only on disk.
type Tier string

// Standby tiers.
const (
	TierHot  Tier = "hot"
	TierWarm Tier = "warm"
	TierCold Tier = "cold"
)

// Role says whether an instance takes traffic normally or only on failover.
type Role string

// Instance roles.
const (
	RolePrimary Role = "primary"
	RoleStandby Role = "standby"
)

// Health is an instance's serving state.
type Health string

// Instance health states. HealthUnknown is what missing or stale telemetry
// yields; it keeps an instance in service.
const (
	HealthServing   Health = "serving"
	HealthUnhealthy Health = "unhealthy"
	HealthDraining  Health = "draining"
	HealthLoading   Health = "loading"
	HealthUnknown   Health = "unknown"
)

// Fleet is everything the control plane knows about where models run.
type Fleet struct {
	Zones     []Zone     `json:"zones" yaml:"zones"`
	Nodes     []Node     `json:"nodes,omitempty" yaml:"nodes,omitempty"`
	Instances []Instance `json:"instances" yaml:"instances"`
}

// Zone is an availability zone.
type Zone struct {
	Name string   `json:"name" yaml:"name"`
	Role ZoneRole `json:"role" yaml:"role"`
}

// Node is a GPU host.
type Node struct {
	Name   string `json:"name" yaml:"name"`
	Zone   string `json:"zone" yaml:"zone"`
	Health Health `json:"health,omitempty" yaml:"health,omitempty"`
	GPUs   []GPU  `json:"gpus,omitempty" yaml:"gpus,omitempty"`
	// TelemetryURL is the node's GPU metrics endpoint (a gpu-agent's or
	// dcgm-exporter's /metrics); empty means no GPU telemetry for the node.
	TelemetryURL string `json:"telemetryURL,omitempty" yaml:"telemetryURL,omitempty"`
	// TelemetryAge is how old the last telemetry sample was when the fleet
	// was assembled; zero means none was ever received.
	TelemetryAge time.Duration `json:"telemetryAge,omitempty" yaml:"telemetryAge,omitempty"`
}

// GPU is one device on a node. Memory is in MiB.
type GPU struct {
	Index             int     `json:"index" yaml:"index"`
	UUID              string  `json:"uuid,omitempty" yaml:"uuid,omitempty"`
	Model             string  `json:"model,omitempty" yaml:"model,omitempty"`
	MemoryTotalMiB    int64   `json:"memoryTotalMiB,omitempty" yaml:"memoryTotalMiB,omitempty"`
	MemoryUsedMiB     int64   `json:"memoryUsedMiB,omitempty" yaml:"memoryUsedMiB,omitempty"`
	MemoryReservedMiB int64   `json:"memoryReservedMiB,omitempty" yaml:"memoryReservedMiB,omitempty"`
	UtilizationPct    float64 `json:"utilizationPct,omitempty" yaml:"utilizationPct,omitempty"`
	Health            Health  `json:"health,omitempty" yaml:"health,omitempty"`
	XIDErrors         int64   `json:"xidErrors,omitempty" yaml:"xidErrors,omitempty"`
	ECCUncorrectable  int64   `json:"eccUncorrectable,omitempty" yaml:"eccUncorrectable,omitempty"`
	// LastXID is the code of the most recent XID error (0: none seen).
	LastXID int64 `json:"lastXID,omitempty" yaml:"lastXID,omitempty"`
}

// Instance is one running (or parked) copy of a model.
type Instance struct {
	Name  string `json:"name" yaml:"name"`
	Model string `json:"model" yaml:"model"`
	Node  string `json:"node,omitempty" yaml:"node,omitempty"`
	// Zone is filled from the node when the node is known; an instance
	// without a node must name its zone.
	Zone string `json:"zone,omitempty" yaml:"zone,omitempty"`
	GPUs []int  `json:"gpus,omitempty" yaml:"gpus,omitempty"`
	// Address and Port are where the model server listens; a cold
	// instance may leave both out (nothing of it runs until it is loaded,
	// which then says where).
	Address string `json:"address" yaml:"address"`
	Port    uint32 `json:"port" yaml:"port"`
	Tier    Tier   `json:"tier,omitempty" yaml:"tier,omitempty"`
	Role    Role   `json:"role,omitempty" yaml:"role,omitempty"`
	Health  Health `json:"health,omitempty" yaml:"health,omitempty"`
	// Weight is the endpoint's load-balancing weight (1..128). Set in the
	// fleet file it is pinned; zero lets telemetry set it, and means 1 while
	// there is none.
	Weight uint32 `json:"weight,omitempty" yaml:"weight,omitempty"`
	Load   Load   `json:"load,omitempty" yaml:"load,omitempty"`
	// MetricsURL is the model server's Prometheus endpoint (vLLM metric
	// names); empty means no load telemetry for the instance.
	MetricsURL string `json:"metricsURL,omitempty" yaml:"metricsURL,omitempty"`
}

// Load is the serving pressure reported by the model server.
type Load struct {
	QueueDepth   float64 `json:"queueDepth,omitempty" yaml:"queueDepth,omitempty"`
	Running      float64 `json:"running,omitempty" yaml:"running,omitempty"`
	KVCacheUsage float64 `json:"kvCacheUsage,omitempty" yaml:"kvCacheUsage,omitempty"`
}

// Serving reports whether the instance may receive traffic: it is loaded
// (hot) and not known to be failing, draining or still loading.
func (i Instance) Serving() bool {
	return i.Tier == TierHot && (i.Health == HealthServing || i.Health == HealthUnknown)
}

// EffectiveWeight is the endpoint weight with the zero value mapped to 1.
func (i Instance) EffectiveWeight() uint32 {
	if i.Weight == 0 {
		return 1
	}
	return i.Weight
}

// Zone returns the named zone and whether it exists.
func (f *Fleet) Zone(name string) (Zone, bool) {
	i, ok := slices.BinarySearchFunc(f.Zones, name, func(z Zone, n string) int { return cmp.Compare(z.Name, n) })
	if !ok {
		return Zone{}, false
	}
	return f.Zones[i], true
}

// Node returns the named node and whether it exists.
func (f *Fleet) Node(name string) (Node, bool) {
	i, ok := slices.BinarySearchFunc(f.Nodes, name, func(n Node, s string) int { return cmp.Compare(n.Name, s) })
	if !ok {
		return Node{}, false
	}
	return f.Nodes[i], true
}

// Sort orders every slice by name (GPUs by index) so equal fleets are
// identical. Sources call it before handing a fleet on.
func (f *Fleet) Sort() {
	slices.SortFunc(f.Zones, func(a, b Zone) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(f.Nodes, func(a, b Node) int { return cmp.Compare(a.Name, b.Name) })
	for i := range f.Nodes {
		slices.SortFunc(f.Nodes[i].GPUs, func(a, b GPU) int { return cmp.Compare(a.Index, b.Index) })
	}
	slices.SortFunc(f.Instances, func(a, b Instance) int { return cmp.Compare(a.Name, b.Name) })
}
