package xds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	statusv3 "github.com/envoyproxy/go-control-plane/envoy/service/status/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// csds answers the Client Status Discovery Service: per connected node,
// each type's config status and the resources it holds.
//
// A node is SYNCED for a type when it ACKed the latest response it was
// sent, ERROR when it NACKed it, STALE while that response awaits an
// answer (or after it rejected an older one), NOT_SENT before any.
// last_updated is the latest ACK of a SYNCED type, and for a STALE or
// ERROR one when the response it has not ACKed was sent. Each
// resource of the node's view is one entry at the version the node ACKed;
// its contents are the view's current resource, given only when the node
// is SYNCED for the type, since the server keeps no older versions.
// (State-of-the-world RDS and EDS are sent as changes: a SYNCED node may
// have ACKed an older version whose resources are the same.)
type csds struct {
	statusv3.UnimplementedClientStatusDiscoveryServiceServer
	s *Server
}

func (c csds) FetchClientStatus(_ context.Context, req *statusv3.ClientStatusRequest) (*statusv3.ClientStatusResponse, error) {
	return c.s.clientStatus(req)
}

func (c csds) StreamClientStatus(stream statusv3.ClientStatusDiscoveryService_StreamClientStatusServer) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return ignoreEOF(err)
		}
		resp, err := c.s.clientStatus(req)
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// clientStatus is the status of every connected node that one of req's
// node matchers matches (every node when there are none), sorted by id.
func (s *Server) clientStatus(req *statusv3.ClientStatusRequest) (*statusv3.ClientStatusResponse, error) {
	matchers, err := compileNodeMatchers(req.GetNodeMatchers())
	if err != nil {
		return nil, grpcstatus.Error(codes.InvalidArgument, err.Error())
	}
	snaps := s.snapshotsByView()
	resp := &statusv3.ClientStatusResponse{}
	for _, n := range s.Status() {
		if matchers.match(n.Node) {
			resp.Config = append(resp.Config, clientConfig(n, snaps[n.View], !req.GetExcludeResourceContents()))
		}
	}
	return resp, nil
}

// snapshotsByView are the views' current snapshots, by view name.
func (s *Server) snapshotsByView() map[string]*cache.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]*cache.Snapshot, len(s.cached))
	for view, c := range s.cached {
		out[view.String()] = c.snapshot
	}
	return out
}

func clientConfig(n NodeStatus, snap *cache.Snapshot, withContents bool) *statusv3.ClientConfig {
	cc := &statusv3.ClientConfig{Node: n.Node, ClientScope: n.View}
	for _, typeURL := range xdsTypes {
		cc.GenericXdsConfigs = append(cc.GenericXdsConfigs, typeConfigs(typeURL, n.Types[TypeName(typeURL)], snap, withContents)...)
	}
	return cc
}

// typeConfigs is one entry per resource of the type in the view, or one
// entry without a name when the view has none or nothing was sent.
func typeConfigs(typeURL string, ts TypeStatus, snap *cache.Snapshot, withContents bool) []*statusv3.ClientConfig_GenericXdsConfig {
	status := ts.ConfigStatus()
	entry := func(name string) *statusv3.ClientConfig_GenericXdsConfig {
		return &statusv3.ClientConfig_GenericXdsConfig{
			TypeUrl: typeURL, Name: name, VersionInfo: ts.AckedVersion,
			ConfigStatus: status, ClientStatus: clientResourceStatus(status, ts), ErrorState: errorState(status, ts),
			LastUpdated: lastUpdated(status, ts),
		}
	}
	items := heldResources(snap, typeURL)
	if status == statusv3.ConfigStatus_NOT_SENT || len(items) == 0 {
		return []*statusv3.ClientConfig_GenericXdsConfig{entry("")}
	}
	out := make([]*statusv3.ClientConfig_GenericXdsConfig, 0, len(items))
	for _, name := range slices.Sorted(maps.Keys(items)) {
		e := entry(name)
		if withContents && status == statusv3.ConfigStatus_SYNCED {
			e.XdsConfig = contents(typeURL, items[name].Resource)
		}
		out = append(out, e)
	}
	return out
}

func heldResources(snap *cache.Snapshot, typeURL string) map[string]types.ResourceWithTTL {
	if snap == nil {
		return nil
	}
	return snap.Resources[cache.GetResponseType(typeURL)].Items
}

// contents is a resource as an Any; a resource that cannot be marshalled
// (never the case for a validated snapshot) is reported without contents.
func contents(typeURL string, r types.Resource) *anypb.Any {
	b, err := cache.MarshalResource(r)
	if err != nil {
		return nil
	}
	return &anypb.Any{TypeUrl: typeURL, Value: b}
}

// ConfigStatus is the type's CSDS status for the node.
func (ts TypeStatus) ConfigStatus() statusv3.ConfigStatus {
	switch {
	case ts.SentVersion == "":
		return statusv3.ConfigStatus_NOT_SENT
	case ts.AckedVersion == ts.SentVersion:
		return statusv3.ConfigStatus_SYNCED
	case ts.NackedVersion == ts.SentVersion:
		return statusv3.ConfigStatus_ERROR
	default:
		return statusv3.ConfigStatus_STALE
	}
}

func clientResourceStatus(status statusv3.ConfigStatus, ts TypeStatus) adminv3.ClientResourceStatus {
	switch {
	case status == statusv3.ConfigStatus_ERROR:
		return adminv3.ClientResourceStatus_NACKED
	case ts.AckedVersion != "":
		return adminv3.ClientResourceStatus_ACKED
	default:
		return adminv3.ClientResourceStatus_REQUESTED
	}
}

// lastUpdated is when a SYNCED node last ACKed, and since when a STALE or
// ERROR node has been waited for: how long it has been behind.
func lastUpdated(status statusv3.ConfigStatus, ts TypeStatus) *timestamppb.Timestamp {
	at := ts.LastAckAt
	if status == statusv3.ConfigStatus_STALE || status == statusv3.ConfigStatus_ERROR {
		at = ts.PendingSince
	}
	if at.IsZero() {
		return nil
	}
	return timestamppb.New(at)
}

// errorState is the NACK that makes the type ERROR.
func errorState(status statusv3.ConfigStatus, ts TypeStatus) *adminv3.UpdateFailureState {
	if status != statusv3.ConfigStatus_ERROR {
		return nil
	}
	return &adminv3.UpdateFailureState{
		VersionInfo: ts.NackedVersion, Details: ts.LastNackError, LastUpdateAttempt: timestamppb.New(ts.LastNackAt),
	}
}

// identity is what status reports of a node: its id, cluster, locality,
// user agent and metadata, without the list of extensions Envoy sends
// (tens of kilobytes).
func identity(n *corev3.Node) *corev3.Node {
	return &corev3.Node{
		Id: n.GetId(), Cluster: n.GetCluster(), Locality: n.GetLocality(), Metadata: n.GetMetadata(),
		UserAgentName: n.GetUserAgentName(), UserAgentVersionType: n.GetUserAgentVersionType(),
	}
}

// nodeMatchers match nodes by id; an empty list matches every node.
type nodeMatchers []func(id string) bool

// compileNodeMatchers accepts id matchers (exact, prefix, suffix,
// contains, safe regex); metadata matchers are refused rather than
// ignored.
func compileNodeMatchers(ms []*matcherv3.NodeMatcher) (nodeMatchers, error) {
	out := make(nodeMatchers, 0, len(ms))
	for i, m := range ms {
		if len(m.GetNodeMetadatas()) > 0 {
			return nil, fmt.Errorf("node_matchers[%d]: node_metadatas is not supported; match on node_id", i)
		}
		match, err := compileStringMatcher(m.GetNodeId())
		if err != nil {
			return nil, fmt.Errorf("node_matchers[%d].node_id: %w", i, err)
		}
		out = append(out, match)
	}
	return out, nil
}

func (ms nodeMatchers) match(n *corev3.Node) bool {
	if len(ms) == 0 {
		return true
	}
	return slices.ContainsFunc(ms, func(m func(string) bool) bool { return m(n.GetId()) })
}

// compileStringMatcher turns an Envoy StringMatcher into a function; a
// missing matcher matches everything.
func compileStringMatcher(m *matcherv3.StringMatcher) (func(string) bool, error) {
	if m == nil {
		return func(string) bool { return true }, nil
	}
	fold := func(s string) string { return s }
	if m.GetIgnoreCase() {
		fold = strings.ToLower
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return func(s string) bool { return fold(s) == fold(p.Exact) }, nil
	case *matcherv3.StringMatcher_Prefix:
		return func(s string) bool { return strings.HasPrefix(fold(s), fold(p.Prefix)) }, nil
	case *matcherv3.StringMatcher_Suffix:
		return func(s string) bool { return strings.HasSuffix(fold(s), fold(p.Suffix)) }, nil
	case *matcherv3.StringMatcher_Contains:
		return func(s string) bool { return strings.Contains(fold(s), fold(p.Contains)) }, nil
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := regexp.Compile("^(?:" + p.SafeRegex.GetRegex() + ")$")
		if err != nil {
			return nil, err
		}
		return re.MatchString, nil
	default:
		return nil, fmt.Errorf("unsupported pattern %T", p)
	}
}

func ignoreEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}
