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
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/drpolicy/dr"
)

// API is the health API an instance's model server speaks.
type API int

const (
	// APIUnknown: no answer told yet.
	APIUnknown API = iota
	// APIModelsim: GET /healthz as JSON with status and checkpoint, and
	// POST /v1/models/<model>/predict echoing its input.
	APIModelsim
	// APIVLLM: vLLM's GET /health (200, empty body) and GET /is_sleeping
	// ({"is_sleeping": bool}) beside OpenAI's API.
	APIVLLM
)

func (a API) String() string {
	switch a {
	case APIModelsim:
		return "modelsim"
	case APIVLLM:
		return "vllm"
	default:
		return "unknown"
	}
}

// Health is an instance's answer to a health probe.
type Health struct {
	Status     string         `json:"status"`
	Sleeping   bool           `json:"sleeping"`
	Checkpoint *dr.Checkpoint `json:"checkpoint,omitempty"`
	// API is the health API that answered (APIUnknown when none did).
	API API `json:"-"`
}

// Serving reports whether the instance can take traffic.
func (h Health) Serving() bool { return h.Status == "serving" }

// maxHealthBody bounds how much of a health reply is read.
const maxHealthBody = 64 << 10

// errNotModelsim marks a /healthz that is not modelsim's: not found, or
// not JSON.
var errNotModelsim = errors.New("not modelsim's health API")

// ProbeHealth asks the instance at addr (host:port) how it is, finding its
// API: ProbeHealthAs with APIUnknown.
func ProbeHealth(ctx context.Context, c *http.Client, addr string) (Health, error) {
	return ProbeHealthAs(ctx, c, addr, APIUnknown)
}

// ProbeHealthAs asks the instance at addr how it is in the API given. With
// APIUnknown it asks modelsim's GET /healthz first and, when that is not
// found or not JSON, vLLM's GET /health and GET /is_sleeping. The answer's
// API says which one answered. An answer that is not serving still yields
// what it said (a sleeping or loading instance's checkpoint); the error
// says why it is not serving.
func ProbeHealthAs(ctx context.Context, c *http.Client, addr string, api API) (Health, error) {
	if api != APIVLLM {
		h, err := probeHealthz(ctx, c, addr)
		if api == APIModelsim || !errors.Is(err, errNotModelsim) {
			return h, err
		}
	}
	return probeVLLM(ctx, c, addr)
}

// probeHealthz is modelsim's probe: GET /healthz as JSON.
func probeHealthz(ctx context.Context, c *http.Client, addr string) (Health, error) {
	resp, err := get(ctx, c, addr, "/healthz")
	if err != nil {
		return Health{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return Health{}, fmt.Errorf("healthz %s: HTTP 404: %w", addr, errNotModelsim)
	}
	var h Health
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxHealthBody)).Decode(&h); err != nil {
		return Health{}, fmt.Errorf("healthz %s: HTTP %d, body: %w (%w)", addr, resp.StatusCode, err, errNotModelsim)
	}
	h.API = APIModelsim
	if resp.StatusCode != http.StatusOK || !h.Serving() {
		return h, fmt.Errorf("healthz %s: HTTP %d, status %q", addr, resp.StatusCode, h.Status)
	}
	return h, nil
}

// probeVLLM is vLLM's probe: GET /health must be 200, then GET
// /is_sleeping tells a sleeping server (a warm standby) from a serving
// one; a server without sleep mode has no /is_sleeping and is serving.
// vLLM reports no checkpoint.
func probeVLLM(ctx context.Context, c *http.Client, addr string) (Health, error) {
	resp, err := get(ctx, c, addr, "/health")
	if err != nil {
		return Health{}, err
	}
	drainClose(resp)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return Health{}, fmt.Errorf("health %s: neither GET /healthz (modelsim) nor GET /health (vLLM) is served", addr)
	default:
		return Health{Status: "failing", API: APIVLLM}, fmt.Errorf("health %s: HTTP %d", addr, resp.StatusCode)
	}
	resp, err = get(ctx, c, addr, "/is_sleeping")
	if err != nil {
		return Health{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return Health{Status: "serving", API: APIVLLM}, nil
	}
	var sleeping struct {
		IsSleeping *bool `json:"is_sleeping"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxHealthBody)).Decode(&sleeping); err != nil || resp.StatusCode != http.StatusOK || sleeping.IsSleeping == nil {
		return Health{Status: "failing", API: APIVLLM}, fmt.Errorf("is_sleeping %s: HTTP %d, want 200 and {\"is_sleeping\": bool}", addr, resp.StatusCode)
	}
	if *sleeping.IsSleeping {
		return Health{Status: "sleeping", Sleeping: true, API: APIVLLM}, fmt.Errorf("health %s: asleep", addr)
	}
	return Health{Status: "serving", API: APIVLLM}, nil
}

func get(ctx context.Context, c *http.Client, addr, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	return c.Do(req)
}

// drainClose reads what is left of a small body so the connection is
// reused, and closes it.
func drainClose(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxHealthBody))
	resp.Body.Close()
}

// DeepProbeInput is what the deep probe asks a model to echo.
const DeepProbeInput = "inferxds-deep-probe"

// ProbeDeep asks the instance at addr to run the model: POST
// /v1/models/<model>/predict with DeepProbeInput. corrupt reports a served
// answer that is wrong; err a request that got no answer.
func ProbeDeep(ctx context.Context, c *http.Client, addr, model string) (corrupt bool, err error) {
	var got struct {
		Output string `json:"output"`
	}
	answered, err := postForAnswer(ctx, c, addr, "/v1/models/"+model+"/predict", map[string]string{"input": DeepProbeInput}, &got)
	if !answered {
		return false, err
	}
	if err == nil && got.Output == DeepProbeInput {
		return false, nil
	}
	return true, fmt.Errorf("deep probe %s: model %s answered %q, want %q", addr, model, got.Output, DeepProbeInput)
}

// ProbeCompletion asks an instance that speaks OpenAI's API (vLLM) to run
// the model on the policy's known request: POST /v1/completions with the
// prompt, temperature 0 and max_tokens. corrupt reports an answer whose
// text lacks the expected one; err a request that got no answer.
func ProbeCompletion(ctx context.Context, c *http.Client, addr string, dp drpolicy.DeepProbe) (corrupt bool, err error) {
	var got struct {
		Choices []struct {
			Text string `json:"text"`
		} `json:"choices"`
	}
	req := completionRequest{Model: dp.Model, Prompt: dp.Prompt, MaxTokens: dp.MaxTokens}
	answered, err := postForAnswer(ctx, c, addr, "/v1/completions", req, &got)
	if !answered {
		return false, err
	}
	if err != nil || len(got.Choices) == 0 {
		return true, fmt.Errorf("deep probe %s: no completion in the answer", addr)
	}
	if text := got.Choices[0].Text; !strings.Contains(text, dp.Expect) {
		return true, fmt.Errorf("deep probe %s: %q completed as %q, want it to contain %q", addr, dp.Prompt, text, dp.Expect)
	}
	return false, nil
}

// postForAnswer POSTs body as JSON to path on addr and decodes a 200 reply
// into answer. answered is false, with the error, when no 200 came; true
// with a decoding error when the reply was not the JSON asked for.
func postForAnswer(ctx context.Context, c *http.Client, addr, path string, body, answer any) (answered bool, err error) {
	data, err := json.Marshal(body)
	if err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, bytes.NewReader(data))
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
	return true, json.NewDecoder(io.LimitReader(resp.Body, maxHealthBody)).Decode(answer)
}

// completionRequest is OpenAI's completion request, greedy so that the
// answer is the same every time.
type completionRequest struct {
	Model       string  `json:"model,omitempty"`
	Prompt      string  `json:"prompt"`
	MaxTokens   int     `json:"max_tokens"`
	Temperature float64 `json:"temperature"`
}
