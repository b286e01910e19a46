// Package sim is the model-server simulator: one Server is one model instance
// serving one or more model names over HTTP (predict, health, Prometheus
// metrics with vLLM gauge names, failure-injection admin endpoints) and over
// gRPC (Open Inference Protocol v2 and the standard gRPC health service).
//
// An instance has the lifecycle of a vLLM server with sleep mode: it loads
// after Start (Config.ColdLoadTime), then serves or, as a warm standby
// (Config.StartAsleep), sleeps with its weights in host memory until a
// wake-up (Config.WarmLoadTime); only a serving instance answers inference.
// Faults: injected failures (Failure), corruption (wrong answers behind a
// healthy status) and a crash after a number of requests (Config.ExitAfter).
//
// It owns its listeners, goroutines and clocks; it knows nothing about the
// control plane. Tests and the e2e suite start it in-process with Start, or
// start the cmd/modelsim binary and learn its ports from the ready file
// (Ready, WaitReadyFile), and talk to it with Predict, Infer and InstanceOf.
package sim
