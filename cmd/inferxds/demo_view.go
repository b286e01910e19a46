package main

import (
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
)

// demoView is one frame of the demo's live view.
type demoView struct {
	Elapsed time.Duration
	Fleet   *topology.Fleet // as translation sees it
	Policy  *drpolicy.Policy
	// Traffic is each model's requests over the last Window.
	Traffic map[string]windowCounts
	Window  time.Duration
	// Events are the recovery's markers so far, from Start.
	Events []marker
	Start  time.Time
}

// clearScreen moves the cursor home and clears the terminal, so each
// frame replaces the last.
const clearScreen = "\x1b[H\x1b[2J"

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// render writes the frame: per model, each instance's zone, tier, role,
// state and share of the traffic, the model's rate and errors; then the
// events.
func (v demoView) render(w io.Writer) error {
	fmt.Fprintf(w, "inferxds demo  +%s  (Envoy in %s; Ctrl-C stops)\n", v.Elapsed.Round(100*time.Millisecond), proxyZone)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, m := range v.Policy.Models {
		traffic := v.Traffic[m.Name]
		answered := traffic.Total() - traffic.Failed
		fmt.Fprintf(tw, "\n%s (%s)\t%.0f req/s\terrors %d\t\t\t\n", m.Name, m.Priority,
			float64(traffic.Total())/v.Window.Seconds(), traffic.Failed)
		for _, in := range v.Fleet.Instances {
			if in.Model != m.Name {
				continue
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", in.Name, in.Zone, in.Tier, in.Role, state(in),
				share(traffic.Answers[in.Name], answered))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(v.Events) > 0 {
		fmt.Fprintln(w, "\nrecovery:")
	}
	for _, e := range v.Events {
		fmt.Fprintf(w, "  +%-8s %-9s %s\n", e.At.Sub(v.Start).Round(time.Millisecond), e.Kind, e.Label)
	}
	return nil
}

// state is what an instance is doing: its health while it is hot, else
// what its tier means (a warm standby sleeps, a cold one has no process).
func state(in topology.Instance) string {
	switch {
	case in.Health != topology.HealthServing && in.Health != topology.HealthUnknown && in.Health != "":
		return string(in.Health)
	case in.Tier == topology.TierWarm:
		return "asleep"
	case in.Tier == topology.TierCold:
		return "stopped"
	}
	return string(in.Health)
}

// share is part of total as a percentage, blank for no traffic.
func share(part, total int) string {
	if part == 0 {
		return "-"
	}
	return fmt.Sprintf("%5.1f%%", 100*float64(part)/float64(total))
}
