package xds

import (
	"cmp"
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
)

// NodeStatus is what the server knows about one connected node.
type NodeStatus struct {
	ID      string
	Group   string
	Streams int
	// Types is keyed by short type name: "Listener", "RouteConfiguration",
	// "Cluster", "ClusterLoadAssignment".
	Types map[string]TypeStatus
}

// TypeStatus is one node's exchange for one resource type. A node is in
// sync for the type when AckedVersion equals SentVersion. For
// RouteConfiguration and ClusterLoadAssignment over state-of-the-world,
// SentVersion may be older than the group's version: nothing the node asks
// for has changed since.
type TypeStatus struct {
	SentVersion   string
	AckedVersion  string
	NackedVersion string
	// LastNackError is the client's message for its most recent NACK; it is
	// kept after later ACKs, with LastNackAt, as a record.
	LastNackError string
	LastNackAt    time.Time
}

// sentResponse is the latest response of one type on one stream.
type sentResponse struct{ nonce, version string }

type streamState struct {
	defaultType string // the type of a per-type (non-ADS) stream
	nodeID      string
	attached    bool
	sent        map[string]sentResponse // type URL → latest response
}

type nodeState struct {
	group   string
	streams int
	types   map[string]TypeStatus
}

// tracker implements go-control-plane's server callbacks: it follows every
// stream's responses and the ACKs and NACKs that answer them.
type tracker struct {
	serverv3.CallbackFuncs // fetch (REST) callbacks are not tracked
	logger                 *slog.Logger
	metrics                *metrics
	newGroup               chan struct{}

	mu      sync.Mutex
	streams map[int64]*streamState
	nodes   map[string]*nodeState
	seen    map[string]bool // groups
}

func newTracker(logger *slog.Logger, m *metrics) *tracker {
	return &tracker{
		logger:   logger,
		metrics:  m,
		newGroup: make(chan struct{}, 1),
		streams:  map[int64]*streamState{},
		nodes:    map[string]*nodeState{},
		seen:     map[string]bool{},
	}
}

func (t *tracker) OnStreamOpen(_ context.Context, id int64, typeURL string) error {
	t.open(id, typeURL)
	return nil
}

func (t *tracker) OnDeltaStreamOpen(_ context.Context, id int64, typeURL string) error {
	t.open(id, typeURL)
	return nil
}

func (t *tracker) OnStreamClosed(id int64, _ *corev3.Node)      { t.close(id) }
func (t *tracker) OnDeltaStreamClosed(id int64, _ *corev3.Node) { t.close(id) }

// OnStreamRequest records an ACK or NACK. After a NACK it sets the request's
// version to the rejected one, so the cache waits for new content instead
// of re-sending the rejected response at once, again and again.
func (t *tracker) OnStreamRequest(id int64, req *discoveryv3.DiscoveryRequest) error {
	rejected, nacked := t.answer(id, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail())
	if nacked {
		req.VersionInfo = rejected
	}
	return nil
}

func (t *tracker) OnStreamDeltaRequest(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
	t.answer(id, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail())
	return nil
}

func (t *tracker) OnStreamResponse(_ context.Context, id int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
	t.sent(id, resp.GetTypeUrl(), resp.GetNonce(), resp.GetVersionInfo())
}

func (t *tracker) OnStreamDeltaResponse(id int64, _ *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
	t.sent(id, resp.GetTypeUrl(), resp.GetNonce(), resp.GetSystemVersionInfo())
}

func (t *tracker) open(id int64, typeURL string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.streams[id] = &streamState{defaultType: typeURL, sent: map[string]sentResponse{}}
}

func (t *tracker) close(id int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.streams[id]
	delete(t.streams, id)
	if st == nil || !st.attached {
		return
	}
	n := t.nodes[st.nodeID]
	if n.streams--; n.streams == 0 {
		delete(t.nodes, st.nodeID)
	}
	t.metrics.connected.Set(float64(len(t.nodes)))
}

// attach binds a stream to the node its first request names (a request
// without a node counts as node "" of group "").
func (t *tracker) attach(st *streamState, node *corev3.Node) {
	if st.attached {
		return
	}
	st.nodeID, st.attached = node.GetId(), true
	n := t.nodes[st.nodeID]
	if n == nil {
		n = &nodeState{group: nodeGroup(node), types: map[string]TypeStatus{}}
		t.nodes[st.nodeID] = n
		t.metrics.connected.Set(float64(len(t.nodes)))
	}
	n.streams++
	t.markSeen(n.group)
}

func (t *tracker) markSeen(group string) {
	if t.seen[group] {
		return
	}
	t.seen[group] = true
	select {
	case t.newGroup <- struct{}{}:
	default: // a signal is already pending
	}
}

func (t *tracker) sent(id int64, typeURL, nonce, version string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.streams[id]
	if st == nil {
		return
	}
	st.sent[typeURL] = sentResponse{nonce: nonce, version: version}
	t.updateType(st, typeURL, func(ts *TypeStatus) { ts.SentVersion = version })
}

// answer classifies a request: a request answering the stream's latest
// response of its type is a NACK when it carries an error, else an ACK.
// Initial and stale requests are neither. It returns the version the request
// answers and whether it was a NACK.
func (t *tracker) answer(id int64, node *corev3.Node, typeURL, nonce string, nack *status.Status) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.streams[id]
	if st == nil {
		return "", false
	}
	t.attach(st, node)
	typeURL = cmp.Or(typeURL, st.defaultType)
	resp, ok := st.sent[typeURL]
	if nonce == "" || !ok || resp.nonce != nonce {
		return "", false
	}
	if nack != nil {
		t.recordNack(st, typeURL, resp.version, nack.GetMessage())
		return resp.version, true
	}
	t.metrics.acks.WithLabelValues(typeName(typeURL)).Inc()
	t.updateType(st, typeURL, func(ts *TypeStatus) { ts.AckedVersion = resp.version })
	return resp.version, false
}

func (t *tracker) recordNack(st *streamState, typeURL, version, message string) {
	t.metrics.nacks.WithLabelValues(typeName(typeURL)).Inc()
	t.updateType(st, typeURL, func(ts *TypeStatus) {
		ts.NackedVersion, ts.LastNackError, ts.LastNackAt = version, message, time.Now()
	})
	t.logger.Warn("xDS NACK", "node", st.nodeID, "group", t.nodes[st.nodeID].group,
		"type", typeName(typeURL), "version", version, "error", message)
}

func (t *tracker) updateType(st *streamState, typeURL string, update func(*TypeStatus)) {
	n := t.nodes[st.nodeID]
	if !st.attached || n == nil {
		return
	}
	name := typeName(typeURL)
	ts := n.types[name]
	update(&ts)
	n.types[name] = ts
}

func (t *tracker) status() []NodeStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]NodeStatus, 0, len(t.nodes))
	for id, n := range t.nodes {
		out = append(out, NodeStatus{ID: id, Group: n.group, Streams: n.streams, Types: maps.Clone(n.types)})
	}
	return out
}

func (t *tracker) groups() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Sorted(maps.Keys(t.seen))
}
