// Package e2e owns the end-to-end tests: the real inferxds and modelsim
// binaries run as processes on 127.0.0.1, driven through their files and
// flags, and observed through real xDS clients (gRPC-Go's xDS resolver, a
// Delta ADS client built from go-control-plane's stubs, and a real Envoy:
// ENVOY_BIN, which `make test-e2e` sets to the pinned Envoy it installs),
// and BenchmarkEnvoyFanout, which times a fleet edit reaching many Envoys
// (`make bench-envoy`).
//
// It holds no production code; everything lives in _test.go files.
package e2e
