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
	StageTranslate = "translate"
	StageValidate  = "validate"
)

type metrics struct {
	acks             *prometheus.CounterVec
	nacks            *prometheus.CounterVec
	connected        prometheus.Gauge
	unknownZones     prometheus.Counter
	pushes           *prometheus.CounterVec
	snapshotRejected *prometheus.CounterVec
	versionInfo      *prometheus.GaugeVec
	pushToAck        *prometheus.HistogramVec
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
		unknownZones: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inferxds_xds_unknown_zone_nodes_total", Help: "Nodes that named a zone the fleet does not have and got the view without a zone.",
		}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inferxds_xds_pushes_total", Help: "Snapshots handed to the cache, per view.",
		}, []string{"view"}),
		snapshotRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inferxds_snapshot_rejected_total", Help: "Snapshots never pushed because translation or validation failed.",
		}, []string{"stage"}),
		versionInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "inferxds_snapshot_version_info", Help: "Always 1; labels carry the version each view's cache holds per type.",
		}, []string{"view", "type", "version"}),
		pushToAck: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "inferxds_xds_push_ack_seconds", Help: "Time from sending a response to its ACK, per type.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"type"}),
	}
	reg.MustRegister(m.acks, m.nacks, m.connected, m.unknownZones, m.pushes, m.snapshotRejected, m.versionInfo, m.pushToAck)
	m.initTypes()
	return m
}

func (m *metrics) recordPush(view string, v snapshot.Versions) {
	m.pushes.WithLabelValues(view).Inc()
	for typ, version := range map[string]string{
		resource.ListenerType: v.Listeners, resource.RouteType: v.Routes,
		resource.ClusterType: v.Clusters, resource.EndpointType: v.Endpoints,
	} {
		m.versionInfo.DeletePartialMatch(prometheus.Labels{"view": view, "type": TypeName(typ)})
		m.versionInfo.WithLabelValues(view, TypeName(typ), version).Set(1)
	}
}

// forget drops a dropped view's series.
func (m *metrics) forget(view string) {
	m.pushes.DeleteLabelValues(view)
	m.versionInfo.DeletePartialMatch(prometheus.Labels{"view": view})
}

// TypeName is a type URL's short name (Cluster, ClusterLoadAssignment, …),
// as metrics label it and status prints it.
func TypeName(typeURL string) string {
	return typeURL[strings.LastIndexByte(typeURL, '.')+1:]
}

// xdsTypes are the types the server serves, in the order of a config dump.
var xdsTypes = []string{resource.ListenerType, resource.RouteType, resource.ClusterType, resource.EndpointType}

// initTypes creates every per-type series at zero, so that alerts and
// dashboards see them before the first event; likewise each rejection
// stage.
func (m *metrics) initTypes() {
	for _, typeURL := range xdsTypes {
		name := TypeName(typeURL)
		m.acks.WithLabelValues(name)
		m.nacks.WithLabelValues(name)
		m.pushToAck.WithLabelValues(name)
	}
	m.snapshotRejected.WithLabelValues(StageTranslate)
	m.snapshotRejected.WithLabelValues(StageValidate)
}
