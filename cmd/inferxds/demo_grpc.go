package main

import (
	"bytes"
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/xds"

	"github.com/inferxds/inferxds/cmd/modelsim/oip"
	bootstrap "github.com/inferxds/inferxds/envoy-bootstrap"
	"github.com/inferxds/inferxds/snapshot"
)

// grpcSender sends Open Inference Protocol requests through a proxyless
// gRPC client of zone that learns routes and endpoints from the control
// plane at xdsAddr, as `inferxds bootstrap --grpc` sets one up; close
// ends its connection.
func grpcSender(xdsAddr, zone string) (_ sender, closeConn func() error, _ error) {
	boot, err := bootstrap.GRPC(bootstrap.Params{NodeID: "demo-grpc-" + zone, Zone: zone, XDSAddress: xdsAddr,
		Cluster: bootstrap.DefaultCluster})
	if err != nil {
		return nil, nil, err
	}
	// A resolver with its own bootstrap, not the process-wide one gRPC
	// reads once from the environment: each drill's world has its own
	// control plane.
	resolver, err := xds.NewXDSResolverWithConfigForTesting(boot)
	if err != nil {
		return nil, nil, fmt.Errorf("xDS resolver: %w", err)
	}
	conn, err := grpc.NewClient("xds:///"+snapshot.APIListenerName,
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(resolver))
	if err != nil {
		return nil, nil, err
	}
	client := oip.NewGRPCInferenceServiceClient(conn)
	input := []byte(drillInput)
	return func(ctx context.Context, model string) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "model-name", model)
		resp, err := client.ModelInfer(ctx, &oip.ModelInferRequest{ModelName: model, RawInputContents: [][]byte{input}})
		if err != nil {
			return "", err
		}
		if out := resp.GetRawOutputContents(); len(out) != 1 || !bytes.Equal(out[0], input) {
			return resp.GetId(), fmt.Errorf("wrong answer %q", out)
		}
		return resp.GetId(), nil
	}, conn.Close, nil
}
