package sim

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/inferxds/inferxds/cmd/modelsim/oip"
)

// Server is one running simulated model instance.
type Server struct {
	cfg     Config
	models  map[string]bool
	inject  injector
	metrics *metrics
	load    *load
	health  *health.Server
	life    *lifecycle
	corrupt atomic.Bool

	statusMu sync.Mutex // orders the gRPC health updates of concurrent transitions
	stopOnce sync.Once
	stop     chan struct{} // closed by Shutdown and Close

	httpServer *http.Server
	grpcServer *grpc.Server // nil when gRPC is disabled
	ready      Ready

	arrived   atomic.Int64 // inference requests seen, for ExitAfter
	crashOnce sync.Once
	crashed   chan struct{}

	serving  sync.WaitGroup
	errMu    sync.Mutex
	serveErr []error
}

var errModelNotServed = errors.New("model not served")

// notServingError is the error inference gets while the instance is
// loading, asleep or waking.
type notServingError struct{ status Status }

func (e notServingError) Error() string { return "not serving: " + string(e.status) }

// injectedError is the error a request gets when failure injection picks it.
type injectedError struct{ failure Failure }

func (injectedError) Error() string { return "injected failure" }

// Start validates cfg, binds both listeners and serves until Shutdown or Close.
func Start(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := newServer(cfg.withDefaults())
	httpListener, err := net.Listen("tcp", s.cfg.HTTPAddress)
	if err != nil {
		return nil, err
	}
	s.ready.HTTPAddress = httpListener.Addr().String()
	if s.cfg.GRPCAddress != "" {
		grpcListener, err := net.Listen("tcp", s.cfg.GRPCAddress)
		if err != nil {
			return nil, errors.Join(err, httpListener.Close())
		}
		s.ready.GRPCAddress = grpcListener.Addr().String()
		s.grpcServer = s.newGRPCServer()
		s.serve(func() error { return s.grpcServer.Serve(grpcListener) })
		s.httpServer.Handler = s.grpcToo(s.httpServer.Handler)
	}
	s.serve(func() error { return s.httpServer.Serve(httpListener) })
	s.life.startLoading(s.cfg.ColdLoadTime)
	return s, nil
}

func newServer(cfg Config) *Server {
	s := &Server{
		cfg:     cfg,
		models:  map[string]bool{},
		load:    newLoad(cfg.MaxConcurrency, cfg.Models),
		health:  health.NewServer(),
		crashed: make(chan struct{}),
		stop:    make(chan struct{}),
		ready:   Ready{ID: cfg.ID, Models: cfg.Models, PID: os.Getpid()},
	}
	for _, m := range cfg.Models {
		s.models[m] = true
	}
	s.corrupt.Store(cfg.Corrupt)
	s.life = newLifecycle(cfg, s.stop, s.publishStatus)
	s.metrics = newMetrics(s.load, s.life, cfg.Checkpoint)
	s.httpServer = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second, Protocols: &http.Protocols{}}
	s.httpServer.Protocols.SetHTTP1(true)
	s.httpServer.Protocols.SetUnencryptedHTTP2(true) // gRPC clients on the HTTP port
	s.setFailure(cfg.Failure)
	return s
}

// grpcToo answers gRPC requests (HTTP/2, application/grpc) on the HTTP
// port too, so one address serves both protocols: a fleet entry has one
// port, which HTTP probes and proxyless gRPC clients share.
func (s *Server) grpcToo(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			s.grpcServer.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) newGRPCServer() *grpc.Server {
	g := grpc.NewServer()
	oip.RegisterGRPCInferenceServiceServer(g, &oipService{s: s})
	healthpb.RegisterHealthServer(g, s.health)
	return g
}

func (s *Server) serve(run func() error) {
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		// Close can stop a server before its Serve starts; that is no error.
		if err := run(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) {
			s.errMu.Lock()
			s.serveErr = append(s.serveErr, err)
			s.errMu.Unlock()
		}
	}()
}

// Ready is where the instance listens; it is what the ready file holds.
func (s *Server) Ready() Ready { return s.ready }

// Failure is the failure injected now (defaults filled in).
func (s *Server) Failure() Failure { return s.inject.current() }

// SetFailure changes the injected failure at run time and restarts the
// request count its Rate is measured on; Failure{} recovers.
func (s *Server) SetFailure(f Failure) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.setFailure(f)
	return nil
}

func (s *Server) setFailure(f Failure) {
	s.inject.set(f)
	s.publishStatus()
}

// Status is what the instance is doing now.
func (s *Server) Status() Status {
	if s.Failure().Total() {
		return StatusFailing
	}
	return s.life.phase()
}

// Sleeping reports whether the instance is asleep (also while waking up).
func (s *Server) Sleeping() bool { return s.life.sleeping() }

// Sleep puts the instance to sleep: new inference gets 503 / UNAVAILABLE,
// requests in flight finish. A wake-up in progress finishes first.
func (s *Server) Sleep(ctx context.Context) error { return s.life.sleep(ctx) }

// WakeUp returns once the instance is awake, after Config.WarmLoadTime when
// it was asleep, at once when it was awake. Concurrent calls wait for the
// same wake-up.
func (s *Server) WakeUp(ctx context.Context) error { return s.life.wake(ctx) }

// Corrupted reports whether inference answers wrongly.
func (s *Server) Corrupted() bool { return s.corrupt.Load() }

// SetCorrupt turns the corruption fault on or off: a corrupted instance
// answers inference with 200 and wrong content, and its health stays as it
// is, so only a check of the answer finds it.
func (s *Server) SetCorrupt(on bool) { s.corrupt.Store(on) }

// publishStatus tells the gRPC health service whether the instance serves.
func (s *Server) publishStatus() {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	status := healthpb.HealthCheckResponse_NOT_SERVING
	if s.Status() == StatusServing {
		status = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", status)
	s.health.SetServingStatus(oip.GRPCInferenceService_ServiceDesc.ServiceName, status)
}

// Crashed is closed when the instance crashed itself because Config.ExitAfter
// requests were answered and another arrived: its listeners and connections
// are closed at once, without draining, and the request that tripped it gets
// no answer. The binary exits when this happens.
func (s *Server) Crashed() <-chan struct{} { return s.crashed }

func (s *Server) crash() {
	s.crashOnce.Do(func() {
		close(s.crashed)
		go s.Close()
	})
}

// Shutdown stops taking requests, reports NOT_SERVING, and waits for the
// requests in flight to finish or ctx to end, whichever is first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopLifecycle()
	s.health.Shutdown()
	err := s.httpServer.Shutdown(ctx)
	if s.grpcServer != nil {
		stopGRPCGracefully(ctx, s.grpcServer)
	}
	return errors.Join(err, s.wait())
}

func stopGRPCGracefully(ctx context.Context, g *grpc.Server) {
	stopped := make(chan struct{})
	go func() {
		g.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		g.Stop()
		<-stopped
	}
}

// Close stops the instance at once, dropping requests in flight.
func (s *Server) Close() error {
	s.stopLifecycle()
	err := s.httpServer.Close()
	if s.grpcServer != nil {
		s.grpcServer.Stop()
	}
	return errors.Join(err, s.wait())
}

func (s *Server) stopLifecycle() { s.stopOnce.Do(func() { close(s.stop) }) }

func (s *Server) wait() error {
	s.serving.Wait()
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return errors.Join(s.serveErr...)
}

// process runs one inference request for model through crash check, model
// lookup, the lifecycle, failure injection, the concurrency limit and the
// latency.
func (s *Server) process(ctx context.Context, model string) error {
	if s.cfg.ExitAfter > 0 && s.arrived.Add(1) > int64(s.cfg.ExitAfter) {
		s.crash()
		<-ctx.Done() // the crash closes the connection under this request
		return ctx.Err()
	}
	if !s.models[model] {
		return errModelNotServed
	}
	if phase := s.life.phase(); phase != StatusServing {
		return notServingError{phase}
	}
	if f, fails := s.inject.decide(); fails {
		return injectedError{f}
	}
	release, err := s.load.acquire(ctx, model)
	if err != nil {
		return err
	}
	defer release()
	return sleep(ctx, s.cfg.Latency)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// modelLabel is the model_name label of a request: empty for models not served,
// so clients cannot grow the label set.
func (s *Server) modelLabel(model string) string {
	if s.models[model] {
		return model
	}
	return ""
}
