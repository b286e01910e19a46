package topology

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/inferxds/inferxds/internal/fielderr"
)

// MaxWeight is the largest endpoint weight; gRPC and Envoy accept more, but
// weights are quantized into this range so that small changes stay small.
const MaxWeight = 128

var hostnamePattern = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

// Validate checks a fleet (after ApplyDefaults): names, references between
// zones, nodes, GPUs and instances, enum values, addresses and weights. It
// returns every problem (errors.Join of *fielderr.FieldError) with field
// paths such as "instances[2].port"; ParseFleet adds file and line.
func (f *Fleet) Validate() error { return f.check(fielderr.NoFile{}) }

func (f *Fleet) check(loc fielderr.Locator) error {
	pr := fielderr.NewProblems(loc)
	zones := f.checkZones(pr)
	nodes := f.checkNodes(pr, zones)
	f.checkInstances(pr, zones, nodes)
	return pr.Err()
}

func (f *Fleet) checkZones(pr *fielderr.Problems) map[string]bool {
	names := make([]string, len(f.Zones))
	for i, z := range f.Zones {
		names[i] = z.Name
		if z.Role != ZoneActive && z.Role != ZoneStandby {
			pr.Add(fmt.Sprintf("zones[%d].role", i), "must be active or standby (got %q)", z.Role)
		}
	}
	return pr.Names("zone", "zones[%d].name", names, ValidateName)
}

func (f *Fleet) checkNodes(pr *fielderr.Problems, zones map[string]bool) map[string]Node {
	names := make([]string, len(f.Nodes))
	for i, n := range f.Nodes {
		names[i] = n.Name
		at := fmt.Sprintf("nodes[%d]", i)
		checkZoneRef(pr, at, ".zone", n.Zone, zones)
		checkHealth(pr, at, ".health", n.Health, true)
		nonNegative(pr, at, ".telemetryAge", n.TelemetryAge)
		checkMetricsURL(pr, at, ".telemetryURL", n.TelemetryURL)
		checkGPUs(pr, at+".gpus", n.GPUs)
	}
	good := pr.Names("node", "nodes[%d].name", names, ValidateName)
	nodes := make(map[string]Node, len(good))
	for _, n := range f.Nodes {
		if _, seen := nodes[n.Name]; good[n.Name] && !seen {
			nodes[n.Name] = n
		}
	}
	return nodes
}

func checkGPUs(pr *fielderr.Problems, at string, gpus []GPU) {
	indexes := make([]string, len(gpus))
	for i, g := range gpus {
		indexes[i] = strconv.Itoa(g.Index)
		g.check(pr, fmt.Sprintf("%s[%d]", at, i))
	}
	pr.Unique("GPU index", at+"[%d].index", indexes)
}

func (g GPU) check(pr *fielderr.Problems, at string) {
	if g.Index < 0 {
		pr.Add(at+".index", "must not be negative (got %d)", g.Index)
	}
	nonNegative(pr, at, ".memoryTotalMiB", g.MemoryTotalMiB)
	nonNegative(pr, at, ".memoryUsedMiB", g.MemoryUsedMiB)
	nonNegative(pr, at, ".memoryReservedMiB", g.MemoryReservedMiB)
	nonNegative(pr, at, ".xidErrors", g.XIDErrors)
	nonNegative(pr, at, ".eccUncorrectable", g.ECCUncorrectable)
	nonNegative(pr, at, ".lastXID", g.LastXID)
	if g.MemoryTotalMiB > 0 && g.MemoryUsedMiB > g.MemoryTotalMiB {
		pr.Add(at+".memoryUsedMiB", "exceeds memoryTotalMiB %d (got %d)", g.MemoryTotalMiB, g.MemoryUsedMiB)
	}
	if g.UtilizationPct < 0 || g.UtilizationPct > 100 {
		pr.Add(at+".utilizationPct", "must be between 0 and 100 (got %v)", g.UtilizationPct)
	}
	checkHealth(pr, at, ".health", g.Health, true)
}

func (f *Fleet) checkInstances(pr *fielderr.Problems, zones map[string]bool, nodes map[string]Node) {
	names := make([]string, len(f.Instances))
	endpoints := make([]string, len(f.Instances))
	for i, in := range f.Instances {
		at := fmt.Sprintf("instances[%d]", i)
		names[i] = in.Name
		if err := ValidateName(in.Model); err != nil {
			pr.Add(at+".model", "model name %v", err)
		}
		in.checkPlacement(pr, at, zones, nodes)
		in.checkState(pr, at)
		if !in.parked() && in.checkAddress(pr, at) {
			endpoints[i] = net.JoinHostPort(in.Address, strconv.Itoa(int(in.Port)))
		}
	}
	pr.Names("instance", "instances[%d].name", names, ValidateName)
	pr.Unique("address", "instances[%d].port", endpoints)
}

// checkPlacement checks the instance's node, zone and GPU references.
func (in Instance) checkPlacement(pr *fielderr.Problems, at string, zones map[string]bool, nodes map[string]Node) {
	if in.Node == "" {
		if len(in.GPUs) > 0 {
			pr.Add(at+".gpus", "GPUs need a node; name the instance's node")
		}
		checkZoneRef(pr, at, ".zone", in.Zone, zones)
		return
	}
	node, ok := nodes[in.Node]
	if !ok {
		pr.Add(at+".node", "node %q is not defined under nodes", in.Node)
		return
	}
	if in.Zone != node.Zone {
		pr.Add(at+".zone", "zone %q differs from node %s's zone %q", in.Zone, node.Name, node.Zone)
	}
	for j, gpu := range in.GPUs {
		if !slices.ContainsFunc(node.GPUs, func(g GPU) bool { return g.Index == gpu }) {
			pr.Add(fmt.Sprintf("%s.gpus[%d]", at, j), "node %s has no GPU %d", node.Name, gpu)
		}
	}
}

func (in Instance) checkState(pr *fielderr.Problems, at string) {
	switch in.Tier {
	case TierHot, TierWarm, TierCold:
	default:
		pr.Add(at+".tier", "must be hot, warm or cold (got %q)", in.Tier)
	}
	if in.Role != RolePrimary && in.Role != RoleStandby {
		pr.Add(at+".role", "must be primary or standby (got %q)", in.Role)
	}
	checkHealth(pr, at, ".health", in.Health, false)
	if in.Weight > MaxWeight {
		pr.Add(at+".weight", "must be at most %d (got %d)", MaxWeight, in.Weight)
	}
	nonNegative(pr, at, ".load.queueDepth", in.Load.QueueDepth)
	nonNegative(pr, at, ".load.running", in.Load.Running)
	nonNegative(pr, at, ".load.kvCacheUsage", in.Load.KVCacheUsage)
	checkMetricsURL(pr, at, ".metricsURL", in.MetricsURL)
}

// parked reports a cold instance with no address and no port: nothing of it
// runs (a Deployment at 0 replicas) until it is loaded.
func (in Instance) parked() bool {
	return in.Tier == TierCold && in.Address == "" && in.Port == 0
}

// checkAddress reports a bad address or port; it returns whether both are good.
func (in Instance) checkAddress(pr *fielderr.Problems, at string) bool {
	good := true
	if net.ParseIP(in.Address) == nil && (len(in.Address) > 253 || !hostnamePattern.MatchString(in.Address)) {
		pr.Add(at+".address", "must be an IP address or a hostname (got %q)", in.Address)
		good = false
	}
	if in.Port < 1 || in.Port > 65535 {
		pr.Add(at+".port", "must be between 1 and 65535 (got %d)", in.Port)
		good = false
	}
	return good
}

// checkMetricsURL accepts an empty value (no telemetry) or an absolute
// http(s) URL with a host.
func checkMetricsURL(pr *fielderr.Problems, at, key, raw string) {
	if raw == "" {
		return
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		pr.Add(at+key, "must be an http:// or https:// URL with a host (got %q)", raw)
	}
}

func checkZoneRef(pr *fielderr.Problems, at, key, zone string, zones map[string]bool) {
	switch {
	case zone == "":
		pr.Add(at+key, "is required")
	case !zones[zone]:
		pr.Add(at+key, "zone %q is not defined under zones", zone)
	}
}

func checkHealth(pr *fielderr.Problems, at, key string, h Health, optional bool) {
	if !validHealth(h, optional) {
		pr.Add(at+key, "must be one of serving, unhealthy, draining, loading, unknown (got %q)", h)
	}
}

func validHealth(h Health, optional bool) bool {
	switch h {
	case HealthServing, HealthUnhealthy, HealthDraining, HealthLoading, HealthUnknown:
		return true
	}
	return h == "" && optional
}

// nonNegative reports a negative at+key; the field path is built only then.
func nonNegative[T int64 | float64 | time.Duration](pr *fielderr.Problems, at, key string, v T) {
	if v < 0 {
		pr.Add(at+key, "must not be negative (got %v)", v)
	}
}
