package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/spf13/pflag"

	"github.com/inferxds/inferxds/drpolicy/actuator/local"
	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/drpolicy/engine"
)

// Actuators --actuator names.
const (
	actuatorNone  = "none"
	actuatorLocal = "local"
)

// drConfig are serve's settings for the DR reconcile loop.
type drConfig struct {
	DR            bool          `mapstructure:"dr"`
	Actuator      string        `mapstructure:"actuator"`
	ProbeInterval time.Duration `mapstructure:"probeInterval"`
	IncidentLog   string        `mapstructure:"incidentLog"`
	DRGuardShare  float64       `mapstructure:"drGuardShare"`
	LocalDir      string        `mapstructure:"localDir"`
}

var drSettings = []setting{
	{"dr", "dr"},
	{"actuator", "actuator"},
	{"probe-interval", "probeInterval"},
	{"incident-log", "incidentLog"},
	{"dr-guard-share", "drGuardShare"},
	{"local-dir", "localDir"},
}

func addDRFlags(f *pflag.FlagSet) {
	f.Bool("dr", false, "run the DR loop: probe instances, drain failed ones, promote standbys up the chain, fail zones over")
	f.String("actuator", actuatorNone, "what carries out DR actions that change what runs: none (drain, promote and zone failover only), local (model-server processes this serve starts) or kube (Kubernetes Deployments and Pods)")
	f.Duration("probe-interval", 0, "time between health probes of the fleet's instances (default: the policy's healthCheckInterval)")
	f.String("incident-log", "", "append each DR incident as a JSON line to this file at each new stage")
	f.Float64("dr-guard-share", 0.5, "share of instances failing at once above which the DR loop distrusts its probes and keeps the last known state")
	f.String("local-dir", "", "where --actuator local keeps its model servers' logs and ready files (default: a temporary directory, removed on exit)")
}

// check refuses DR settings that cannot work.
func (c drConfig) check() error {
	switch c.Actuator {
	case actuatorNone, actuatorLocal, actuatorKube:
	default:
		return fmt.Errorf("--actuator %q: must be none, local or kube", c.Actuator)
	}
	if c.DRGuardShare < 0 || c.DRGuardShare > 1 {
		return fmt.Errorf("--dr-guard-share %v: must be between 0 and 1", c.DRGuardShare)
	}
	if c.Actuator != actuatorNone && !c.DR {
		return fmt.Errorf("--actuator %s needs --dr: what it runs is the DR loop's to manage", c.Actuator)
	}
	if c.ProbeInterval < 0 {
		return fmt.Errorf("--probe-interval %v: must not be negative (0: the policy's healthCheckInterval)", c.ProbeInterval)
	}
	return nil
}

// checkDR checks the DR settings, and that --actuator local has a fleet
// of its own to run.
func (c config) checkDR() error {
	if c.Actuator == actuatorLocal && c.sources().fromKube() {
		return errors.New("--actuator local runs the fleet's model servers on this machine; with --source kube the cluster runs them")
	}
	return c.drConfig.check()
}

// startDRLoop builds the DR loop of a serve with --dr, opening the
// incident log and, with --actuator local, launching the fleet's model
// servers; the returned function stops what it started.
func (cp *controlPlane) startDRLoop(ctx context.Context) (_ func(), err error) {
	cfg := engine.Config{
		Hub: cp.hub, ProbeInterval: cp.cfg.ProbeInterval, GuardShare: cp.cfg.DRGuardShare,
		Registry: cp.server.Registry(), Logger: cp.logger.With("part", "dr"),
	}
	var stops []func()
	stop := func() {
		for _, s := range slices.Backward(stops) {
			s()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	if cp.cfg.IncidentLog != "" {
		f, err := os.OpenFile(cp.cfg.IncidentLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("--incident-log: %w", err)
		}
		cfg.IncidentLog = f
		stops = append(stops, func() {
			if err := f.Close(); err != nil {
				cp.logger.Error("incident log", "error", err)
			}
		})
	}
	cfg.Actuator = cp.actuator
	if cfg.Actuator == nil && cp.cfg.Actuator == actuatorLocal {
		act, stopLocal, err := cp.launchLocal(ctx)
		stops = append(stops, stopLocal)
		if err != nil {
			return nil, err
		}
		cfg.Actuator = act
	}
	if cp.cfg.Actuator == actuatorKube {
		if cfg.Actuator, err = cp.cfg.newKubeActuator(cp.logger.With("part", "kube-actuator")); err != nil {
			return nil, err
		}
	}
	if cp.elector != nil {
		cfg.Leading = cp.elector.Leading
		if cfg.Actuator != nil {
			cfg.Actuator = cp.elector.Guard(cfg.Actuator)
		}
	}
	if cp.drLoop, err = engine.New(cfg); err != nil {
		return nil, err
	}
	return stop, nil
}

// launchLocal starts a model server for every hot and warm instance of the
// fleet, this binary's hidden modelsim command in each; stop ends them all
// (and removes the directory it made).
func (cp *controlPlane) launchLocal(ctx context.Context) (*local.Actuator, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, func() {}, fmt.Errorf("--actuator local: %w", err)
	}
	dir, removeDir := cp.cfg.LocalDir, func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "inferxds-local-"); err != nil {
			return nil, func() {}, fmt.Errorf("--actuator local: %w", err)
		}
		removeDir = func() { os.RemoveAll(dir) }
	}
	act, err := local.New(local.Config{Command: []string{exe, "modelsim"}, Dir: dir, Logger: cp.logger.With("part", "local")})
	if err != nil {
		return nil, removeDir, err
	}
	stop := func() {
		act.Close()
		removeDir()
	}
	fleet, _ := cp.hub.Fleet.Get()
	if err := act.Launch(ctx, fleet); err != nil {
		return nil, stop, fmt.Errorf("--actuator local: %w", err)
	}
	cp.logger.Info("model servers launched", "processes", len(act.Instances()), "dir", dir)
	return act, stop, nil
}

// drState is the DR state translation reads, nil without --dr.
func (cp *controlPlane) drState() *dr.State {
	if cp.drLoop == nil {
		return nil
	}
	s, _ := cp.hub.DR.Get()
	return s
}

// serveFailBack is POST /dr/failback?zone=Z: the operator's fail-back of a
// failed-over zone.
func (cp *controlPlane) serveFailBack(w http.ResponseWriter, r *http.Request) {
	zone := r.URL.Query().Get("zone")
	switch {
	case cp.drLoop == nil:
		writeJSON(w, http.StatusConflict, map[string]string{"error": "the DR loop is off (serve --dr)"})
	case zone == "":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "no zone: POST /dr/failback?zone=ZONE"})
	default:
		if err := cp.drLoop.FailBack(zone); err != nil {
			writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
			return
		}
		cp.logger.Info("zone failed back on request", "zone", zone)
		writeJSON(w, http.StatusOK, map[string]string{"zone": zone, "result": "failed back"})
	}
}
