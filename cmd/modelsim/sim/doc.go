// Package sim is the model-server simulator: one Server is one model instance
// serving one or more model names over HTTP (predict, health, Prometheus
// metrics with vLLM gauge names, failure-injection admin endpoints) and over
// gRPC (Open Inference Protocol v2 and the standard gRPC health service).
//
// It owns its listeners, goroutines and clocks; it knows nothing about the
// control plane. Tests and the e2e suite start it in-process with Start, or
// start the cmd/modelsim binary and learn its ports from the ready file
// (Ready, WaitReadyFile), and talk to it with Predict, Infer and InstanceOf.
package sim
