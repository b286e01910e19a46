package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/drpolicy/actuator/local"
	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/topology"
)

// stackConfig says how to run the demo's local world.
type stackConfig struct {
	// Dir holds the inputs, logs and ready files.
	Dir string
	// Log gets the control plane's and the model servers' log lines.
	Log io.Writer
	// GPUNodes runs a simulated gpu-agent per node and scrapes them.
	GPUNodes bool
	// NoEnvoy sends the traffic through a proxyless gRPC client in place
	// of an Envoy.
	NoEnvoy bool
	// ProbeInterval is the DR engine's probe interval and HealthCheck the
	// policy's healthCheckInterval, the deep probes' period (the example's
	// are meant for real fleets).
	ProbeInterval, HealthCheck time.Duration
	// ColdLoadTime and WarmLoadTime are how long a cold start and a
	// wake-up take.
	ColdLoadTime, WarmLoadTime time.Duration
}

// stack is everything the demo and the drills run locally: the control
// plane with its DR engine, the model servers it manages, simulated GPU
// nodes, and an Envoy taking the traffic.
type stack struct {
	fleet  *topology.Fleet // as launched
	policy *drpolicy.Policy
	cp     *controlPlane
	act    *local.Actuator
	gpus   *gpuNodes
	envoy  *envoyProcess
	send   sender
	// closeClient ends the proxyless gRPC client, when there is one.
	closeClient func() error

	cancel  context.CancelFunc
	running sync.WaitGroup
	runErr  chan error // the control plane's
	// serving is set once the control plane runs (and closes its own
	// listeners when it stops).
	serving bool
}

// stackStartTimeout bounds the launch of the model servers.
const stackStartTimeout = 60 * time.Second

// startStack starts the local world; close stops all of it.
func startStack(ctx context.Context, cfg stackConfig) (_ *stack, err error) {
	s := &stack{runErr: make(chan error, 1)}
	ctx, s.cancel = context.WithCancel(ctx)
	defer func() {
		if err != nil {
			err = errors.Join(err, s.close())
		}
	}()
	logger := slog.New(slog.NewTextHandler(cfg.Log, nil))
	if s.fleet, err = demoFleet(); err != nil {
		return nil, err
	}
	if cfg.GPUNodes {
		if s.gpus, err = startGPUNodes(s.fleet, logger.With("component", "gpu-agent")); err != nil {
			return nil, err
		}
	}
	serveCfg, err := demoServeConfig(cfg, s.fleet)
	if err != nil {
		return nil, err
	}
	fleet, pol, err := serveCfg.sources().load()
	if err != nil {
		return nil, err
	}
	s.policy = pol
	if s.cp, err = listen(serveCfg, logger, fleet, pol); err != nil {
		return nil, err
	}
	if err := s.launch(ctx, cfg, logger); err != nil {
		return nil, err
	}
	s.serve(ctx)
	if err := s.startClient(ctx, cfg); err != nil {
		return nil, err
	}
	return s, s.awaitRoutable(ctx)
}

// startClient starts what the traffic goes through: an Envoy of
// proxyZone, or with NoEnvoy a proxyless gRPC client of that zone.
func (s *stack) startClient(ctx context.Context, cfg stackConfig) (err error) {
	xdsAddr := s.cp.xdsLis.Addr().String()
	if cfg.NoEnvoy {
		s.send, s.closeClient, err = grpcSender(xdsAddr, proxyZone)
		return err
	}
	bin, err := findEnvoy(ctx)
	if err != nil {
		return err
	}
	if s.envoy, err = startEnvoy(bin, cfg.Dir, xdsAddr, proxyZone); err != nil {
		return err
	}
	s.send = envoySender(s.envoy.listen)
	return nil
}

// demoServeConfig is serve's configuration for the demo: the inputs
// written to cfg.Dir, every listener on a free 127.0.0.1 port, plaintext.
func demoServeConfig(cfg stackConfig, fleet *topology.Fleet) (config, error) {
	policyDir, fleetFile, err := writeDemoInputs(cfg.Dir, fleet, cfg.HealthCheck)
	if err != nil {
		return config{}, err
	}
	incidents := filepath.Join(cfg.Dir, "incidents.jsonl")
	if err := os.Remove(incidents); err != nil && !errors.Is(err, fs.ErrNotExist) { // a kept --dir's last run
		return config{}, err
	}
	scrape := "0"
	if cfg.GPUNodes {
		scrape = "200ms"
	}
	flags := newServeCommand().Flags()
	if err := flags.Parse([]string{
		"--policy-dir", policyDir, "--fleet", fleetFile, "--insecure",
		"--xds-address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0", "--envoy-listen-address", "127.0.0.1:0",
		"--scrape-interval", scrape, "--weight-min-interval", "1s",
		"--dr", "--probe-interval", cfg.ProbeInterval.String(), "--incident-log", incidents,
	}); err != nil {
		return config{}, err
	}
	return loadConfig(flags)
}

// launch starts the fleet's model servers through the local actuator.
func (s *stack) launch(ctx context.Context, cfg stackConfig, logger *slog.Logger) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir := filepath.Join(cfg.Dir, "instances")
	if err := os.RemoveAll(dir); err != nil { // a kept --dir's last run
		return err
	}
	started := time.Now().UTC().Truncate(time.Second)
	s.act, err = local.New(local.Config{
		Command: []string{self, "modelsim"}, Dir: dir,
		ColdLoadTime: cfg.ColdLoadTime, WarmLoadTime: cfg.WarmLoadTime,
		Checkpoints: func(model string) (string, time.Time) { return model + "@" + started.Format("150405"), started },
		Logger:      logger.With("component", "actuator"),
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, stackStartTimeout)
	defer cancel()
	return s.act.Launch(ctx, s.fleet)
}

// serve runs the control plane, its DR loop acting through the local
// actuator.
func (s *stack) serve(ctx context.Context) {
	s.cp.actuator = s.act
	s.serving = true
	s.running.Go(func() { s.runErr <- s.cp.run(ctx) })
}

// routableTimeout bounds the wait for every model to answer through the
// proxy or client.
const routableTimeout = 30 * time.Second

func (s *stack) awaitRoutable(ctx context.Context) error {
	deadline := time.Now().Add(routableTimeout)
	for _, m := range s.policy.Models {
		for {
			_, err := s.send(ctx, m.Name)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("model %s not routable within %v: %w", m.Name, routableTimeout, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// drState is the DR engine's latest state (never nil).
func (s *stack) drState() *dr.State {
	st, _ := s.cp.hub.DR.Get()
	if st == nil {
		return &dr.State{}
	}
	return st
}

// effectiveFleet is the fleet as translation sees it now.
func (s *stack) effectiveFleet() *topology.Fleet {
	f, _ := s.cp.hub.Fleet.Get()
	p, _ := s.cp.hub.Policy.Get()
	eff, _ := dr.Effective(f, p, s.drState())
	return eff
}

// freeze stops (SIGSTOP) an instance's process: it neither answers nor
// exits, as on a node that went down. The actuator's stop thaws it.
func (s *stack) freeze(instance string) error {
	procs := s.act.Instances()
	i := slices.IndexFunc(procs, func(p local.Process) bool { return p.Name == instance })
	if i < 0 {
		return fmt.Errorf("freeze %s: no running process", instance)
	}
	if err := syscall.Kill(procs[i].PID, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("freeze %s: %w", instance, err)
	}
	return nil
}

// close stops everything started, in reverse order, and waits for it:
// the control plane (and its DR loop) before the model servers, so that
// no action reaches a closed actuator.
func (s *stack) close() error {
	var errs []error
	if s.envoy != nil {
		errs = append(errs, s.envoy.stop())
	}
	if s.closeClient != nil {
		errs = append(errs, s.closeClient())
	}
	s.cancel()
	s.running.Wait()
	close(s.runErr)
	for err := range s.runErr {
		if err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, err)
		}
	}
	if s.cp != nil && !s.serving {
		s.cp.xdsLis.Close()
		s.cp.httpLis.Close()
	}
	if s.act != nil {
		errs = append(errs, s.act.Close())
	}
	if s.gpus != nil {
		errs = append(errs, s.gpus.close())
	}
	return errors.Join(errs...)
}
