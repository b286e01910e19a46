package xds

import (
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/inferxds/inferxds/snapshot"
)

// Node metadata keys. zoneMetadataKey names a node's zone when its locality
// does not; clientMetadataKey overrides the client kind its user agent
// implies ("envoy", "grpc", or "all" for inspection tools such as dump).
const (
	zoneMetadataKey   = "zone"
	clientMetadataKey = "client"
)

// nodeZone is the node's locality zone, else its "zone" metadata string,
// else "" (no local zone).
func nodeZone(node *corev3.Node) string {
	if zone := node.GetLocality().GetZone(); zone != "" {
		return zone
	}
	return node.GetMetadata().GetFields()[zoneMetadataKey].GetStringValue()
}

// nodeClient is the node's client kind: its "client" metadata when that
// names one, else Envoy for user agent "envoy" and a gRPC proxyless client
// for anything else (gRPC-Go says "gRPC Go").
func nodeClient(node *corev3.Node) snapshot.Client {
	if c, ok := snapshot.ParseClient(node.GetMetadata().GetFields()[clientMetadataKey].GetStringValue()); ok {
		return c
	}
	if strings.EqualFold(node.GetUserAgentName(), "envoy") {
		return snapshot.ClientEnvoy
	}
	return snapshot.ClientGRPC
}

// viewOf is the view a node receives. A zone outside known (when known is
// not nil) gets the view without a zone; ok is false then.
func viewOf(node *corev3.Node, known map[string]bool) (view snapshot.View, ok bool) {
	view = snapshot.View{Zone: nodeZone(node), Client: nodeClient(node)}
	if view.Zone != "" && known != nil && !known[view.Zone] {
		view.Zone = ""
		return view, false
	}
	return view, true
}

// viewHash keys the cache by view: every node of a view shares one
// snapshot. A connected node keeps the view it attached with (see
// tracker.attachedViews); a node's first request maps it afresh.
type viewHash struct{ s *Server }

func (h viewHash) ID(node *corev3.Node) string {
	if view, ok := h.s.tracker.attachedView(node.GetId()); ok {
		return view.String()
	}
	view, _ := viewOf(node, h.s.knownZones())
	return view.String()
}
