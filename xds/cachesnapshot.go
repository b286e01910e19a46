package xds

import (
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/inferxds/inferxds/snapshot"
)

// newCacheSnapshot builds the cache's snapshot with one version per type, so
// that a change of endpoints alone re-sends only endpoints. When r carries
// every resource's digest, they become the snapshot's version map, which
// Delta answers and the changes cache read instead of marshalling and
// hashing every resource again. A type whose version equals prev's (the
// view's previous snapshot, or nil) is taken from prev as it is.
func newCacheSnapshot(r *snapshot.Resources, prev *cachedSnapshot) *cachedSnapshot {
	s := &cache.Snapshot{}
	s.Resources[types.Listener] = typeResources(prev, types.Listener, r.Versions.Listeners, r.Listeners)
	s.Resources[types.Route] = typeResources(prev, types.Route, r.Versions.Routes, r.Routes)
	s.Resources[types.Cluster] = typeResources(prev, types.Cluster, r.Versions.Clusters, r.Clusters)
	s.Resources[types.Endpoint] = typeResources(prev, types.Endpoint, r.Versions.Endpoints, r.Endpoints)
	digests := versionMap(r, prev)
	s.VersionMap = digests
	return &cachedSnapshot{snapshot: s, digests: digests}
}

// cachedSnapshot is a snapshot handed to the cache and the version map it
// was built with. (The cache fills a nil VersionMap itself, under its own
// lock, so only digests is ours to read.)
type cachedSnapshot struct {
	snapshot *cache.Snapshot
	digests  map[string]map[string]string
}

func typeResources[M types.Resource](prev *cachedSnapshot, typ types.ResponseType, version string, items []M) cache.Resources {
	if prev != nil && prev.snapshot.Resources[typ].Version == version {
		return prev.snapshot.Resources[typ]
	}
	return cache.NewResources(version, asResources(items))
}

var typeURLs = map[types.ResponseType]string{
	types.Listener: resource.ListenerType, types.Route: resource.RouteType,
	types.Cluster: resource.ClusterType, types.Endpoint: resource.EndpointType,
}

func asResources[M proto.Message](items []M) []types.Resource {
	out := make([]types.Resource, len(items))
	for i, item := range items {
		out[i] = item
	}
	return out
}

// versionMap is r's digests by type URL and resource name, or nil unless
// every resource has one; prev's map of a type of unchanged version is
// reused.
func versionMap(r *snapshot.Resources, prev *cachedSnapshot) map[string]map[string]string {
	listeners, okL := byName(prev, types.Listener, r.Versions.Listeners, r.Listeners, r.Digests.Listeners)
	routes, okR := byName(prev, types.Route, r.Versions.Routes, r.Routes, r.Digests.Routes)
	clusters, okC := byName(prev, types.Cluster, r.Versions.Clusters, r.Clusters, r.Digests.Clusters)
	endpoints, okE := byName(prev, types.Endpoint, r.Versions.Endpoints, r.Endpoints, r.Digests.Endpoints)
	if !okL || !okR || !okC || !okE {
		return nil
	}
	return map[string]map[string]string{
		resource.ListenerType: listeners, resource.RouteType: routes,
		resource.ClusterType: clusters, resource.EndpointType: endpoints,
	}
}

func byName[M types.Resource](prev *cachedSnapshot, typ types.ResponseType, version string, items []M, digests []string) (map[string]string, bool) {
	if len(items) != len(digests) {
		return nil, false
	}
	if prev != nil && prev.snapshot.Resources[typ].Version == version {
		if known, ok := prev.digests[typeURLs[typ]]; ok {
			return known, true
		}
	}
	out := make(map[string]string, len(items))
	for i, item := range items {
		out[cache.GetResourceName(item)] = digests[i]
	}
	return out, true
}
