// Package engine owns the DR reconcile loop and its I/O: the probes that
// find failed instances and the checkpoints they serve, the detector and
// guard that judge them, the dispatcher that hands actions to an Actuator,
// the incident log and metrics, and the Loop that ties them to the hub
// (the planner itself is the pure dr package).
package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/inferxds/inferxds/drpolicy/dr"
)

// Health is an instance's answer to GET /healthz.
type Health struct {
	Status     string         `json:"status"`
	Sleeping   bool           `json:"sleeping"`
	Checkpoint *dr.Checkpoint `json:"checkpoint,omitempty"`
}

// Serving reports whether the instance can take traffic.
func (h Health) Serving() bool { return h.Status == "serving" }

// maxHealthBody bounds how much of a /healthz reply is read.
const maxHealthBody = 64 << 10

// ProbeHealth asks the instance at addr (host:port) for GET /healthz. An
// answer that is not 200 still yields its parsed body, so a sleeping or
// loading instance reports its checkpoint; the error says why it is not
// serving.
func ProbeHealth(ctx context.Context, c *http.Client, addr string) (Health, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return Health{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return Health{}, err
	}
	defer resp.Body.Close()
	var h Health
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxHealthBody)).Decode(&h); err != nil {
		return Health{}, fmt.Errorf("healthz %s: HTTP %d, body: %w", addr, resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || !h.Serving() {
		return h, fmt.Errorf("healthz %s: HTTP %d, status %q", addr, resp.StatusCode, h.Status)
	}
	return h, nil
}

// DeepProbeInput is what the deep probe asks a model to echo.
const DeepProbeInput = "inferxds-deep-probe"

// ProbeDeep asks the instance at addr to run the model: POST
// /v1/models/<model>/predict with DeepProbeInput. corrupt reports a served
// answer that is wrong; err a request that got no answer.
func ProbeDeep(ctx context.Context, c *http.Client, addr, model string) (corrupt bool, err error) {
	body, _ := json.Marshal(map[string]string{"input": DeepProbeInput})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/models/"+model+"/predict", bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("deep probe %s: HTTP %d", addr, resp.StatusCode)
	}
	var got struct {
		Output string `json:"output"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxHealthBody)).Decode(&got); err != nil || got.Output != DeepProbeInput {
		return true, fmt.Errorf("deep probe %s: model %s answered %q, want %q", addr, model, got.Output, DeepProbeInput)
	}
	return false, nil
}
