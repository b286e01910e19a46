// Package app is the modelsim command line: flags, the ready file, signals
// and exit statuses. The modelsim binary and the hidden `inferxds modelsim`
// subcommand both run it, so either is one model instance; the behaviour
// lives in package sim.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/inferxds/inferxds/cmd/modelsim/sim"
)

// Exit statuses.
const (
	ExitStartFailed = 1
	ExitBadFlags    = 2
	ExitCrashed     = 3
)

const shutdownTimeout = 10 * time.Second

// Main runs modelsim with the command-line arguments args (without the
// program name) until SIGTERM or SIGINT, and returns the exit status.
func Main(args []string, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return Run(ctx, args, stderr)
}

// Run runs modelsim until ctx ends (then it drains) or it crashes, and
// returns the exit status.
func Run(ctx context.Context, args []string, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg, readyFile, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0 // the usage is printed
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitBadFlags
	}
	srv, err := sim.Start(cfg)
	if err != nil {
		log.Error("start", "err", err)
		return ExitStartFailed
	}
	ready := srv.Ready()
	if readyFile != "" {
		if err := sim.WriteReadyFile(readyFile, ready); err != nil {
			log.Error("ready file", "err", errors.Join(err, srv.Close()))
			return ExitStartFailed
		}
	}
	log.Info("listening", "id", ready.ID, "models", ready.Models, "http", ready.HTTPAddress, "grpc", ready.GRPCAddress, "status", srv.Status())
	return waitForEnd(ctx, srv, log)
}

func waitForEnd(ctx context.Context, srv *sim.Server, log *slog.Logger) int {
	select {
	case <-srv.Crashed():
		log.Warn("crashing: --exit-after requests answered")
		return ExitCrashed
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Error("shutdown", "err", err)
		return ExitStartFailed
	}
	return 0
}
