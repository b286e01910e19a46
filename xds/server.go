// Package xds owns the stateful edge of the control plane: the
// go-control-plane snapshot cache and the gRPC server that streams it (ADS
// state-of-the-world and Delta, plus the per-type discovery services), the
// state-of-the-world RDS and EDS answers that carry only changed resources,
// the mapping of nodes to views (zone and client kind), and ACK/NACK
// tracking and the Client Status Discovery Service (CSDS) that reports it.
//
// It never builds xDS resources and never decides when to: a controller
// hands it each view's snapshot.Resources, and nothing reaches the cache
// without passing validation.
package xds

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	statusv3 "github.com/envoyproxy/go-control-plane/envoy/service/status/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	deltav3 "github.com/envoyproxy/go-control-plane/pkg/server/delta/v3"
	sotwv3 "github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/inferxds/inferxds/snapshot"
)

// ServerConfig configures a Server; the zero value is ready to use.
type ServerConfig struct {
	// Logger receives NACKs, rejected snapshots and go-control-plane's own
	// messages. Defaults to slog.Default().
	Logger *slog.Logger
	// Registry is where the xDS metrics are registered. Defaults to a new
	// registry, available from Server.Registry.
	Registry *prometheus.Registry
	// Validate checks a view's resources before they may reach the cache.
	// Defaults to snapshot.Validate. (go-control-plane's
	// Snapshot.Consistent is not enough: it does not follow API listeners.)
	Validate func(*snapshot.Resources) error
	// KeepaliveTime is how long a connection may be idle before the server
	// pings the client; KeepaliveTimeout how long it waits for the answer.
	// Defaults: 30 s and 10 s.
	KeepaliveTime    time.Duration
	KeepaliveTimeout time.Duration
	// MaxConcurrentStreams bounds streams per client connection. Default 128.
	MaxConcurrentStreams uint32
	// GRPCOptions are appended to the server's options (credentials, for
	// example).
	GRPCOptions []grpc.ServerOption
	// Limits bound each client's streams, connections, node size and log
	// lines (see Limits for the defaults).
	Limits Limits
	// TrustDomain, when set, makes every node prove its id and zone with its
	// client certificate's URI SAN (NodeURI); the server must then use TLS
	// credentials that require client certificates.
	TrustDomain string
}

func (c ServerConfig) withDefaults() ServerConfig {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Validate == nil {
		c.Validate = snapshot.Validate
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.KeepaliveTime == 0 {
		c.KeepaliveTime = 30 * time.Second
	}
	if c.KeepaliveTimeout == 0 {
		c.KeepaliveTimeout = 10 * time.Second
	}
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = 128
	}
	c.Limits = c.Limits.withDefaults()
	// Streams beyond HTTP/2's limit wait in the client unseen; room above
	// MaxStreamsPerConnection lets the guard refuse them with a status.
	c.MaxConcurrentStreams = max(c.MaxConcurrentStreams, uint32(2*c.Limits.MaxStreamsPerConnection))
	return c
}

// Server serves one snapshot per view over xDS.
type Server struct {
	cfg     ServerConfig
	cache   *changesCache
	grpc    *grpc.Server
	tracker *tracker
	metrics *metrics
	guard   *guard
	cancel  context.CancelFunc
	zones   atomic.Pointer[map[string]bool] // nil: every zone is known

	mu       sync.Mutex
	versions map[snapshot.View]snapshot.Versions // in the cache
	cached   map[snapshot.View]*cachedSnapshot
}

// NewServer builds the cache and a gRPC server with ADS (state-of-the-world
// and Delta), the LDS, RDS, CDS and EDS services and CSDS registered on it.
func NewServer(cfg ServerConfig) *Server {
	cfg = cfg.withDefaults()
	m := newMetrics(cfg.Registry)
	logger := cacheLogger{cfg.Logger}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:      cfg,
		metrics:  m,
		cancel:   cancel,
		versions: map[snapshot.View]snapshot.Versions{},
		cached:   map[snapshot.View]*cachedSnapshot{},
	}
	// ads=false: with ads=true, gRPC clients that request resources by
	// name can wait forever for a complete set.
	s.cache = newChangesCache(cache.NewSnapshotCache(false, viewHash{s}, logger), viewHash{s})
	s.guard = newGuard(cfg.Limits, cfg.TrustDomain, cfg.Logger, cfg.Registry)
	s.tracker = newTracker(cfg.Logger, m, newLogLimiter(cfg.Limits.LogEvery), func(node *corev3.Node) (snapshot.View, bool) { return viewOf(node, s.knownZones()) })
	xdsServer := serverv3.NewServer(ctx, s.cache, s.tracker, sotwv3.WithLogger(logger), deltav3.WithLogger(logger))
	s.grpc = grpc.NewServer(s.grpcOptions()...)
	register(s.grpc, xdsServer)
	statusv3.RegisterClientStatusDiscoveryServiceServer(s.grpc, csds{s: s})
	cfg.Registry.MustRegister(syncCollector{s.tracker})
	return s
}

func (s *Server) grpcOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: s.cfg.KeepaliveTime, Timeout: s.cfg.KeepaliveTimeout}),
		// Clients may ping up to twice as often as the server does; faster
		// pings are abuse and close the connection.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: s.cfg.KeepaliveTime / 2, PermitWithoutStream: true}),
		grpc.MaxConcurrentStreams(s.cfg.MaxConcurrentStreams),
		grpc.ChainStreamInterceptor(s.guard.intercept),
	}
	return append(opts, s.cfg.GRPCOptions...)
}

func register(g *grpc.Server, x serverv3.Server) {
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, x)
	listenerservice.RegisterListenerDiscoveryServiceServer(g, x)
	routeservice.RegisterRouteDiscoveryServiceServer(g, x)
	clusterservice.RegisterClusterDiscoveryServiceServer(g, x)
	endpointservice.RegisterEndpointDiscoveryServiceServer(g, x)
}

// Registry holds the server's metrics (and those of the controller that
// feeds it).
func (s *Server) Registry() *prometheus.Registry { return s.cfg.Registry }

// SetZones names the zones that are views of their own; a node naming
// another zone receives the view without a zone. Until it is called every
// zone is accepted. A node already connected keeps the view it attached
// with until it reconnects.
func (s *Server) SetZones(zones []string) {
	known := make(map[string]bool, len(zones))
	for _, z := range zones {
		known[z] = true
	}
	s.zones.Store(&known)
}

func (s *Server) knownZones() map[string]bool {
	if known := s.zones.Load(); known != nil {
		return *known
	}
	return nil
}

// Serve accepts connections on lis until Stop; it returns nil after Stop.
func (s *Server) Serve(lis net.Listener) error {
	err := s.grpc.Serve(lis)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Stop closes every stream and stops the server: gracefully until ctx is
// done, then forcibly.
func (s *Server) Stop(ctx context.Context) {
	// Streams never end on their own; cancelling the xDS server's context
	// makes them return so that GracefulStop can finish.
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
	}
}

// SetView validates r and makes it the snapshot every node of view
// receives. It reports changed=false, and pushes nothing, when all four
// versions equal the view's current ones. An invalid r is rejected (counted,
// not logged: the caller logs the error) and the view keeps its previous
// snapshot.
func (s *Server) SetView(view snapshot.View, r *snapshot.Resources) (changed bool, err error) {
	if err := s.validate(r); err != nil {
		s.RecordRejected(StageValidate)
		return false, fmt.Errorf("view %s: invalid snapshot: %w", view, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if current, ok := s.versions[view]; ok && current == r.Versions {
		return false, nil
	}
	snap := newCacheSnapshot(r, s.cached[view])
	if err := s.cache.SetSnapshot(context.Background(), view.String(), snap.snapshot); err != nil {
		return false, fmt.Errorf("view %s: set snapshot: %w", view, err)
	}
	s.versions[view] = r.Versions
	s.cached[view] = snap
	s.metrics.recordPush(view.String(), r.Versions)
	return true, nil
}

// DropView forgets the snapshot of a view no node is connected to, and
// reports whether it did; a node of the view that connects later waits for
// a new one.
func (s *Server) DropView(view snapshot.View) bool {
	return s.tracker.whileIdle(view, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.cache.ClearSnapshot(view.String())
		delete(s.versions, view)
		delete(s.cached, view)
		s.metrics.forget(view.String())
	})
}

// RecordRejected counts a snapshot that never reached the cache, by the
// stage that refused it (StageTranslate, StageValidate).
func (s *Server) RecordRejected(stage string) {
	s.metrics.snapshotRejected.WithLabelValues(stage).Inc()
}

func (s *Server) validate(r *snapshot.Resources) error {
	if r == nil {
		return errors.New("nil resources")
	}
	return s.cfg.Validate(r)
}

// Versions returns the versions the cache holds for view.
func (s *Server) Versions(view snapshot.View) (snapshot.Versions, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.versions[view]
	return v, ok
}

// ServedVersions returns the versions each view's snapshot holds now,
// for every view that has one.
func (s *Server) ServedVersions() map[snapshot.View]snapshot.Versions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.versions)
}

// ConnectedViews returns, sorted, every view with a node connected now.
func (s *Server) ConnectedViews() []snapshot.View { return s.tracker.views() }

// ViewsChanged receives a value after a view gains its first connected
// node or loses its last; read ConnectedViews for the set. It has one
// slot: signals that arrive while one is pending merge into it.
func (s *Server) ViewsChanged() <-chan struct{} { return s.tracker.viewsChanged }

// Status describes every connected node, sorted by node id.
func (s *Server) Status() []NodeStatus {
	nodes := s.tracker.status()
	slices.SortFunc(nodes, func(a, b NodeStatus) int { return cmp.Compare(a.ID, b.ID) })
	return nodes
}
