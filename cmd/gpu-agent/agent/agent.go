package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultXIDPollTimeout is how long one wait for an XID event blocks when
// Config.XIDPollTimeout is zero. It bounds how long Close waits for the
// watcher to notice it should stop.
const DefaultXIDPollTimeout = time.Second

const (
	readHeaderTimeout = 5 * time.Second
	shutdownTimeout   = 5 * time.Second
)

// ErrNVMLUnavailable is returned by Start when this machine has no usable
// NVML: the library is missing or the NVIDIA driver is not loaded.
var ErrNVMLUnavailable = errors.New("NVML is not available on this machine")

// Config is what Start needs.
type Config struct {
	// NVML is the library to read: nvml.New() on a GPU node, go-nvml's mock
	// (see package nvmlmock) in tests. Start calls Init; Close calls Shutdown.
	NVML nvml.Interface
	// Hostname is the value of the Hostname label on every dcgm metric.
	Hostname string
	// XIDPollTimeout bounds one wait for an XID event; zero means
	// DefaultXIDPollTimeout. NVML counts it in milliseconds, so it is at
	// least one.
	XIDPollTimeout time.Duration
	// Logger receives query failures and watcher errors; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Agent reads a node's GPUs and serves them as metrics. Make one with Start
// and release it with Close.
type Agent struct {
	lib      nvml.Interface
	hostname string
	log      *slog.Logger
	gpus     []gpu
	xids     *xidLog
	registry *prometheus.Registry

	stopWatcher context.CancelFunc
	watcherDone sync.WaitGroup
	eventSet    nvml.EventSet // nil when no GPU could be watched for XIDs
	closeOnce   sync.Once
	closeErr    error
}

// Start initialises NVML, lists the GPUs and starts watching them for XID
// critical errors until ctx ends or Close is called. A GPU that cannot be
// identified or watched is logged and left out of that; Start fails only
// when NVML itself fails (ErrNVMLUnavailable when it is missing).
func Start(ctx context.Context, cfg Config) (*Agent, error) {
	cfg = cfg.withDefaults()
	if err := initNVML(cfg.NVML); err != nil {
		return nil, err
	}
	gpus, skipped, err := discover(cfg.NVML)
	if err != nil {
		return nil, errors.Join(err, shutdownNVML(cfg.NVML))
	}
	if skipped != nil {
		cfg.Logger.Warn("GPUs left out: they did not answer at start", "err", skipped)
	}
	a := &Agent{lib: cfg.NVML, hostname: cfg.Hostname, log: cfg.Logger, gpus: gpus, xids: newXIDLog()}
	a.registry = prometheus.NewRegistry()
	a.registry.MustRegister(collector{a})
	a.startXIDWatcher(ctx, cfg.XIDPollTimeout)
	return a, nil
}

func (c Config) withDefaults() Config {
	if c.XIDPollTimeout <= 0 {
		c.XIDPollTimeout = DefaultXIDPollTimeout
	}
	c.XIDPollTimeout = max(c.XIDPollTimeout, time.Millisecond)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func initNVML(lib nvml.Interface) error {
	switch ret := lib.Init(); ret {
	case nvml.SUCCESS:
		return nil
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return fmt.Errorf("%w (library not found)", ErrNVMLUnavailable)
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return fmt.Errorf("%w (NVIDIA driver not loaded)", ErrNVMLUnavailable)
	default:
		return fmt.Errorf("nvml init: %v", ret)
	}
}

func shutdownNVML(lib nvml.Interface) error {
	if ret := lib.Shutdown(); ret != nvml.SUCCESS {
		return fmt.Errorf("nvml shutdown: %v", ret)
	}
	return nil
}

// Close stops the XID watcher, frees its event set and shuts NVML down.
// It is safe to call more than once.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		a.stopWatcher()
		a.watcherDone.Wait()
		if a.eventSet != nil {
			if ret := a.eventSet.Free(); ret != nvml.SUCCESS {
				a.closeErr = fmt.Errorf("free XID event set: %v", ret)
			}
		}
		a.closeErr = errors.Join(a.closeErr, shutdownNVML(a.lib))
	})
	return a.closeErr
}

// Healthy reports whether NVML answers.
func (a *Agent) Healthy() error {
	if _, ret := a.lib.DeviceGetCount(); ret != nvml.SUCCESS {
		return fmt.Errorf("nvml device count: %v", ret)
	}
	return nil
}

// Handler serves GET /metrics and GET /healthz (200 when NVML answers, 503
// with the error otherwise).
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", a.serveHealth)
	return mux
}

func (a *Agent) serveHealth(w http.ResponseWriter, _ *http.Request) {
	if err := a.Healthy(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// Serve serves Handler on lis until ctx ends, then shuts the HTTP server
// down gracefully (in-flight scrapes finish, within a few seconds). It does
// not Close the agent.
func (a *Agent) Serve(ctx context.Context, lis net.Listener) error {
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: readHeaderTimeout}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if serveErr := <-served; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}
