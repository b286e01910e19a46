package xds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// changesCache answers state-of-the-world RDS and EDS requests itself,
// sending each stream only the RouteConfigurations and
// ClusterLoadAssignments that changed since the response its client last
// accepted. Everything else (LDS, CDS, Delta, Fetch) is go-control-plane's
// SnapshotCache, which answers with every requested resource whenever a
// type's version changes: 500 ClusterLoadAssignments for one moved
// endpoint.
//
// Leaving resources out is allowed for these two types only: SotW clients
// keep a RouteConfiguration or ClusterLoadAssignment that a response does
// not carry, whereas a Listener or Cluster missing from a response is
// deleted (gRPC-Go's xdsclient deletes absent resources only for types with
// AllResourcesRequiredInSotW, Listener and Cluster).
//
// What a stream was sent lives in the stream's own subscription:
// go-control-plane keeps each response's ReturnedResources per stream and
// drops the names a client unsubscribes. Here each value is a mark (see
// newMark) naming the content sent and the response that carried it. A
// request is answered with changes only when it accepts the stream's newest
// response: no error and that response's version. Anything else (a new
// stream, a NACK, a client still at an older version after rejecting one)
// is answered in full, as the SnapshotCache would.
type changesCache struct {
	snapshots cache.SnapshotCache
	nodeView  cache.NodeHash

	mu      sync.Mutex
	seq     uint64 // counts the servedTypes built
	served  map[viewType]*servedType
	watches map[viewType]map[uint64]*changesWatch
	watchID uint64
}

// changesTypes are the types answered with changed resources only.
var changesTypes = []string{resource.RouteType, resource.EndpointType}

type viewType struct{ view, typeURL string }

// servedType is one view's current resources of one type, marshaled once
// for every stream.
type servedType struct {
	version string
	names   []string // sorted
	byName  map[string]servedResource
}

type servedResource struct {
	any  *anypb.Any
	hash string // the resource's digest, else of its marshaled bytes
	mark string // what a subscription records once this is sent
}

type changesWatch struct {
	req *cache.Request
	sub cache.Subscription
	out chan cache.Response
}

func newChangesCache(snapshots cache.SnapshotCache, nodeView cache.NodeHash) *changesCache {
	return &changesCache{
		snapshots: snapshots,
		nodeView:  nodeView,
		served:    map[viewType]*servedType{},
		watches:   map[viewType]map[uint64]*changesWatch{},
	}
}

// SetSnapshot makes s the view's snapshot and answers the open watches
// whose clients lack a resource of a type whose version changed. A resource
// whose digest (from the snapshot's version map) equals the one served
// before is neither marshalled nor hashed again.
func (c *changesCache) SetSnapshot(ctx context.Context, view string, s cache.ResourceSnapshot) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := map[viewType]*servedType{}
	for _, typeURL := range changesTypes {
		key := viewType{view, typeURL}
		version := s.GetVersion(typeURL)
		current := c.served[key]
		if current != nil && current.version == version {
			continue
		}
		c.seq++
		st, err := newServedType(typeURL, version, c.seq, resourcesOf(s, typeURL), s.GetVersionMap(typeURL), current)
		if err != nil {
			return fmt.Errorf("view %q: %w", view, err)
		}
		changed[key] = st
	}
	if err := c.snapshots.SetSnapshot(ctx, view, s); err != nil {
		return err
	}
	for key, st := range changed {
		c.served[key] = st
		c.notify(key, st)
	}
	return nil
}

// resourcesOf reads a snapshot's resources of one type by name; a
// cache.Snapshot's own index is used as it is rather than copied.
func resourcesOf(s cache.ResourceSnapshot, typeURL string) map[string]types.ResourceWithTTL {
	if snap, ok := s.(*cache.Snapshot); ok {
		if typ := cache.GetResponseType(typeURL); typ != types.UnknownType {
			return snap.Resources[typ].Items
		}
	}
	return s.GetResourcesAndTTL(typeURL)
}

// newServedType marshals and hashes the resources that digests (when given)
// do not show unchanged since prev.
func newServedType(typeURL, version string, seq uint64, resources map[string]types.ResourceWithTTL, digests map[string]string, prev *servedType) (*servedType, error) {
	st := &servedType{version: version, names: prev.sameNames(resources), byName: make(map[string]servedResource, len(resources))}
	if st.names == nil {
		st.names = slices.Sorted(maps.Keys(resources))
	}
	for _, name := range st.names {
		r, err := servedResourceOf(typeURL, name, resources[name].Resource, digests[name], prev)
		if err != nil {
			return nil, err
		}
		r.mark = newMark(r.hash, seq, version)
		st.byName[name] = r
	}
	return st, nil
}

func servedResourceOf(typeURL, name string, res types.Resource, digest string, prev *servedType) (servedResource, error) {
	if before, ok := prev.resource(name); ok && digest != "" && before.hash == digest {
		return before, nil
	}
	b, err := cache.MarshalResource(res)
	if err != nil {
		return servedResource{}, fmt.Errorf("marshal %s %q: %w", TypeName(typeURL), name, err)
	}
	if digest == "" {
		sum := sha256.Sum256(b)
		digest = hex.EncodeToString(sum[:8])
	}
	return servedResource{any: &anypb.Any{TypeUrl: typeURL, Value: b}, hash: digest}, nil
}

// sameNames is st's sorted names when resources has exactly those, else
// nil.
func (st *servedType) sameNames(resources map[string]types.ResourceWithTTL) []string {
	if st == nil || len(st.names) != len(resources) {
		return nil
	}
	for _, name := range st.names {
		if _, ok := resources[name]; !ok {
			return nil
		}
	}
	return st.names
}

func (st *servedType) resource(name string) (servedResource, bool) {
	if st == nil {
		return servedResource{}, false
	}
	r, ok := st.byName[name]
	return r, ok
}

func (c *changesCache) notify(key viewType, st *servedType) {
	for id, w := range c.watches[key] {
		if resp := w.response(st); resp != nil {
			w.out <- resp
			delete(c.watches[key], id)
		}
	}
}

// CreateWatch answers RDS and EDS requests at once when the client lacks a
// resource it asks for, else when the view's next snapshot gives it one;
// other types go to the SnapshotCache.
func (c *changesCache) CreateWatch(req *cache.Request, sub cache.Subscription, out chan cache.Response) (func(), error) {
	if !slices.Contains(changesTypes, req.GetTypeUrl()) {
		return c.snapshots.CreateWatch(req, sub, out)
	}
	key := viewType{c.nodeView.ID(req.GetNode()), req.GetTypeUrl()}
	w := &changesWatch{req: req, sub: sub, out: out}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.served[key]; st != nil {
		if resp := w.response(st); resp != nil {
			out <- resp
			return func() {}, nil
		}
	}
	c.watchID++
	id := c.watchID
	if c.watches[key] == nil {
		c.watches[key] = map[uint64]*changesWatch{}
	}
	c.watches[key][id] = w
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.watches[key], id)
	}, nil
}

// ClearSnapshot forgets a view's snapshot and what was served from it.
func (c *changesCache) ClearSnapshot(view string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.snapshots.ClearSnapshot(view)
	for _, typeURL := range changesTypes {
		delete(c.served, viewType{view, typeURL})
	}
}

func (c *changesCache) CreateDeltaWatch(req *cache.DeltaRequest, sub cache.Subscription, out chan cache.DeltaResponse) (func(), error) {
	return c.snapshots.CreateDeltaWatch(req, sub, out)
}

func (c *changesCache) Fetch(ctx context.Context, req *cache.Request) (cache.Response, error) {
	return c.snapshots.Fetch(ctx, req)
}

// response is what w's client needs from st, or nil when it has it all.
func (w *changesWatch) response(st *servedType) cache.Response {
	subscribed := w.subscribed(st)
	returned := w.sub.ReturnedResources()
	if acceptsNewest(w.req, returned) {
		stale := slices.DeleteFunc(subscribed, func(name string) bool {
			return markHash(returned[name]) == st.byName[name].hash
		})
		if len(stale) == 0 {
			return nil
		}
		return st.response(w.req, stale, maps.Clone(returned))
	}
	if w.req.GetVersionInfo() == st.version && allReturned(subscribed, returned) {
		return nil // e.g. after a NACK: wait for new content
	}
	return st.response(w.req, subscribed, map[string]string{})
}

// subscribed returns, sorted, the names w asks for that st has.
func (w *changesWatch) subscribed(st *servedType) []string {
	if w.sub.IsWildcard() {
		return slices.Clone(st.names)
	}
	var names []string
	for name := range w.sub.SubscribedResources() {
		if _, ok := st.byName[name]; ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func allReturned(names []string, returned map[string]string) bool {
	for _, name := range names {
		if _, ok := returned[name]; !ok {
			return false
		}
	}
	return true
}

// response carries names at st's version; returned becomes the stream's
// record of what its client holds.
func (st *servedType) response(req *cache.Request, names []string, returned map[string]string) cache.Response {
	resources := make([]*anypb.Any, len(names))
	for i, name := range names {
		r := st.byName[name]
		resources[i] = r.any
		returned[name] = r.mark
	}
	maps.DeleteFunc(returned, func(name, _ string) bool {
		_, ok := st.byName[name]
		return !ok
	})
	return &changesResponse{
		request:  req,
		response: &discoveryv3.DiscoveryResponse{VersionInfo: st.version, Resources: resources, TypeUrl: req.GetTypeUrl()},
		returned: returned,
	}
}

// newMark records a resource sent to a stream: its content hash, and the
// sequence number and version of the servedType the response came from.
func newMark(hash string, seq uint64, version string) string {
	return hash + " " + strconv.FormatUint(seq, 10) + " " + version
}

func markHash(mark string) string {
	hash, _, _ := strings.Cut(mark, " ")
	return hash
}

func markResponse(mark string) (seq uint64, version string, ok bool) {
	_, rest, found := strings.Cut(mark, " ")
	seqText, version, found2 := strings.Cut(rest, " ")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	return seq, version, found && found2 && err == nil
}

// acceptsNewest reports whether req accepts the newest response its stream
// was sent: it carries no error and the version of the newest mark. (A
// client that rejected a response goes on naming the version before it.)
func acceptsNewest(req *cache.Request, returned map[string]string) bool {
	if req.GetErrorDetail() != nil || len(returned) == 0 {
		return false
	}
	var newestSeq uint64
	var newestVersion string
	for _, mark := range returned {
		seq, version, ok := markResponse(mark)
		if !ok {
			return false
		}
		if seq >= newestSeq {
			newestSeq, newestVersion = seq, version
		}
	}
	return newestVersion == req.GetVersionInfo()
}

// changesResponse is a SotW response of pre-marshaled resources.
type changesResponse struct {
	request  *cache.Request
	response *discoveryv3.DiscoveryResponse
	returned map[string]string
}

func (r *changesResponse) GetDiscoveryResponse() (*discoveryv3.DiscoveryResponse, error) {
	return r.response, nil
}

func (r *changesResponse) GetRequest() *discoveryv3.DiscoveryRequest { return r.request }
func (r *changesResponse) GetVersion() (string, error)               { return r.response.VersionInfo, nil }
func (r *changesResponse) GetResponseVersion() string                { return r.response.VersionInfo }
func (r *changesResponse) GetReturnedResources() map[string]string   { return r.returned }
func (r *changesResponse) GetContext() context.Context               { return context.Background() }
