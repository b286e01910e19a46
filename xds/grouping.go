package xds

import corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

// zoneMetadataKey is the node metadata key naming a node's zone when its
// locality does not.
const zoneMetadataKey = "zone"

// groupHash keys the cache by node group: every node of a zone shares one
// snapshot.
type groupHash struct{}

func (groupHash) ID(node *corev3.Node) string { return nodeGroup(node) }

// nodeGroup is the node's locality zone, else its "zone" metadata string,
// else "" (no local zone).
func nodeGroup(node *corev3.Node) string {
	if zone := node.GetLocality().GetZone(); zone != "" {
		return zone
	}
	return node.GetMetadata().GetFields()[zoneMetadataKey].GetStringValue()
}
