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
// hashing every resource again.
func newCacheSnapshot(r *snapshot.Resources) *cache.Snapshot {
	var s cache.Snapshot
	s.Resources[types.Listener] = cache.NewResources(r.Versions.Listeners, asResources(r.Listeners))
	s.Resources[types.Route] = cache.NewResources(r.Versions.Routes, asResources(r.Routes))
	s.Resources[types.Cluster] = cache.NewResources(r.Versions.Clusters, asResources(r.Clusters))
	s.Resources[types.Endpoint] = cache.NewResources(r.Versions.Endpoints, asResources(r.Endpoints))
	s.VersionMap = versionMap(r)
	return &s
}

func asResources[M proto.Message](items []M) []types.Resource {
	out := make([]types.Resource, len(items))
	for i, item := range items {
		out[i] = item
	}
	return out
}

// versionMap is r's digests by type URL and resource name, or nil unless
// every resource has one.
func versionMap(r *snapshot.Resources) map[string]map[string]string {
	listeners, okL := byName(r.Listeners, r.Digests.Listeners)
	routes, okR := byName(r.Routes, r.Digests.Routes)
	clusters, okC := byName(r.Clusters, r.Digests.Clusters)
	endpoints, okE := byName(r.Endpoints, r.Digests.Endpoints)
	if !okL || !okR || !okC || !okE {
		return nil
	}
	return map[string]map[string]string{
		resource.ListenerType: listeners, resource.RouteType: routes,
		resource.ClusterType: clusters, resource.EndpointType: endpoints,
	}
}

func byName[M types.Resource](items []M, digests []string) (map[string]string, bool) {
	if len(items) != len(digests) {
		return nil, false
	}
	out := make(map[string]string, len(items))
	for i, item := range items {
		out[cache.GetResourceName(item)] = digests[i]
	}
	return out, true
}
