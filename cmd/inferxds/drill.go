package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/drpolicy/dr"
)

// drillOptions are the settings of one drill run.
type drillOptions struct {
	Scenario  string
	JSON      string
	Report    string
	Dir       string
	NoEnvoy   bool
	WarmUp    time.Duration
	Settle    time.Duration
	Probe     time.Duration
	Deep      time.Duration
	ColdLoad  time.Duration
	WarmLoad  time.Duration
	Rate      float64
	InFlight  int
	HangGuard time.Duration
	Progress  io.Writer
}

func newDrillCommand() *cobra.Command {
	o := drillOptions{}
	cmd := &cobra.Command{
		Use:   "drill [--scenario NAME] [--json FILE] [--report FILE.html]",
		Short: "Inject the seed design's failures into a local fleet under traffic and print the measured recovery table",
		Long: "Each scenario starts a fresh local world (the control plane with its DR engine, the example " +
			"policy's model servers in three zones, an Envoy, traffic through it), injects its fault, waits " +
			"until the policy's standby counts are restored, and measures detection, switch (traffic off " +
			"the failed instances), total RTO, failed requests and data lost, beside the seed's bounds. " +
			"Scenarios: process-crash, node-down, gpu-failure, az-outage, model-corruption.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Progress = cmd.ErrOrStderr()
			return drill(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Scenario, "scenario", "", "run only this scenario (default: all)")
	f.StringVar(&o.JSON, "json", "", "write the results as JSON to this file")
	f.StringVar(&o.Report, "report", "", "write a self-contained HTML page with a timeline per scenario to this file")
	f.BoolVar(&o.NoEnvoy, "no-envoy", false, "send the traffic through a proxyless gRPC client (gRPC-Go's xDS) instead of an Envoy")
	f.StringVar(&o.Dir, "dir", "", "keep each scenario's inputs and logs under this directory (default: a temporary one, removed)")
	f.DurationVar(&o.WarmUp, "warm-up", 2*time.Second, "traffic before the fault")
	f.DurationVar(&o.Settle, "settle", time.Second, "traffic after the recovery")
	f.DurationVar(&o.Deep, "health-check-interval", time.Second, "the policy's healthCheckInterval: how often the deep probe checks that each model answers correctly")
	f.DurationVar(&o.Probe, "probe-interval", 200*time.Millisecond, "the DR engine's probe interval")
	f.DurationVar(&o.ColdLoad, "cold-load-time", 3*time.Second, "how long a cold standby takes to load")
	f.DurationVar(&o.WarmLoad, "warm-load-time", time.Second, "how long a warm standby takes to wake up")
	f.Float64Var(&o.Rate, "rate", 100, "requests per second per model, sent whatever the answers' latency")
	f.IntVar(&o.InFlight, "in-flight", 1000, "most requests per model out at once (one due beyond it is not sent); requests stuck on a frozen node hold theirs for up to 15s")
	f.DurationVar(&o.HangGuard, "timeout", 2*time.Minute, "longest wait for one scenario to recover")
	return cmd
}

// errNotRecovered is a drill whose fleet did not get back to policy.
var errNotRecovered = errors.New("not every scenario recovered")

func drill(ctx context.Context, o drillOptions, stdout io.Writer) error {
	if o.Rate <= 0 || o.InFlight < 1 {
		return fmt.Errorf("--rate %v and --in-flight %d must be positive", o.Rate, o.InFlight)
	}
	list := scenarios
	if o.Scenario != "" {
		sc, err := scenarioNamed(o.Scenario)
		if err != nil {
			return err
		}
		list = []scenario{sc}
	}
	var results []drillResult
	var runErrs []error
	for _, sc := range list {
		if ctx.Err() != nil {
			break // Ctrl-C: report what was measured
		}
		r, err := runDrill(ctx, sc, o)
		if err != nil {
			runErrs = append(runErrs, fmt.Errorf("%s: %w", sc.name, err))
			continue
		}
		results = append(results, r)
	}
	if err := errors.Join(writeTable(stdout, results), writeOutputs(o, results)); err != nil {
		return err
	}
	if err := errors.Join(runErrs...); err != nil {
		return err
	}
	for _, r := range results {
		if r.RestoredAt.IsZero() {
			return errNotRecovered
		}
	}
	return nil
}

func writeOutputs(o drillOptions, results []drillResult) error {
	var errs []error
	if o.JSON != "" {
		errs = append(errs, writeJSONFile(o.JSON, results))
	}
	if o.Report != "" {
		errs = append(errs, writeReportFile(o.Report, results))
	}
	return errors.Join(errs...)
}

func writeReportFile(path string, results []drillResult) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return errors.Join(writeReport(f, results, time.Now()), f.Close())
}

// runDrill runs one scenario in a fresh local world.
func runDrill(ctx context.Context, sc scenario, o drillOptions) (drillResult, error) {
	dir, cleanup, err := scenarioDir(o.Dir, sc.name)
	if err != nil {
		return drillResult{}, err
	}
	defer cleanup()
	log, err := os.Create(filepath.Join(dir, "inferxds.log"))
	if err != nil {
		return drillResult{}, err
	}
	defer log.Close()
	fmt.Fprintf(o.Progress, "%s: starting the local fleet (log: %s)\n", sc.name, log.Name())
	s, err := startStack(ctx, stackConfig{Dir: dir, Log: log, NoEnvoy: o.NoEnvoy, GPUNodes: sc.failure == dr.FailureGPU,
		ProbeInterval: o.Probe, HealthCheck: o.Deep, ColdLoadTime: o.ColdLoad, WarmLoadTime: o.WarmLoad})
	if err != nil {
		return drillResult{}, err
	}
	run, err := exercise(ctx, s, sc, o)
	return run.result(), errors.Join(err, s.close())
}

// exercise sends traffic, injects the fault after the warm-up and waits
// for the recovery (or the hang guard).
func exercise(ctx context.Context, s *stack, sc scenario, o drillOptions) (run drillRun, err error) {
	run = drillRun{Scenario: sc.name, Failure: sc.failure, Tally: newTally(), State: s.drState()}
	failed, err := sc.pick(s.fleet, s.policy)
	if err != nil {
		return run, err
	}
	run.Failed = failed
	tr := traffic{Send: s.send, Models: modelNames(s.policy), Interval: time.Duration(float64(time.Second) / o.Rate), InFlight: o.InFlight, Tally: run.Tally}
	run.Start = time.Now()
	stopTraffic := tr.start(ctx)
	defer func() {
		stopTraffic()
		run.End, run.State = time.Now(), s.drState()
	}()
	if err := sleepCtx(ctx, o.WarmUp); err != nil {
		return run, err
	}
	run.FaultAt = time.Now()
	if run.Fault, err = sc.inject(s, failed); err != nil {
		return run, err
	}
	fmt.Fprintf(o.Progress, "%s: %s\n", sc.name, run.Fault)
	deadline := time.Now().Add(o.HangGuard)
	for run.State = s.drState(); !run.recovered(); run.State = s.drState() {
		if time.Now().After(deadline) {
			fmt.Fprintf(o.Progress, "%s: not recovered within %v\n", sc.name, o.HangGuard)
			return run, nil
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return run, err
		}
	}
	fmt.Fprintf(o.Progress, "%s: recovered in %v\n", sc.name, time.Since(run.FaultAt).Round(time.Millisecond))
	return run, sleepCtx(ctx, o.Settle)
}

func modelNames(p *drpolicy.Policy) []string {
	var names []string
	for _, m := range p.Models {
		names = append(names, m.Name)
	}
	return names
}

// scenarioDir is the scenario's working directory and what removes it.
func scenarioDir(parent, name string) (string, func(), error) {
	if parent != "" {
		dir := filepath.Join(parent, name)
		return dir, func() {}, os.MkdirAll(dir, 0o755)
	}
	dir, err := os.MkdirTemp("", "inferxds-drill-"+name+"-")
	return dir, func() { os.RemoveAll(dir) }, err
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
