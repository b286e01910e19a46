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

	"github.com/inferxds/inferxds/snapshot"
)

// NodeStatus is what the server knows about one connected node.
type NodeStatus struct {
	ID      string `json:"id"`
	View    string `json:"view"`
	Streams int    `json:"streams"`
	// Types is keyed by short type name: "Listener", "RouteConfiguration",
	// "Cluster", "ClusterLoadAssignment".
	Types map[string]TypeStatus `json:"types"`
	// Node is the identity the node presented (id, cluster, locality, user
	// agent, metadata), as CSDS reports it.
	Node *corev3.Node `json:"-"`
}

// TypeStatus is one node's exchange for one resource type. A node is in
// sync for the type when AckedVersion equals SentVersion. For
// RouteConfiguration and ClusterLoadAssignment over state-of-the-world,
// SentVersion may be older than the view's version: nothing the node asks
// for has changed since.
type TypeStatus struct {
	SentVersion   string `json:"sentVersion,omitempty"`
	AckedVersion  string `json:"ackedVersion,omitempty"`
	NackedVersion string `json:"nackedVersion,omitempty"`
	// LastNackError is the client's message for its most recent NACK; it is
	// kept after later ACKs, with LastNackAt, as a record.
	LastNackError string    `json:"lastNackError,omitempty"`
	LastNackAt    time.Time `json:"lastNackAt,omitzero"`
	// PendingSince is when the oldest response the node has not ACKed was
	// sent; zero while it is in sync. LastAckAt is the node's latest ACK.
	PendingSince time.Time `json:"pendingSince,omitzero"`
	LastAckAt    time.Time `json:"lastAckAt,omitzero"`
}

// sentResponse is the latest response of one type on one stream.
type sentResponse struct {
	nonce, version string
	at             time.Time
}

type streamState struct {
	defaultType string // the type of a per-type (non-ADS) stream
	nodeID      string
	attached    bool
	sent        map[string]sentResponse // type URL → latest response
}

type nodeState struct {
	node    *corev3.Node // as identity, see identity
	view    snapshot.View
	streams int
	types   map[string]TypeStatus
}

// tracker implements go-control-plane's server callbacks: it follows every
// stream's responses and the ACKs and NACKs that answer them.
type tracker struct {
	serverv3.CallbackFuncs // fetch (REST) callbacks are not tracked
	logger                 *slog.Logger
	logs                   *logLimiter
	metrics                *metrics
	viewOf                 func(*corev3.Node) (snapshot.View, bool)
	viewsChanged           chan struct{}

	mu        sync.Mutex
	streams   map[streamKey]*streamState
	nodes     map[string]*nodeState
	connected map[snapshot.View]int // nodes per view

	// attachedViews holds, by node id, the view each connected node was
	// given when it attached, for the cache's key (viewHash): a node keeps
	// its view while it stays connected, even when the fleet's zones
	// change, so the views the controller builds are the ones its watches
	// wait on. A sync.Map: the cache reads it under its own lock.
	attachedViews sync.Map
}

// attachedView is the view node id was given when it attached; false while
// it is not connected.
func (t *tracker) attachedView(id string) (snapshot.View, bool) {
	v, ok := t.attachedViews.Load(id)
	if !ok {
		return snapshot.View{}, false
	}
	return v.(snapshot.View), true
}

func newTracker(logger *slog.Logger, m *metrics, logs *logLimiter, viewOf func(*corev3.Node) (snapshot.View, bool)) *tracker {
	return &tracker{
		logger:       logger,
		logs:         logs,
		metrics:      m,
		viewOf:       viewOf,
		viewsChanged: make(chan struct{}, 1),
		streams:      map[streamKey]*streamState{},
		nodes:        map[string]*nodeState{},
		connected:    map[snapshot.View]int{},
	}
}

// streamKey names a stream: go-control-plane numbers state-of-the-world
// and Delta streams separately, so both count from 1.
type streamKey struct {
	id    int64
	delta bool
}

func sotwKey(id int64) streamKey  { return streamKey{id: id} }
func deltaKey(id int64) streamKey { return streamKey{id: id, delta: true} }

func (t *tracker) OnStreamOpen(_ context.Context, id int64, typeURL string) error {
	t.open(sotwKey(id), typeURL)
	return nil
}

func (t *tracker) OnDeltaStreamOpen(_ context.Context, id int64, typeURL string) error {
	t.open(deltaKey(id), typeURL)
	return nil
}

func (t *tracker) OnStreamClosed(id int64, _ *corev3.Node)      { t.close(sotwKey(id)) }
func (t *tracker) OnDeltaStreamClosed(id int64, _ *corev3.Node) { t.close(deltaKey(id)) }

// OnStreamRequest records an ACK or NACK. After a NACK it sets the request's
// version to the rejected one, so the cache waits for new content instead
// of re-sending the rejected response at once, again and again.
func (t *tracker) OnStreamRequest(id int64, req *discoveryv3.DiscoveryRequest) error {
	rejected, nacked := t.answer(sotwKey(id), req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail())
	if nacked {
		req.VersionInfo = rejected
	}
	return nil
}

func (t *tracker) OnStreamDeltaRequest(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
	t.answer(deltaKey(id), req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail())
	return nil
}

func (t *tracker) OnStreamResponse(_ context.Context, id int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
	t.sent(sotwKey(id), resp.GetTypeUrl(), resp.GetNonce(), resp.GetVersionInfo())
}

func (t *tracker) OnStreamDeltaResponse(id int64, _ *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
	t.sent(deltaKey(id), resp.GetTypeUrl(), resp.GetNonce(), resp.GetSystemVersionInfo())
}

func (t *tracker) open(id streamKey, typeURL string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.streams[id] = &streamState{defaultType: typeURL, sent: map[string]sentResponse{}}
}

func (t *tracker) close(id streamKey) {
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
		t.attachedViews.Delete(st.nodeID)
		t.countView(n.view, -1)
		t.logger.Info("proxy disconnected", "node", st.nodeID, "view", n.view.String())
	}
	t.metrics.connected.Set(float64(len(t.nodes)))
}

// attach binds a stream to the node its first request names (a request
// without a node counts as node "" without a zone).
func (t *tracker) attach(st *streamState, node *corev3.Node) {
	if st.attached {
		return
	}
	st.nodeID, st.attached = node.GetId(), true
	n := t.nodes[st.nodeID]
	if n == nil {
		view, known := t.viewOf(node)
		if !known {
			t.metrics.unknownZones.Inc()
			if ok, suppressed := t.logs.allow("unknown zone"); ok {
				t.logger.Warn("node names a zone the fleet does not have; it gets the view without a zone",
					"node", node.GetId(), "zone", truncate(nodeZone(node)), "view", view.String(), "suppressed", suppressed)
			}
		}
		n = &nodeState{node: identity(node), view: view, types: map[string]TypeStatus{}}
		t.nodes[st.nodeID] = n
		t.attachedViews.Store(st.nodeID, view)
		t.metrics.connected.Set(float64(len(t.nodes)))
		t.countView(view, +1)
		t.logger.Info("proxy connected", "node", st.nodeID, "view", view.String(), "userAgent", node.GetUserAgentName())
	}
	n.streams++
}

// countView counts a node into or out of its view and signals when the
// view gains its first node or loses its last.
func (t *tracker) countView(view snapshot.View, delta int) {
	t.connected[view] += delta
	n := t.connected[view]
	if n == 0 {
		delete(t.connected, view)
	}
	if n == 0 || n == 1 && delta > 0 {
		select {
		case t.viewsChanged <- struct{}{}:
		default: // a signal is already pending
		}
	}
}

func (t *tracker) sent(id streamKey, typeURL, nonce, version string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.streams[id]
	if st == nil {
		return
	}
	now := time.Now()
	st.sent[typeURL] = sentResponse{nonce: nonce, version: version, at: now}
	t.updateType(st, typeURL, func(ts *TypeStatus) {
		ts.SentVersion = version
		if ts.PendingSince.IsZero() {
			ts.PendingSince = now
		}
	})
}

// answer classifies a request: a request answering the stream's latest
// response of its type is a NACK when it carries an error, else an ACK.
// Initial and stale requests are neither. It returns the version the request
// answers and whether it was a NACK.
func (t *tracker) answer(id streamKey, node *corev3.Node, typeURL, nonce string, nack *status.Status) (string, bool) {
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
	t.metrics.acks.WithLabelValues(TypeName(typeURL)).Inc()
	t.metrics.pushToAck.WithLabelValues(TypeName(typeURL)).Observe(time.Since(resp.at).Seconds())
	t.updateType(st, typeURL, func(ts *TypeStatus) {
		ts.AckedVersion, ts.PendingSince, ts.LastAckAt = resp.version, time.Time{}, time.Now()
	})
	return resp.version, false
}

// recordNack counts every NACK and keeps its message for /status; it logs
// at most one line per node and type per LogEvery.
func (t *tracker) recordNack(st *streamState, typeURL, version, message string) {
	t.metrics.nacks.WithLabelValues(TypeName(typeURL)).Inc()
	message = truncate(message)
	t.updateType(st, typeURL, func(ts *TypeStatus) {
		ts.NackedVersion, ts.LastNackError, ts.LastNackAt = version, message, time.Now()
	})
	if ok, suppressed := t.logs.allow(st.nodeID + "\x00" + typeURL); ok {
		t.logger.Warn("xDS NACK", "node", st.nodeID, "view", t.nodes[st.nodeID].view.String(),
			"type", TypeName(typeURL), "version", version, "error", message, "suppressed", suppressed)
	}
}

// maxClientText bounds a client-supplied string the server keeps or logs.
const maxClientText = 1024

func truncate(s string) string {
	if len(s) <= maxClientText {
		return s
	}
	return s[:maxClientText] + "…(truncated)"
}

func (t *tracker) updateType(st *streamState, typeURL string, update func(*TypeStatus)) {
	n := t.nodes[st.nodeID]
	if !st.attached || n == nil {
		return
	}
	name := TypeName(typeURL)
	ts := n.types[name]
	update(&ts)
	n.types[name] = ts
}

func (t *tracker) status() []NodeStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]NodeStatus, 0, len(t.nodes))
	for id, n := range t.nodes {
		out = append(out, NodeStatus{ID: id, View: n.view.String(), Streams: n.streams, Types: maps.Clone(n.types), Node: n.node})
	}
	return out
}

// whileIdle runs drop if no node of view is connected, and reports whether
// it did. No node attaches meanwhile, and a node's first request is
// attached before its watch is created, so no watch is lost to drop.
func (t *tracker) whileIdle(view snapshot.View, drop func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.connected[view] > 0 {
		return false
	}
	drop()
	return true
}

func (t *tracker) views() []snapshot.View {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.SortedFunc(maps.Keys(t.connected), snapshot.CompareViews)
}
