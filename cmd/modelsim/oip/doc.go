// Package oip holds the Go bindings of the Open Inference Protocol (KServe v2)
// gRPC subset that the model-server simulator serves: inference.proto and the
// code protoc generates from it. The generated files are committed; after
// editing inference.proto, regenerate them from the repository root with
// `make proto` (protoc, protoc-gen-go and protoc-gen-go-grpc at the versions
// the Makefile pins).
package oip
