// Package xds owns the stateful edge of the control plane: the
// go-control-plane snapshot cache and the gRPC server that streams it (ADS
// state-of-the-world and Delta, plus the per-type discovery services), the
// state-of-the-world RDS and EDS answers that carry only changed resources,
// node grouping by zone, ACK/NACK tracking, and the Controller, the one place
// that debounces input changes and turns them into per-group snapshots.
//
// It never builds xDS resources itself: snapshot.Translate does, and nothing
// reaches the cache without passing validation.
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
	"time"

	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
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
	// Validate checks a group's resources before they may reach the cache.
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
	return c
}

// Server serves one snapshot per node group over xDS.
type Server struct {
	cfg     ServerConfig
	cache   *changesCache
	grpc    *grpc.Server
	tracker *tracker
	metrics *metrics
	cancel  context.CancelFunc

	mu       sync.Mutex
	versions map[string]snapshot.Versions // group → versions in the cache
}

// NewServer builds the cache and a gRPC server with ADS (state-of-the-world
// and Delta) and the LDS, RDS, CDS and EDS services registered on it.
func NewServer(cfg ServerConfig) *Server {
	cfg = cfg.withDefaults()
	m := newMetrics(cfg.Registry)
	logger := cacheLogger{cfg.Logger}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg,
		// ads=false: with ads=true, gRPC clients that request resources by
		// name can wait forever for a complete set.
		cache:    newChangesCache(cache.NewSnapshotCache(false, groupHash{}, logger), groupHash{}),
		tracker:  newTracker(cfg.Logger, m),
		metrics:  m,
		cancel:   cancel,
		versions: map[string]snapshot.Versions{},
	}
	xdsServer := serverv3.NewServer(ctx, s.cache, s.tracker, sotwv3.WithLogger(logger), deltav3.WithLogger(logger))
	s.grpc = grpc.NewServer(s.grpcOptions()...)
	register(s.grpc, xdsServer)
	return s
}

func (s *Server) grpcOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: s.cfg.KeepaliveTime, Timeout: s.cfg.KeepaliveTimeout}),
		// Clients may ping up to twice as often as the server does; faster
		// pings are abuse and close the connection.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: s.cfg.KeepaliveTime / 2, PermitWithoutStream: true}),
		grpc.MaxConcurrentStreams(s.cfg.MaxConcurrentStreams),
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

// Registry holds the server's metrics (and the Controller's, when it is
// built on this server).
func (s *Server) Registry() *prometheus.Registry { return s.cfg.Registry }

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

// SetGroup validates r and makes it the snapshot every node of group
// receives. It reports changed=false, and pushes nothing, when all four
// versions equal the group's current ones. An invalid r is rejected (counted,
// not logged: the caller logs the error) and the group keeps its previous
// snapshot.
func (s *Server) SetGroup(group string, r *snapshot.Resources) (changed bool, err error) {
	if err := s.validate(r); err != nil {
		s.metrics.snapshotRejected.WithLabelValues(stageValidate).Inc()
		return false, fmt.Errorf("group %q: invalid snapshot: %w", group, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if current, ok := s.versions[group]; ok && current == r.Versions {
		return false, nil
	}
	if err := s.cache.SetSnapshot(context.Background(), group, newCacheSnapshot(r)); err != nil {
		return false, fmt.Errorf("group %q: set snapshot: %w", group, err)
	}
	s.versions[group] = r.Versions
	s.metrics.recordPush(group, r.Versions)
	return true, nil
}

func (s *Server) validate(r *snapshot.Resources) error {
	if r == nil {
		return errors.New("nil resources")
	}
	return s.cfg.Validate(r)
}

// Versions returns the versions the cache holds for group.
func (s *Server) Versions(group string) (snapshot.Versions, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.versions[group]
	return v, ok
}

// ServedVersions returns the versions each group's snapshot holds now,
// for every group that has one.
func (s *Server) ServedVersions() map[string]snapshot.Versions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.versions)
}

// Groups returns, sorted, every group a node has connected from since the
// server started, whether or not it is still connected.
func (s *Server) Groups() []string { return s.tracker.groups() }

// NewGroups receives a value after a node of a group not seen before sends
// its first request; read Groups for the set. It has one slot: signals that
// arrive while one is pending merge into it.
func (s *Server) NewGroups() <-chan struct{} { return s.tracker.newGroup }

// Status describes every connected node, sorted by node id.
func (s *Server) Status() []NodeStatus {
	nodes := s.tracker.status()
	slices.SortFunc(nodes, func(a, b NodeStatus) int { return cmp.Compare(a.ID, b.ID) })
	return nodes
}
