package xds

import (
	"time"

	statusv3 "github.com/envoyproxy/go-control-plane/envoy/service/status/v3"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	outOfSyncDesc = prometheus.NewDesc("inferxds_xds_proxies_out_of_sync",
		"Connected proxies that have not ACKed the latest response of the type (CSDS STALE or ERROR).",
		[]string{"type"}, nil)
	outOfSyncAgeDesc = prometheus.NewDesc("inferxds_xds_out_of_sync_max_seconds",
		"How long the longest-waiting out-of-sync proxy has not ACKed the type; 0 when all are in sync.",
		[]string{"type"}, nil)
)

// syncCollector reports, at each scrape, how many proxies are behind per
// type and for how long: the alerting view of CSDS, without node ids as
// labels.
type syncCollector struct{ t *tracker }

func (c syncCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outOfSyncDesc
	ch <- outOfSyncAgeDesc
}

func (c syncCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	behind, oldest := map[string]int{}, map[string]time.Duration{}
	for _, n := range c.t.status() {
		for name, ts := range n.Types {
			if s := ts.ConfigStatus(); s != statusv3.ConfigStatus_STALE && s != statusv3.ConfigStatus_ERROR {
				continue
			}
			behind[name]++
			if !ts.PendingSince.IsZero() {
				oldest[name] = max(oldest[name], now.Sub(ts.PendingSince))
			}
		}
	}
	for _, typeURL := range xdsTypes {
		name := TypeName(typeURL)
		ch <- prometheus.MustNewConstMetric(outOfSyncDesc, prometheus.GaugeValue, float64(behind[name]), name)
		ch <- prometheus.MustNewConstMetric(outOfSyncAgeDesc, prometheus.GaugeValue, oldest[name].Seconds(), name)
	}
}
