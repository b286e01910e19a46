package main

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
)

func addLogFlags(f *pflag.FlagSet) {
	f.String("log-level", "info", "least severe log level written: debug, info, warn or error")
	f.String("log-format", "text", "log line format: text (logfmt) or json")
}

// newLogger writes cfg's level and format to w.
func newLogger(w io.Writer, cfg config) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level (%s) %q: must be debug, info, warn or error", envName("log-level"), cfg.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch cfg.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format (%s) %q: must be text or json", envName("log-format"), cfg.LogFormat)
}

// logLoaded says at start-up what serve loaded and from where.
func logLoaded(logger *slog.Logger, cfg config, fleet *topology.Fleet, pol *drpolicy.Policy) {
	const example = "embedded example"
	logger.Info("loaded policy and fleet",
		"policy", cmp.Or(cfg.PolicyDir, example), "fleet", cfg.sources().fleetOrigin(),
		"models", len(pol.Models), "instances", len(fleet.Instances), "zones", len(fleet.Zones), "nodes", len(fleet.Nodes))
}
