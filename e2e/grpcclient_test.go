package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/xds"

	"github.com/inferxds/inferxds/cmd/modelsim/oip"
)

// rpcTimeout bounds one inference call; simulators answer in milliseconds.
const rpcTimeout = 5 * time.Second

// xdsClient is a proxyless gRPC client that learns its routes and endpoints
// from the control plane through gRPC-Go's own xDS implementation.
type xdsClient struct {
	conn  *grpc.ClientConn
	infer oip.GRPCInferenceServiceClient
}

// dialXDS connects to xds:///inference as a node of zone, with the bootstrap
// that `inferxds bootstrap --grpc` prints.
func dialXDS(t *testing.T, cp *controlPlane, zone string) *xdsClient {
	t.Helper()
	return dialBootstrap(t, cp.bootstrap(t, t.Name()+"-"+zone, zone, "--grpc"))
}

// dialBootstrap connects to xds:///inference with a gRPC xDS bootstrap.
func dialBootstrap(t *testing.T, bootstrap []byte) *xdsClient {
	t.Helper()
	resolver, err := xds.NewXDSResolverWithConfigForTesting(bootstrap)
	if err != nil {
		t.Fatalf("xDS resolver from bootstrap:\n%s\n%v", bootstrap, err)
	}
	conn, err := grpc.NewClient("xds:///inference",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(resolver))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &xdsClient{conn: conn, infer: oip.NewGRPCInferenceServiceClient(conn)}
}

// call sends one ModelInfer for model (routed by the model-name header, plus
// any extra header pairs) and returns the id of the instance that answered.
func (c *xdsClient) call(ctx context.Context, model string, headers ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, append([]string{"model-name", model}, headers...)...)
	resp, err := c.infer.ModelInfer(ctx, &oip.ModelInferRequest{ModelName: model})
	if err != nil {
		return "", err
	}
	return resp.GetId(), nil
}

// waitRoutable waits until a call for model succeeds, and returns how long
// that took.
func (c *xdsClient) waitRoutable(t *testing.T, model string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	err := poll(timeout, func() error {
		_, err := c.call(context.Background(), model)
		return err
	})
	if err != nil {
		t.Fatalf("model %s not routable within %v: %v", model, timeout, err)
	}
	return time.Since(start)
}

// answeredBy calls model n times and counts the answers per instance id.
func (c *xdsClient) answeredBy(t *testing.T, model string, n int, headers func(i int) []string) map[string]int {
	t.Helper()
	return countAnswers(t, n, func(i int) (string, error) {
		var extra []string
		if headers != nil {
			extra = headers(i)
		}
		return c.call(context.Background(), model, extra...)
	})
}

// percent formats part of total as a percentage.
func percent(part, total int) string {
	return fmt.Sprintf("%.1f%%", 100*float64(part)/float64(total))
}
