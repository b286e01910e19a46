// Command modelsim is a model-server simulator: one process is one model
// instance serving one or more model names over HTTP and Open Inference
// Protocol v2 gRPC, with injectable latency, failures and crashes, and vLLM
// load gauges on /metrics. It is the data-plane backend of inferxds tests and
// demos. The logic lives in package sim; this file only wires flags, the
// ready file and signals.
//
// HTTP API (every reply carries the X-Modelsim-Instance header):
//
//	POST /v1/models/<model>/predict  {"input": any} -> {"model","instance","output"} (404 if not served)
//	GET  /healthz                    200, or 503 while every request is failing
//	GET  /metrics                    modelsim_requests_total{model_name,protocol,code},
//	                                 vllm:num_requests_running / vllm:num_requests_waiting /
//	                                 vllm:kv_cache_usage_perc {model_name}
//	POST /admin/fail?status=503&code=UNAVAILABLE&rate=0.5   inject failure (all optional)
//	POST /admin/recover              back to healthy
//
// OpenAI-compatible API (vLLM's; the model is the body's "model" field,
// unknown ones get 404 with OpenAI's error body, code model_not_found):
//
//	POST /v1/chat/completions  {"model","messages":[{"role","content"}],"stream"}
//	POST /v1/completions       {"model","prompt","stream"}
//	POST /v1/embeddings        {"model","input": string or [string]}
//	GET  /v1/models            the models served
//
// With "stream": true, chat and completions answer as server-sent events:
// "data: {chunk}" per word, then "data: [DONE]".
//
// gRPC: inference.GRPCInferenceService (ServerLive, ServerReady, ModelReady,
// ModelMetadata, ModelInfer; the reply's id and its "instance" parameter name
// the instance) and grpc.health.v1.Health.
//
// Failure: setting any of --fail-http-status, --fail-grpc-code, --fail-rate
// turns failure on for both protocols; unset ones default to 503, UNAVAILABLE
// and rate 1. The rate is applied by request count (0.5 fails every 2nd
// inference request, HTTP and gRPC counted together), not at random. Health
// probes fail only while the rate is 1. The KV-cache gauge is a stand-in:
// running requests / --max-concurrency.
//
// --exit-after=N counts inference requests: N are answered, and the next one
// crashes the process (listeners and connections closed, no reply, no drain).
//
// Exit status: 0 after SIGTERM/SIGINT and a graceful drain, and for --help;
// 1 when it cannot start, 2 for bad flags, 3 when --exit-after crashed it.
package main

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

const (
	exitStartFailed = 1
	exitBadFlags    = 2
	exitCrashed     = 3

	shutdownTimeout = 10 * time.Second
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg, readyFile, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0 // the usage is printed
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitBadFlags
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	srv, err := sim.Start(cfg)
	if err != nil {
		log.Error("start", "err", err)
		return exitStartFailed
	}
	ready := srv.Ready()
	if readyFile != "" {
		if err := sim.WriteReadyFile(readyFile, ready); err != nil {
			log.Error("ready file", "err", errors.Join(err, srv.Close()))
			return exitStartFailed
		}
	}
	log.Info("serving", "id", ready.ID, "models", ready.Models, "http", ready.HTTPAddress, "grpc", ready.GRPCAddress)
	return waitForEnd(ctx, srv, log)
}

func waitForEnd(ctx context.Context, srv *sim.Server, log *slog.Logger) int {
	select {
	case <-srv.Crashed():
		log.Warn("crashing: --exit-after requests answered")
		return exitCrashed
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Error("shutdown", "err", err)
		return exitStartFailed
	}
	return 0
}

func parseFlags(args []string, output io.Writer) (sim.Config, string, error) {
	fs := flag.NewFlagSet("modelsim", flag.ContinueOnError)
	fs.SetOutput(output)
	var cfg sim.Config
	var models, grpcCode, readyFile string
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
	fs.StringVar(&readyFile, "ready-file", "", "write the bound addresses as JSON to this file once listening")
	if err := fs.Parse(args); err != nil {
		return cfg, "", err
	}
	cfg.Models = sim.ParseModels(models)
	code, codeErr := sim.ParseGRPCCode(grpcCode)
	cfg.Failure.GRPCCode = code
	return cfg, readyFile, errors.Join(codeErr, cfg.Validate())
}
