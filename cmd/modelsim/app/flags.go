package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/inferxds/inferxds/cmd/modelsim/sim"
)

// parseFlags reads the command line into a configuration and the ready
// file path, reporting every bad flag at once.
func parseFlags(args []string, output io.Writer) (sim.Config, string, error) {
	fs := flag.NewFlagSet("modelsim", flag.ContinueOnError)
	fs.SetOutput(output)
	var cfg sim.Config
	var models, grpcCode, readyFile, checkpoint, checkpointTime string
	fs.StringVar(&cfg.ID, "id", "", "instance id, returned in every reply (required)")
	fs.StringVar(&models, "model", "", "model name(s) served, comma-separated (required)")
	fs.StringVar(&cfg.HTTPAddress, "http-address", "127.0.0.1:0", "HTTP listen address")
	fs.StringVar(&cfg.GRPCAddress, "grpc-address", "127.0.0.1:0", "gRPC listen address; empty disables gRPC")
	fs.DurationVar(&cfg.Latency, "latency", 0, "latency added to every inference request")
	fs.IntVar(&cfg.MaxConcurrency, "max-concurrency", sim.DefaultMaxConcurrency, "inference requests running at once; more wait (vllm:num_requests_waiting)")
	fs.IntVar(&cfg.Failure.HTTPStatus, "fail-http-status", 0, "HTTP status failing requests get, e.g. 503; 0 = healthy")
	fs.StringVar(&grpcCode, "fail-grpc-code", "", "gRPC code failing requests get, e.g. UNAVAILABLE; empty = healthy")
	fs.Float64Var(&cfg.Failure.Rate, "fail-rate", 0, "fraction 0..1 of inference requests that fail, evenly by count (0.5 = every 2nd); with a status/code set, 0 means 1")
	fs.IntVar(&cfg.ExitAfter, "exit-after", 0, "answer this many inference requests, then crash (exit 3, no drain) when the next arrives; 0 = never")
	fs.BoolVar(&cfg.Corrupt, "corrupt", false, "start corrupted: inference answers 200 with wrong content until POST /admin/recover")
	fs.BoolVar(&cfg.StartAsleep, "start-asleep", false, "start as a warm standby: loaded into host memory, asleep until POST /wake_up")
	fs.DurationVar(&cfg.ColdLoadTime, "cold-load-time", 0, "how long the instance is \"loading\" after start before it serves (or sleeps)")
	fs.DurationVar(&cfg.WarmLoadTime, "warm-load-time", 0, "how long a wake-up from sleep takes")
	fs.StringVar(&checkpoint, "checkpoint", "", "id of the checkpoint the weights come from (with --checkpoint-time)")
	fs.StringVar(&checkpointTime, "checkpoint-time", "", "when that checkpoint was saved, RFC 3339 (with --checkpoint)")
	fs.StringVar(&readyFile, "ready-file", "", "write the bound addresses as JSON to this file once listening (also while loading)")
	if err := fs.Parse(args); err != nil {
		return cfg, "", err
	}
	cfg.Models = sim.ParseModels(models)
	code, codeErr := sim.ParseGRPCCode(grpcCode)
	cfg.Failure.GRPCCode = code
	cp, cpErr := parseCheckpoint(checkpoint, checkpointTime)
	cfg.Checkpoint = cp
	return cfg, readyFile, errors.Join(codeErr, cpErr, cfg.Validate())
}

// parseCheckpoint reads --checkpoint and --checkpoint-time: both or neither.
func parseCheckpoint(id, at string) (*sim.Checkpoint, error) {
	switch {
	case id == "" && at == "":
		return nil, nil
	case id == "" || at == "":
		return nil, errors.New("--checkpoint and --checkpoint-time go together: set both or neither")
	}
	t, err := time.Parse(time.RFC3339, at)
	if err != nil {
		return nil, fmt.Errorf("--checkpoint-time %q is not an RFC 3339 time: %w", at, err)
	}
	return &sim.Checkpoint{ID: id, Time: t}, nil
}
