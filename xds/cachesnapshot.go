package xds

import (
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"

	"github.com/inferxds/inferxds/snapshot"
)

// newCacheSnapshot builds the cache's snapshot with one version per type, so
// that a change of endpoints alone re-sends only endpoints.
func newCacheSnapshot(r *snapshot.Resources) *cache.Snapshot {
	var s cache.Snapshot
	s.Resources[types.Listener] = cache.NewResources(r.Versions.Listeners, asResources(r.Listeners))
	s.Resources[types.Route] = cache.NewResources(r.Versions.Routes, asResources(r.Routes))
	s.Resources[types.Cluster] = cache.NewResources(r.Versions.Clusters, asResources(r.Clusters))
	s.Resources[types.Endpoint] = cache.NewResources(r.Versions.Endpoints, asResources(r.Endpoints))
	return &s
}

func asResources[M proto.Message](items []M) []types.Resource {
	out := make([]types.Resource, len(items))
	for i, item := range items {
		out[i] = item
	}
	return out
}
