// Command gpu-agent is the inferxds node agent: it reads the node's GPUs
// through NVML and serves them on /metrics under dcgm-exporter's metric and
// label names (DCGM_FI_DEV_GPU_UTIL{gpu,UUID,device,modelName,Hostname}, ...),
// plus inferxds_gpu_up, inferxds_gpu_xid_errors_total and
// inferxds_gpu_process_memory_used_bytes, so the control plane can scrape it
// or an existing dcgm-exporter alike. GET /healthz is 200 while NVML answers.
// The work is done by package agent; this file wires flags, the ready file and
// signals.
//
// Exit status: 0 after SIGTERM/SIGINT and a graceful stop, and for --help;
// 1 when it cannot start, 2 for bad flags, 3 when this machine has no NVML
// (no NVIDIA driver).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/inferxds/inferxds/cmd/gpu-agent/agent"
	"github.com/inferxds/inferxds/cmd/internal/readyfile"
)

const (
	exitStartFailed = 1
	exitBadFlags    = 2
	exitNoNVML      = 3

	defaultLibrary = "libnvidia-ml.so.1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr, openNVML))
}

func openNVML(library string) nvml.Interface { return nvml.New(nvml.WithLibraryPath(library)) }

type options struct {
	listen         string
	hostname       string
	readyFile      string
	xidPollTimeout time.Duration
	library        string
}

// run is the whole command; open gives the NVML library at a path (the real
// one in main, go-nvml's mock in tests).
func run(ctx context.Context, args []string, stderr io.Writer, open func(library string) nvml.Interface) int {
	opts, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0 // the usage is printed
	}
	if err != nil {
		return exitBadFlags
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	a, err := agent.Start(ctx, agent.Config{
		NVML: open(opts.library), Hostname: opts.hostname, XIDPollTimeout: opts.xidPollTimeout, Logger: log,
	})
	if errors.Is(err, agent.ErrNVMLUnavailable) {
		fmt.Fprintf(stderr, "gpu-agent: %v: looked for %s; install the NVIDIA driver, or run dcgm-exporter\n", err, opts.library)
		return exitNoNVML
	}
	if err != nil {
		fmt.Fprintf(stderr, "gpu-agent: %v\n", err)
		return exitStartFailed
	}
	err = serve(ctx, a, opts, log)
	if err = errors.Join(err, a.Close()); err != nil {
		fmt.Fprintf(stderr, "gpu-agent: %v\n", err)
		return exitStartFailed
	}
	return 0
}

func serve(ctx context.Context, a *agent.Agent, opts options, log *slog.Logger) error {
	lis, err := net.Listen("tcp", opts.listen)
	if err != nil {
		return err
	}
	if err := writeReadyFile(opts.readyFile, lis.Addr()); err != nil {
		return errors.Join(err, lis.Close())
	}
	log.Info("serving", "address", lis.Addr().String())
	err = a.Serve(ctx, lis)
	log.Info("stopped")
	return err
}

func parseFlags(args []string, output io.Writer) (options, error) {
	fs := flag.NewFlagSet("gpu-agent", flag.ContinueOnError)
	fs.SetOutput(output)
	hostname, _ := os.Hostname() // empty when unknown; --hostname sets it
	var o options
	fs.StringVar(&o.listen, "listen", "127.0.0.1:9400", "address to serve /metrics and /healthz on (9400 is dcgm-exporter's port)")
	fs.StringVar(&o.hostname, "hostname", hostname, "value of the Hostname label")
	fs.StringVar(&o.readyFile, "ready-file", "", `once listening, write {"address":"host:port","pid":N} to this file (atomically)`)
	fs.DurationVar(&o.xidPollTimeout, "xid-poll-timeout", agent.DefaultXIDPollTimeout, "longest single wait for an XID event; bounds how long stopping takes")
	fs.StringVar(&o.library, "nvml-library", defaultLibrary, "NVML shared library to load")
	return o, fs.Parse(args)
}

// ready is the --ready-file's content.
type ready struct {
	Address string `json:"address"`
	PID     int    `json:"pid"`
}

// writeReadyFile tells a supervisor (or a test) where the agent listens.
func writeReadyFile(path string, addr net.Addr) error {
	return readyfile.Write(path, ready{Address: addr.String(), PID: os.Getpid()})
}
