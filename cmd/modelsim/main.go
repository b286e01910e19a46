// Command modelsim is a model-server simulator: one process is one model
// instance serving one or more model names over HTTP and Open Inference
// Protocol v2 gRPC, with injectable latency, failures, corruption and
// crashes, vLLM's sleep mode, and vLLM load gauges on /metrics. It is the
// data-plane backend of inferxds tests and demos. The behaviour lives in
// package sim, the command line in package app; `inferxds modelsim ARGS`
// runs the same command.
//
// HTTP API (every reply carries the X-Modelsim-Instance header):
//
//	POST /v1/models/<model>/predict  {"input": any} -> {"model","instance","output"} (404 if not served,
//	                                 503 unless serving)
//	GET  /healthz                    {"instance","status","sleeping","checkpoint":{"id","time"}}; status is
//	                                 loading|sleeping|waking|serving|failing, HTTP 200 only when serving
//	GET  /metrics                    modelsim_requests_total{model_name,protocol,code},
//	                                 vllm:num_requests_running / vllm:num_requests_waiting /
//	                                 vllm:kv_cache_usage_perc {model_name}, modelsim_sleeping (0/1),
//	                                 modelsim_checkpoint_timestamp_seconds{checkpoint} (with --checkpoint)
//	POST /sleep?level=1              go to sleep (vLLM's sleep mode, level 1 only): inference answers 503
//	POST /wake_up                    200 once awake: after --warm-load-time when asleep, at once when
//	                                 awake; concurrent calls wait for the same wake-up
//	GET  /is_sleeping                {"is_sleeping": bool} (true while waking up)
//	POST /admin/fail?status=503&code=UNAVAILABLE&rate=0.5   inject failure (all optional)
//	POST /admin/corrupt              inference answers 200 with wrong content; health stays serving
//	POST /admin/recover              clear every fault (failure and corruption)
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
// the instance) and grpc.health.v1.Health. ServerReady, ModelReady and the
// health service say serving only when /healthz does; ModelInfer answers
// UNAVAILABLE while loading, asleep or waking.
//
// Tiers: the listeners are bound and the ready file written at once; the
// instance is "loading" for --cold-load-time, then "serving", or "sleeping"
// with --start-asleep (a warm standby: weights in host memory). A wake-up
// takes --warm-load-time. --checkpoint ID --checkpoint-time RFC3339 (both or
// neither) name the weights served, shown on /healthz and /metrics.
//
// Failure: setting any of --fail-http-status, --fail-grpc-code, --fail-rate
// turns failure on for both protocols; unset ones default to 503, UNAVAILABLE
// and rate 1. The rate is applied by request count (0.5 fails every 2nd
// inference request, HTTP and gRPC counted together), not at random. Health
// probes fail only while the rate is 1 (status "failing"). The KV-cache gauge
// is a stand-in: running requests / --max-concurrency.
//
// Corruption (--corrupt or POST /admin/corrupt): predict outputs a string
// that is not the input's echo, OpenAI answers are garbled text (embeddings
// of garbled text), ModelInfer outputs garbled BYTES; every health probe
// still says serving, so only a check of the answer finds it.
//
// --exit-after=N counts inference requests: N are answered, and the next one
// crashes the process (listeners and connections closed, no reply, no drain).
//
// Exit status: 0 after SIGTERM/SIGINT and a graceful drain, and for --help;
// 1 when it cannot start, 2 for bad flags, 3 when --exit-after crashed it.
package main

import (
	"os"

	"github.com/inferxds/inferxds/cmd/modelsim/app"
)

func main() { os.Exit(app.Main(os.Args[1:], os.Stderr)) }
