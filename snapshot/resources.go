// Package snapshot owns the pure translation of a fleet and its policy into
// the xDS resources one node group (a zone) receives, their content-hash
// versions, and their validation.
//
// It does no I/O, reads no clock and uses no randomness: the same inputs
// give byte-identical resources and versions.
package snapshot

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// Resources is what one node group receives, each slice sorted by name.
// A Translator shares unchanged resources between the Resources it returns,
// so they and everything they point to must be treated as read-only.
type Resources struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
	Versions  Versions
}

// Versions are per-type content hashes. An endpoint version also covers the
// clusters, so a cluster change always re-sends endpoints.
type Versions struct {
	Listeners string
	Routes    string
	Clusters  string
	Endpoints string
}
