package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/inferxds/inferxds/cmd/internal/readyfile"
	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/drpolicy/engine"
	"github.com/inferxds/inferxds/internal/controller"
	"github.com/inferxds/inferxds/internal/hub"
	"github.com/inferxds/inferxds/internal/leader"
	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology"
	"github.com/inferxds/inferxds/topology/telemetry"
	"github.com/inferxds/inferxds/xds"
)

// shutdownGrace is how long streams and HTTP requests get to finish on
// SIGINT/SIGTERM before they are cut.
const shutdownGrace = 5 * time.Second

// Source names, as /status and the inferxds_source_error metric show them.
const (
	sourcePolicy = "policy"
	sourceFleet  = "fleet"
)

func newServeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve xDS for the policy and fleet, hot-reloading them when they change",
		Long: "With neither --policy-dir nor --fleet, serves the embedded example, unwatched; " +
			"give both to serve your own. They are watched; a broken edit, or one that removes " +
			"more than --max-removal-share of the models or instances at once, is logged and " +
			"refused, and the last good configuration stays in service.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd.Flags())
			if err != nil {
				return err
			}
			return serve(cmd.Context(), cfg, cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	addSourceFlags(f)
	f.String("xds-address", "127.0.0.1:18000", "gRPC (ADS) listen address; port 0 picks a free port")
	f.String("metrics-address", "127.0.0.1:9090", "HTTP listen address for /metrics, /healthz and /status")
	f.Duration("debounce", 100*time.Millisecond, "quiet time after a change before translating")
	f.Duration("max-delay", 500*time.Millisecond, "longest a change waits while changes keep coming")
	f.Duration("view-grace", 5*time.Minute, "how long a view (zone and client kind) is kept after its last proxy disconnects")
	f.String("ready-file", "", "write the listening addresses as JSON to this file once serving")
	addEnvoyListenFlag(f)
	addTelemetryFlags(f)
	addGuardFlags(f)
	addLogFlags(f)
	f.Bool("pprof", false, "serve Go's profiler at /debug/pprof/ on the metrics address")
	addSecurityFlags(f)
	addDRFlags(f)
	addKubeFlags(f)
	addLeaderFlags(f)
	addKubeActuatorFlags(f)
	addConfigFlag(f)
	return cmd
}

// controlPlane is one running serve. Sources publish into the hub; the
// controller subscribes to it and feeds the xDS server; the HTTP server
// beside them shows metrics and status.
type controlPlane struct {
	cfg     config
	logger  *slog.Logger
	hub     *hub.Hub
	server  *xds.Server
	ctrl    *controller.Controller
	guard   *inputGuard
	xdsLis  net.Listener
	httpLis net.Listener
	ops     *opsMetrics
	// metricsToken is the bearer token the metrics port requires; "" for
	// none.
	metricsToken string

	// kube is the Kubernetes fleet source; nil when the fleet is a file.
	kube *kubeFleet

	// telemetry subscribes to the hub's fleet and publishes it, with
	// telemetry applied, as the hub's telemetry value, which the controller
	// then translates; nil when scraping is off.
	telemetry *telemetry.Runner
	// drLoop probes, plans and publishes the DR state the controller
	// translates through; nil without --dr.
	drLoop *engine.Loop
	// elector takes part in the replicas' leader election and carries
	// the DR state between them; nil without --leader-elect.
	elector *leader.Elector
	// actuator, when set before run, is the DR loop's actuator in place of
	// the one --actuator names: an in-process caller (the demo, the
	// drills) that runs the model servers itself.
	actuator dr.Actuator
}

func serve(ctx context.Context, cfg config, logw io.Writer) error {
	logger, err := newLogger(logw, cfg)
	if err != nil {
		return err
	}
	// What the sources started (the Kubernetes informers) stops when serve
	// returns, also when it fails before serving.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fleet, pol, kubeFleet, err := cfg.sources().open(ctx, logger)
	if err != nil {
		return err
	}
	cfg.sources().logOrigin(logger)
	logLoaded(logger, cfg, fleet, pol)
	cp, err := listen(cfg, logger, fleet, pol)
	if err != nil {
		return err
	}
	cp.kube = kubeFleet
	if err := writeReadyFile(cfg.ReadyFile, cp.xdsLis.Addr(), cp.httpLis.Addr()); err != nil {
		cp.xdsLis.Close()
		cp.httpLis.Close()
		return err
	}
	return cp.run(ctx)
}

// listen wires sources → hub → controller → server around the loaded
// inputs and opens both listeners.
func listen(cfg config, logger *slog.Logger, fleet *topology.Fleet, pol *drpolicy.Policy) (*controlPlane, error) {
	opts, err := cfg.translateOptions()
	if err != nil {
		return nil, err
	}
	if err := cfg.checkDR(); err != nil {
		return nil, err
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	serverCfg, err := cfg.xdsServerConfig(xds.ServerConfig{Logger: logger, Registry: registry, Validate: snapshot.Validate}, logger)
	if err != nil {
		return nil, err
	}
	token, err := cfg.metricsToken()
	if err != nil {
		return nil, err
	}
	cp := &controlPlane{
		cfg:          cfg,
		logger:       logger,
		hub:          hub.New(registry),
		server:       xds.NewServer(serverCfg),
		metricsToken: token,
	}
	if cp.guard, err = newInputGuard(cfg, logger, registry); err != nil {
		return nil, err
	}
	if err := errors.Join(cp.guard.admitFleet(fleet, cfg.Fleet), cp.guard.admitPolicy(pol, cfg.PolicyDir)); err != nil {
		return nil, err
	}
	if cp.elector, err = cfg.newElector(cp.hub, registry, logger); err != nil {
		return nil, err
	}
	cp.ops = newOpsMetrics(registry, cp, time.Now())
	cp.hub.Policy.Publish(pol)
	cp.hub.Fleet.Publish(fleet)
	translated := cp.hub.Fleet
	if tcfg, on := cfg.telemetryConfig(); on {
		tcfg.Logger, tcfg.Registry = logger, registry
		if cp.telemetry, err = telemetry.NewRunner(tcfg, func(f *topology.Fleet) { cp.hub.Telemetry.Publish(f) }); err != nil {
			return nil, err
		}
		cp.telemetry.UpdateFleet(fleet)
		translated = cp.hub.Telemetry
	}
	ctrlCfg := controller.Config{
		Fleet: translated, Policy: cp.hub.Policy, Translator: snapshot.NewTranslator(opts...),
		Holdoff: cfg.Debounce, MaxDelay: cfg.MaxDelay, ViewGrace: cfg.ViewGrace, Logger: logger,
	}
	if cfg.DR {
		ctrlCfg.DR = cp.hub.DR
	}
	cp.ctrl = controller.New(cp.server, ctrlCfg)
	if cp.xdsLis, err = net.Listen("tcp", cfg.XDSAddress); err != nil {
		return nil, fmt.Errorf("xds address: %w", err)
	}
	if cp.httpLis, err = net.Listen("tcp", cfg.MetricsAddress); err != nil {
		cp.xdsLis.Close()
		return nil, fmt.Errorf("metrics address: %w", err)
	}
	logger.Info("serving xDS", "address", cp.xdsLis.Addr().String())
	logger.Info("serving metrics", "address", cp.httpLis.Addr().String())
	warnIfExposed(logger, cp.httpLis.Addr(), token)
	return cp, nil
}

// run serves until ctx ends or a part fails, then stops every part.
func (cp *controlPlane) run(ctx context.Context) error {
	if cp.cfg.DR {
		stopDR, err := cp.startDRLoop(ctx)
		if err != nil {
			cp.xdsLis.Close()
			cp.httpLis.Close()
			return err
		}
		defer stopDR()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	httpServer := &http.Server{Handler: requireToken(cp.metricsToken, cp.httpHandler()), ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	fail := func(err error) {
		if err != nil {
			cancel(err)
		}
	}
	wg.Go(func() { cp.ctrl.Run(ctx) })
	wg.Go(func() { fail(cp.server.Serve(cp.xdsLis)) })
	wg.Go(func() { fail(ignoreClosed(httpServer.Serve(cp.httpLis))) })
	wg.Go(func() { fail(cp.watchPolicy(ctx)) })
	wg.Go(func() { fail(cp.watchFleet(ctx)) })
	if cp.elector != nil {
		wg.Go(func() { fail(cp.elector.Run(ctx)) })
	}
	if cp.telemetry != nil {
		wg.Go(func() { cp.telemetry.Run(ctx) })
		wg.Go(func() { cp.feedTelemetry(ctx) })
	}
	if cp.drLoop != nil {
		wg.Go(func() { fail(cp.drLoop.Run(ctx)) })
	}
	<-ctx.Done()
	cp.logger.Info("shutting down")
	stopCtx, stopCancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer stopCancel()
	cp.server.Stop(stopCtx)
	_ = httpServer.Shutdown(stopCtx)
	wg.Wait()
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// watchPolicy hot-reloads a policy directory; the embedded example is
// never watched.
func (cp *controlPlane) watchPolicy(ctx context.Context) error {
	if cp.cfg.PolicyDir == "" {
		return nil
	}
	return drpolicy.Watch(ctx, cp.cfg.PolicyDir, cp.watchOptions(sourcePolicy), func(p *drpolicy.Policy, err error) {
		if err == nil {
			err = cp.guard.admitPolicy(p, cp.cfg.PolicyDir)
		}
		if cp.sourceResult(sourcePolicy, err) {
			cp.hub.Policy.Publish(p)
		}
	})
}

func (cp *controlPlane) watchFleet(ctx context.Context) error {
	if cp.kube != nil {
		return cp.followKube(ctx)
	}
	if cp.cfg.Fleet == "" {
		return nil
	}
	return topology.WatchFile(ctx, cp.cfg.Fleet, cp.watchOptions(sourceFleet), func(f *topology.Fleet, err error) {
		if err == nil {
			err = cp.guard.admitFleet(f, cp.cfg.Fleet)
		}
		if cp.sourceResult(sourceFleet, err) {
			cp.hub.Fleet.Publish(f)
		}
	})
}

// feedTelemetry hands each source fleet the hub receives to the telemetry
// runner, which publishes it with telemetry applied.
func (cp *controlPlane) feedTelemetry(ctx context.Context) {
	cp.hub.Fleet.Follow(ctx, cp.telemetry.UpdateFleet)
}

// sourceResult records (and, when it failed, logs) a source's latest load
// and says whether to use it; a failed load keeps the last good input.
func (cp *controlPlane) sourceResult(source string, err error) bool {
	_, wasFailing := cp.hub.SourceErrors()[source]
	cp.hub.ReportSourceError(source, err)
	if err != nil {
		cp.logger.Error("source error", "source", source, "error", err)
	} else {
		cp.ops.sourceLoaded(source, time.Now())
		if wasFailing {
			cp.logger.Info("source recovered: the fixed input is applied", "source", source)
		}
	}
	return err == nil
}

// writeReadyFile tells a supervisor (or a test) where serve listens.
func writeReadyFile(path string, xdsAddr, metricsAddr net.Addr) error {
	return readyfile.Write(path, map[string]string{"xdsAddress": xdsAddr.String(), "metricsAddress": metricsAddr.String()})
}
