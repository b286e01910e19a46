// Package snapshot owns the pure translation of a fleet and its policy into
// the xDS resources one view (a zone and a client kind) receives, their
// content-hash versions, and their validation.
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

// Resources is what one view receives, each slice sorted by name.
// A Translator shares unchanged resources between the Resources it returns,
// so they and everything they point to must be treated as read-only.
type Resources struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
	Versions  Versions
	// Digests, when set, hold each resource's content hash, so that the
	// cache neither marshals nor hashes a resource it already holds.
	Digests Digests

	// validated is set by the Translator, which validates every part as it
	// builds it; Validate trusts it.
	validated bool
}

// Digests are per-resource content hashes (hex), index for index with the
// resources of Resources; a type left nil has none.
type Digests struct {
	Listeners []string
	Routes    []string
	Clusters  []string
	Endpoints []string
}

// Versions are per-type content hashes. An endpoint version also covers the
// clusters, so a cluster change always re-sends endpoints.
type Versions struct {
	Listeners string
	Routes    string
	Clusters  string
	Endpoints string
}
