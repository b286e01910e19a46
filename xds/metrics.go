package xds

import (
	"strings"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferxds/inferxds/snapshot"
)

// Stages at which a snapshot can be rejected (label of
// inferxds_snapshot_rejected_total).
const (
	stageTranslate = "translate"
	stageValidate  = "validate"
)

type metrics struct {
	acks             *prometheus.CounterVec
	nacks            *prometheus.CounterVec
	connected        prometheus.Gauge
	pushes           *prometheus.CounterVec
	snapshotRejected *prometheus.CounterVec
	versionInfo      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inferxds_xds_acks_total", Help: "xDS responses acknowledged by clients.",
		}, []string{"type"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inferxds_xds_nacks_total", Help: "xDS responses rejected by clients.",
		}, []string{"type"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "inferxds_xds_connected_proxies", Help: "Distinct nodes with an open xDS stream.",
		}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inferxds_xds_pushes_total", Help: "Snapshots handed to the cache, per node group.",
		}, []string{"group"}),
		snapshotRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inferxds_snapshot_rejected_total", Help: "Snapshots never pushed because translation or validation failed.",
		}, []string{"stage"}),
		versionInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "inferxds_snapshot_version_info", Help: "Always 1; labels carry the version each group's cache holds per type.",
		}, []string{"group", "type", "version"}),
	}
	reg.MustRegister(m.acks, m.nacks, m.connected, m.pushes, m.snapshotRejected, m.versionInfo)
	return m
}

func (m *metrics) recordPush(group string, v snapshot.Versions) {
	m.pushes.WithLabelValues(group).Inc()
	for typ, version := range map[string]string{
		resource.ListenerType: v.Listeners, resource.RouteType: v.Routes,
		resource.ClusterType: v.Clusters, resource.EndpointType: v.Endpoints,
	} {
		m.versionInfo.DeletePartialMatch(prometheus.Labels{"group": group, "type": typeName(typ)})
		m.versionInfo.WithLabelValues(group, typeName(typ), version).Set(1)
	}
}

// typeName is the short name of an xDS type URL, e.g. "Cluster" for
// "type.googleapis.com/envoy.config.cluster.v3.Cluster".
func typeName(typeURL string) string {
	return typeURL[strings.LastIndexByte(typeURL, '.')+1:]
}
