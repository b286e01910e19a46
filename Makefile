# inferxds — common tasks. `make run` needs Go; `make test` needs Go and gcc (race detector, cgo).
GO       ?= go
BIN      ?= bin
GOFLAGS  ?=
# go-nvml's cgo bindings declare deprecated NVML calls; keep their warnings
# out of build and test logs.
export CGO_CFLAGS ?= -O2 -g -Wno-deprecated-declarations
PROTOC_GEN_GO_VERSION      ?= v1.36.12
PROTOC_GEN_GO_GRPC_VERSION ?= v1.6.1

.PHONY: run test test-unit test-e2e bench build lint proto tools-proto clean

## run: serve xDS on 127.0.0.1:18000 from the embedded example policy and fleet.
run:
	$(GO) run ./cmd/inferxds serve

## test: every test with the race detector; the e2e suite prints its measurements.
test: test-unit test-e2e

test-unit:
	$(GO) test $(GOFLAGS) -race -count=1 $$($(GO) list ./... | grep -v /e2e)

test-e2e:
	$(GO) test $(GOFLAGS) -race -count=1 -v ./e2e/...

## bench: translation, weight-noise and placement benchmarks with allocations.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./snapshot/... ./gpupool/...

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
