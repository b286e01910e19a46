package sim

import (
	"net/http"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/inferxds/inferxds/cmd/modelsim/oip"
)

// TestHTTPPortAnswersGRPCToo: a gRPC client dialling the HTTP port gets
// the same instance as one on the gRPC port, and HTTP still answers there.
func TestHTTPPortAnswersGRPCToo(t *testing.T) {
	s := startServer(t, Config{})
	conn, err := grpc.NewClient(s.Ready().HTTPAddress, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	resp, err := oip.NewGRPCInferenceServiceClient(conn).ModelInfer(testContext(t), &oip.ModelInferRequest{
		ModelName: testModel, RawInputContents: [][]byte{[]byte("hello")},
	})
	if err != nil {
		t.Fatalf("ModelInfer on the HTTP port: %v", err)
	}
	if resp.GetId() != s.Ready().ID || string(resp.GetRawOutputContents()[0]) != "hello" {
		t.Errorf("reply id %q outputs %q; want %q echoing hello", resp.GetId(), resp.GetRawOutputContents(), s.Ready().ID)
	}
	if code := predictStatus(t, httpClient(t), s, testModel); code != http.StatusOK {
		t.Errorf("HTTP predict on the same port: %d", code)
	}
}
