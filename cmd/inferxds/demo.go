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
)

// demoOptions are the settings of `inferxds demo`.
type demoOptions struct {
	Duration   time.Duration
	FaultAfter time.Duration
	Refresh    time.Duration
	Probe      time.Duration
	Deep       time.Duration
	ColdLoad   time.Duration
	WarmLoad   time.Duration
	Dir        string
	NoEnvoy    bool
}

func newDemoCommand() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo [--duration 30s]",
		Short: "Run a local fleet under traffic, kill a primary and show the recovery live",
		Long: "Starts the control plane with its DR engine, the example policy's model servers in three zones " +
			"(az-3 the standby zone), an Envoy and traffic through it, all on 127.0.0.1. A view refreshed in " +
			"place shows per model each instance's zone, tier, role, state and share of traffic; after " +
			"--fault-after the critical model's primary is killed and the view follows detection, the switch " +
			"and the standbys being refilled. Stops after --duration or on Ctrl-C, printing the measured " +
			"recovery; nothing it started is left running.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return demo(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.Duration, "duration", 30*time.Second, "how long the demo runs once the fleet is up")
	f.DurationVar(&o.FaultAfter, "fault-after", 8*time.Second, "when the primary is killed")
	f.DurationVar(&o.Refresh, "refresh", 500*time.Millisecond, "time between two frames of the view (plain output: 4 times as long)")
	f.DurationVar(&o.Deep, "health-check-interval", 2*time.Second, "the policy's healthCheckInterval: how often the deep probe checks that each model answers correctly")
	f.DurationVar(&o.Probe, "probe-interval", 500*time.Millisecond, "the DR engine's probe interval")
	f.DurationVar(&o.ColdLoad, "cold-load-time", 10*time.Second, "how long a cold standby takes to load")
	f.DurationVar(&o.WarmLoad, "warm-load-time", 3*time.Second, "how long a warm standby takes to wake up")
	f.BoolVar(&o.NoEnvoy, "no-envoy", false, "send the traffic through a proxyless gRPC client (gRPC-Go's xDS) instead of an Envoy")
	f.StringVar(&o.Dir, "dir", "", "keep the inputs and logs in this directory (default: a temporary one, removed)")
	return cmd
}

// demoInterval and demoInFlight bound the demo's traffic: 50 requests a
// second per model, at most 256 of them out at once.
const (
	demoInterval = 20 * time.Millisecond
	demoInFlight = 256
)

func demo(ctx context.Context, o demoOptions, stdout, stderr io.Writer) error {
	if o.FaultAfter >= o.Duration {
		return fmt.Errorf("--fault-after %v must be shorter than --duration %v", o.FaultAfter, o.Duration)
	}
	dir, cleanup, err := scenarioDir(o.Dir, "demo")
	if err != nil {
		return err
	}
	defer cleanup()
	log, err := os.Create(filepath.Join(dir, "inferxds.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	fmt.Fprintf(stderr, "starting the control plane, model servers and Envoy (log: %s)\n", log.Name())
	s, err := startStack(ctx, stackConfig{Dir: dir, Log: log, NoEnvoy: o.NoEnvoy, ProbeInterval: o.Probe, HealthCheck: o.Deep, ColdLoadTime: o.ColdLoad, WarmLoadTime: o.WarmLoad})
	if ctx.Err() != nil {
		return nil // Ctrl-C while starting: startStack stopped what it had started
	}
	if err != nil {
		return err
	}
	run, err := showRecovery(ctx, s, o, stdout)
	if errors.Is(err, context.Canceled) {
		err = nil // Ctrl-C ends the demo early
	}
	err = errors.Join(err, s.close())
	if run.FaultAt.IsZero() {
		fmt.Fprintln(stdout, "\nstopped before the fault: no recovery to measure")
		return err
	}
	fmt.Fprintln(stdout, "\nmeasured recovery:")
	return errors.Join(err, writeTable(stdout, []drillResult{run.result()}))
}

// showRecovery runs the traffic, kills the primary at FaultAfter and
// draws the view until Duration.
func showRecovery(ctx context.Context, s *stack, o demoOptions, w io.Writer) (run drillRun, err error) {
	crash := scenarios[0] // process-crash, the seed's first row
	run = drillRun{Scenario: crash.name, Failure: crash.failure, Tally: newTally(), State: s.drState()}
	if run.Failed, err = crash.pick(s.fleet, s.policy); err != nil {
		return run, err
	}
	tr := traffic{Send: s.send, Models: modelNames(s.policy), Interval: demoInterval, InFlight: demoInFlight, Tally: run.Tally}
	run.Start = time.Now()
	stop := tr.start(ctx)
	defer func() {
		stop()
		run.End, run.State = time.Now(), s.drState()
	}()
	tty := isTerminal(w)
	refresh := o.Refresh
	if !tty {
		refresh *= 4
	}
	ticker := time.NewTicker(refresh)
	defer ticker.Stop()
	fault := time.NewTimer(o.FaultAfter)
	defer fault.Stop()
	end := time.NewTimer(o.Duration)
	defer end.Stop()
	for {
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-end.C:
			run.State = s.drState()
			return run, drawFrame(w, s, run, tty)
		case <-fault.C:
			run.FaultAt = time.Now()
			if run.Fault, err = crash.inject(s, run.Failed); err != nil {
				return run, err
			}
		case <-ticker.C:
			run.State = s.drState()
			if err := drawFrame(w, s, run, tty); err != nil {
				return run, err
			}
		}
	}
}

// drawFrame draws the view: in place on a terminal, else as a block of
// plain lines.
func drawFrame(w io.Writer, s *stack, run drillRun, tty bool) error {
	now := time.Now()
	v := demoView{Elapsed: now.Sub(run.Start), Fleet: s.effectiveFleet(), Policy: s.policy,
		Traffic: map[string]windowCounts{}, Window: time.Second, Start: run.Start}
	for _, m := range s.policy.Models {
		v.Traffic[m.Name] = run.Tally.window(m.Name, now.Add(-v.Window), now)
	}
	if !run.FaultAt.IsZero() {
		run.End = now
		v.Events = run.result().Markers
	}
	if tty {
		fmt.Fprint(w, clearScreen)
	} else {
		fmt.Fprintln(w, "---")
	}
	return v.render(w)
}
