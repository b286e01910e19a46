package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"time"

	"github.com/inferxds/inferxds/cmd/internal/readyfile"
	"github.com/inferxds/inferxds/cmd/modelsim/oip"
)

// Ready is where an instance listens: the JSON the binary writes to its
// --ready-file once both listeners are bound, e.g.
//
//	{"id":"a","models":["llama-2-7b"],"http_address":"127.0.0.1:41234","grpc_address":"127.0.0.1:41235","pid":4242}
//
// grpc_address is omitted when gRPC is disabled.
type Ready struct {
	ID          string   `json:"id"`
	Models      []string `json:"models"`
	HTTPAddress string   `json:"http_address"`
	GRPCAddress string   `json:"grpc_address,omitempty"`
	PID         int      `json:"pid"`
}

// WriteReadyFile writes r to path atomically (temporary file, then rename), so
// a reader never sees half a file.
func WriteReadyFile(path string, r Ready) error { return readyfile.Write(path, r) }

// ReadReadyFile reads a ready file.
func ReadReadyFile(path string) (Ready, error) {
	var r Ready
	data, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("ready file %s: %w", path, err)
	}
	return r, nil
}

// WaitReadyFile polls for the ready file until it exists or ctx ends.
func WaitReadyFile(ctx context.Context, path string) (Ready, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		r, err := ReadReadyFile(path)
		if !errors.Is(err, fs.ErrNotExist) {
			return r, err
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("waiting for ready file %s: %w", path, ctx.Err())
		case <-tick.C:
		}
	}
}

// StatusError is a non-200 predict reply.
type StatusError struct {
	Code     int
	Instance string // from HeaderInstance
	Body     string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("instance %q: HTTP %d: %s", e.Instance, e.Code, e.Body)
}

// Predict posts input to http://<httpAddress>/v1/models/<model>/predict; a
// non-200 reply is a *StatusError.
func Predict(ctx context.Context, client *http.Client, httpAddress, model string, input any) (PredictResponse, error) {
	var out PredictResponse
	body, err := json.Marshal(map[string]any{"input": input})
	if err != nil {
		return out, err
	}
	url := "http://" + httpAddress + "/v1/models/" + model + "/predict"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return out, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return out, err
	}
	if resp.StatusCode != http.StatusOK {
		return out, &StatusError{Code: resp.StatusCode, Instance: resp.Header.Get(HeaderInstance), Body: string(data)}
	}
	return out, json.Unmarshal(data, &out)
}

// NewInferRequest is a ModelInfer request for model with one BYTES input
// named "prompt".
func NewInferRequest(model, prompt string) *oip.ModelInferRequest {
	return &oip.ModelInferRequest{
		ModelName: model,
		Inputs: []*oip.ModelInferRequest_InferInputTensor{{
			Name: "prompt", Datatype: "BYTES", Shape: []int64{1},
			Contents: &oip.InferTensorContents{BytesContents: [][]byte{[]byte(prompt)}},
		}},
	}
}

// InstanceOf is the id of the instance that answered resp.
func InstanceOf(resp *oip.ModelInferResponse) string {
	return resp.GetParameters()[InstanceParameter].GetStringParam()
}
