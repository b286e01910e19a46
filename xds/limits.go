package xds

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Limits bound what one client can cost the server. Zero fields take the
// defaults.
type Limits struct {
	// MaxNodeBytes bounds a request's Node (id, locality, metadata), as
	// serialized. Default 64 KiB.
	MaxNodeBytes int
	// MaxStreamsPerConnection bounds the open xDS streams of one client
	// connection. Default 16.
	MaxStreamsPerConnection int
	// MaxConnectionsPerIdentity bounds the connections with an open stream
	// of one identity: the certificate's node URI with an identity check,
	// else the node id. Default 8.
	MaxConnectionsPerIdentity int
	// LogEvery is the shortest time between two log lines for one node and
	// type (NACKs) or one identity and reason (refused streams); those held
	// back are still counted. Default 1 minute.
	LogEvery time.Duration
}

// Default limits.
const (
	DefaultMaxNodeBytes              = 64 << 10
	DefaultMaxStreamsPerConnection   = 16
	DefaultMaxConnectionsPerIdentity = 8
	DefaultLogEvery                  = time.Minute
)

func (l Limits) withDefaults() Limits {
	l.MaxNodeBytes = orDefault(l.MaxNodeBytes, DefaultMaxNodeBytes)
	l.MaxStreamsPerConnection = orDefault(l.MaxStreamsPerConnection, DefaultMaxStreamsPerConnection)
	l.MaxConnectionsPerIdentity = orDefault(l.MaxConnectionsPerIdentity, DefaultMaxConnectionsPerIdentity)
	l.LogEvery = orDefault(l.LogEvery, DefaultLogEvery)
	return l
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Reasons a stream is refused: the label of inferxds_xds_refused_streams_total.
const (
	RefusedNodeTooLarge           = "node_too_large"
	RefusedStreamsPerConnection   = "streams_per_connection"
	RefusedConnectionsPerIdentity = "connections_per_identity"
	RefusedNoIdentity             = "no_identity"
	RefusedNodeMismatch           = "node_mismatch"
	RefusedZoneMismatch           = "zone_mismatch"
)

// guard admits xDS streams: it enforces Limits and, with a trust domain,
// that each request's node is the one its client certificate names. It
// runs before go-control-plane sees a request, so a refused node leaves no
// state behind.
type guard struct {
	limits      Limits
	trustDomain string // "": no identity check
	logger      *slog.Logger
	logs        *logLimiter
	refused     *prometheus.CounterVec

	mu      sync.Mutex
	streams map[string]int            // connection → open streams
	conns   map[string]map[string]int // identity → connection → admitted streams
}

func newGuard(limits Limits, trustDomain string, logger *slog.Logger, reg prometheus.Registerer) *guard {
	g := &guard{
		limits: limits, trustDomain: trustDomain, logger: logger, logs: newLogLimiter(limits.LogEvery),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inferxds_xds_refused_streams_total", Help: "xDS streams refused, by reason (a limit or an identity check).",
		}, []string{"reason"}),
		streams: map[string]int{},
		conns:   map[string]map[string]int{},
	}
	reg.MustRegister(g.refused)
	return g
}

// intercept is the server's stream interceptor.
func (g *guard) intercept(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	s := &guardedStream{ServerStream: ss, g: g, conn: connectionOf(ss.Context())}
	if n := g.openStream(s.conn); n > g.limits.MaxStreamsPerConnection {
		g.closeStream(s.conn)
		return s.refuse(RefusedStreamsPerConnection, s.conn, codes.ResourceExhausted,
			fmt.Sprintf("connection %s has %d xDS streams open, the limit is %d", s.conn, n-1, g.limits.MaxStreamsPerConnection))
	}
	defer g.closeStream(s.conn)
	err := handler(srv, s)
	identity, refusal := s.finish()
	g.release(identity, s.conn)
	if refusal != nil {
		return refusal
	}
	return err
}

func (g *guard) openStream(conn string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.streams[conn]++
	return g.streams[conn]
}

func (g *guard) closeStream(conn string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.streams[conn]--; g.streams[conn] <= 0 {
		delete(g.streams, conn)
	}
}

// admitConnection counts an admitted stream against its identity, and
// reports false when that would take the identity over its connections.
func (g *guard) admitConnection(identity, conn string) (ok bool, held int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	conns := g.conns[identity]
	if conns == nil {
		conns = map[string]int{}
		g.conns[identity] = conns
	}
	if conns[conn] == 0 && len(conns) >= g.limits.MaxConnectionsPerIdentity {
		return false, len(conns)
	}
	conns[conn]++
	return true, len(conns)
}

// release gives back the connection slot a stream of identity held ("":
// none).
func (g *guard) release(identity, conn string) {
	if identity == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	conns := g.conns[identity]
	if conns[conn]--; conns[conn] <= 0 {
		delete(conns, conn)
	}
	if len(conns) == 0 {
		delete(g.conns, identity)
	}
}

// connectionOf names a stream's connection by its peer address, which is
// unique among open connections.
func connectionOf(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return "unknown"
}

// guardedStream checks each discovery request the handler receives.
// go-control-plane receives on a goroutine of its own that can outlive the
// handler, so what check sets is guarded, and nothing is admitted once
// finish has run.
type guardedStream struct {
	grpc.ServerStream
	g    *guard
	conn string

	mu       sync.Mutex
	identity string // set once admitted
	refusal  error
	finished bool
}

// admitted is the identity the stream was admitted as; "" before.
func (s *guardedStream) admitted() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.identity
}

// admit counts the stream's connection against identity, unless the
// handler has returned already.
func (s *guardedStream) admit(identity string) (ok bool, held int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return true, 0
	}
	if ok, held = s.g.admitConnection(identity, s.conn); ok {
		s.identity = identity
	}
	return ok, held
}

// finish ends admission and returns what the stream was admitted as and
// why it was refused, if it was.
func (s *guardedStream) finish() (identity string, refusal error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finished = true
	return s.identity, s.refusal
}

func (s *guardedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	switch req := m.(type) {
	case *discoveryv3.DiscoveryRequest:
		return s.check(req.GetNode())
	case *discoveryv3.DeltaDiscoveryRequest:
		return s.check(req.GetNode())
	}
	return nil // another service's message (CSDS, for one): not a node's request
}

// check admits a request's node. Requests after the first may omit it
// (Envoy's set_node_on_first_message_only); one that names a node is
// checked again.
func (s *guardedStream) check(node *corev3.Node) error {
	if node == nil {
		if s.admitted() == "" && s.g.trustDomain != "" {
			return s.refuse(RefusedNoIdentity, s.conn, codes.PermissionDenied, "the first xDS request must name its node")
		}
		return nil
	}
	if size := proto.Size(node); size > s.g.limits.MaxNodeBytes {
		// The id of an oversized node is as untrusted as the rest of it: the
		// refusal is keyed by the connection and names the id cut short.
		return s.refuse(RefusedNodeTooLarge, s.conn, codes.ResourceExhausted,
			fmt.Sprintf("node %q is %d bytes serialized, the limit is %d", truncate(node.GetId()), size, s.g.limits.MaxNodeBytes))
	}
	identity, err := s.identify(node)
	if err != nil || s.admitted() != "" {
		return err
	}
	if ok, held := s.admit(identity); !ok {
		return s.refuse(RefusedConnectionsPerIdentity, identity, codes.ResourceExhausted,
			fmt.Sprintf("%s already has %d connections with xDS streams, the limit is %d", identity, held, s.g.limits.MaxConnectionsPerIdentity))
	}
	return nil
}

// identify returns the identity a node's streams count against: with a
// trust domain, the peer certificate's node URI, which must name this
// node and zone; without one, the node id.
func (s *guardedStream) identify(node *corev3.Node) (string, error) {
	if s.g.trustDomain == "" {
		return "node/" + node.GetId(), nil
	}
	cert := peerCertificate(s.Context())
	if cert == nil {
		return "", s.refuse(RefusedNoIdentity, s.conn, codes.PermissionDenied, "no client certificate: xDS needs mutual TLS")
	}
	id, err := identityOf(cert, s.g.trustDomain)
	if err != nil {
		return "", s.refuse(RefusedNoIdentity, cert.Subject.String(), codes.PermissionDenied, err.Error())
	}
	if reason, message := id.mismatch(node.GetId(), nodeZone(node)); reason != "" {
		return "", s.refuse(reason, id.uri, codes.PermissionDenied, message)
	}
	return id.uri, nil
}

// refuse counts and (rate-limited per identity and reason) logs a refusal,
// and returns the status the stream ends with.
func (s *guardedStream) refuse(reason, identity string, code codes.Code, message string) error {
	s.g.refused.WithLabelValues(reason).Inc()
	if ok, suppressed := s.g.logs.allow(identity + "\x00" + reason); ok {
		s.g.logger.Warn("xDS stream refused", "reason", reason, "identity", identity, "peer", s.conn,
			"error", message, "suppressed", suppressed)
	}
	err := status.Error(code, message)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refusal = err
	return err
}

func peerCertificate(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return nil
	}
	return info.State.PeerCertificates[0]
}
