package main

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology"
)

// version is the release, set at build time with
// -ldflags "-X main.version=v1.2.3"; else the module version Go recorded.
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}

// opsMetrics are serve's metrics for alerting beside the xDS server's: build
// info, each source's last successful load, and the fleet as the proxies'
// zones see it. Every series exists from start.
type opsMetrics struct {
	sourceSuccess *prometheus.GaugeVec
}

func newOpsMetrics(reg prometheus.Registerer, cp *controlPlane, now time.Time) *opsMetrics {
	m := &opsMetrics{sourceSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "inferxds_source_last_success_timestamp_seconds",
		Help: "When the source last loaded without error (Unix seconds); start-up counts.",
	}, []string{"source"})}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "inferxds_build_info", Help: "Always 1; labels carry the build.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(buildVersion(), runtime.Version()).Set(1)
	lastApplied := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "inferxds_last_applied_timestamp_seconds",
		Help: "When the controller last translated a view (Unix seconds); 0 before the first.",
	}, func() float64 { return unixSeconds(cp.ctrl.Status().LastApplied) })
	reg.MustRegister(m.sourceSuccess, buildInfo, lastApplied, &fleetCollector{cp: cp}, tenantCollector{cp: cp})
	for _, source := range []string{sourcePolicy, sourceFleet} {
		m.sourceLoaded(source, now)
		cp.hub.ReportSourceError(source, nil) // loaded at start-up: not failing
	}
	return m
}

func (m *opsMetrics) sourceLoaded(source string, at time.Time) {
	m.sourceSuccess.WithLabelValues(source).Set(unixSeconds(at))
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

var (
	endpointsDesc = prometheus.NewDesc("inferxds_endpoints",
		"Endpoints of a model at an EDS priority, as proxies in the zone receive them (priority 0 is reported, at 0, for a model without endpoints).",
		[]string{"zone", "model", "priority"}, nil)
	instancesDesc = prometheus.NewDesc("inferxds_instances",
		"Instances of a model per tier; healthy is false when the instance is unhealthy, draining or loading.",
		[]string{"model", "tier", "healthy"}, nil)
	drainedGPUsDesc = prometheus.NewDesc("inferxds_drained_gpus",
		"GPUs taken out of service (unhealthy or draining) in the fleet being served.", nil, nil)
)

// fleetCollector computes the fleet series at scrape time from the served
// fleet and the policy, translating each zone again only when either
// changed. Labels are operator-controlled names (zones, models, tiers),
// never node ids.
type fleetCollector struct {
	cp *controlPlane

	mu      sync.Mutex
	fleet   *topology.Fleet
	policy  *drpolicy.Policy
	metrics []prometheus.Metric
}

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- endpointsDesc
	ch <- instancesDesc
	ch <- drainedGPUsDesc
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	fleet := c.cp.servedFleet()
	pol, _ := c.cp.hub.Policy.Get()
	c.mu.Lock()
	defer c.mu.Unlock()
	if fleet != c.fleet || pol != c.policy {
		c.fleet, c.policy, c.metrics = fleet, pol, fleetMetrics(fleet, pol, c.cp.translateOptions())
	}
	for _, m := range c.metrics {
		ch <- m
	}
}

func fleetMetrics(fleet *topology.Fleet, pol *drpolicy.Policy, opts []snapshot.Option) []prometheus.Metric {
	var out []prometheus.Metric
	gauge := func(desc *prometheus.Desc, v int, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(v), labels...))
	}
	zones, _ := translateZones(fleet, pol, opts) // a failing zone keeps no series
	for _, z := range zones {
		for _, model := range pol.Models {
			byPriority := endpointCounts(z.resources, snapshot.ClusterName(model.Name))
			if len(byPriority) == 0 {
				byPriority = []int{0} // no endpoints: priority 0 at zero, for alerts
			}
			for p, n := range byPriority {
				gauge(endpointsDesc, n, z.zone, model.Name, strconv.Itoa(p))
			}
		}
	}
	for _, model := range pol.Models {
		for _, tier := range []topology.Tier{topology.TierHot, topology.TierWarm, topology.TierCold} {
			healthy, unhealthy := instanceCounts(fleet, model.Name, tier)
			gauge(instancesDesc, healthy, model.Name, string(tier), "true")
			gauge(instancesDesc, unhealthy, model.Name, string(tier), "false")
		}
	}
	gauge(drainedGPUsDesc, drainedGPUs(fleet))
	return out
}

// endpointCounts are the cluster's endpoints per priority (0..n).
func endpointCounts(r *snapshot.Resources, cluster string) []int {
	var counts []int
	for _, cla := range r.Endpoints {
		if cla.GetClusterName() != cluster {
			continue
		}
		for _, loc := range cla.GetEndpoints() {
			for int(loc.GetPriority()) >= len(counts) {
				counts = append(counts, 0)
			}
			counts[loc.GetPriority()] += len(loc.GetLbEndpoints())
		}
	}
	return counts
}

func instanceCounts(fleet *topology.Fleet, model string, tier topology.Tier) (healthy, unhealthy int) {
	for _, in := range fleet.Instances {
		if in.Model != model || in.Tier != tier {
			continue
		}
		if in.Health == topology.HealthServing || in.Health == topology.HealthUnknown {
			healthy++
		} else {
			unhealthy++
		}
	}
	return healthy, unhealthy
}

func drainedGPUs(fleet *topology.Fleet) int {
	n := 0
	for _, node := range fleet.Nodes {
		for _, g := range node.GPUs {
			if g.Health == topology.HealthUnhealthy || g.Health == topology.HealthDraining {
				n++
			}
		}
	}
	return n
}

// translateOptions are serve's translation settings; listen has checked
// them.
func (cp *controlPlane) translateOptions() []snapshot.Option {
	opts, _ := cp.cfg.translateOptions()
	return opts
}

// zoneResources is what the proxies of one zone receive.
type zoneResources struct {
	zone      string
	resources *snapshot.Resources
}

// translateZones translates the fleet for each of its zones, in order. A
// zone that fails is left out, and its error joined to the others'.
func translateZones(fleet *topology.Fleet, pol *drpolicy.Policy, opts []snapshot.Option) ([]zoneResources, error) {
	out := make([]zoneResources, 0, len(fleet.Zones))
	var errs []error
	for _, z := range fleet.Zones {
		r, err := snapshot.Translate(fleet, pol, z.Name, opts...)
		if err != nil {
			errs = append(errs, fmt.Errorf("zone %s: %w", z.Name, err))
			continue
		}
		out = append(out, zoneResources{zone: z.Name, resources: r})
	}
	return out, errors.Join(errs...)
}
