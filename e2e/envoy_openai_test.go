package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/inferxds/inferxds/cmd/modelsim/sim"
	"github.com/inferxds/inferxds/snapshot"
)

// openAICall is one kind of OpenAI request a vLLM client sends.
type openAICall struct {
	name, path string
	request    func(model string) sim.OpenAIRequest
}

var openAICalls = []openAICall{
	{"chat", "/v1/chat/completions", func(model string) sim.OpenAIRequest {
		return sim.OpenAIRequest{Model: model, Messages: []sim.ChatMessage{{Role: "user", Content: "hello"}}}
	}},
	{"chat-stream", "/v1/chat/completions", func(model string) sim.OpenAIRequest {
		return sim.OpenAIRequest{Model: model, Stream: true, Messages: []sim.ChatMessage{{Role: "user", Content: "hello"}}}
	}},
	{"completions", "/v1/completions", func(model string) sim.OpenAIRequest {
		return sim.OpenAIRequest{Model: model, Prompt: json.RawMessage(`"hello"`)}
	}},
	{"completions-stream", "/v1/completions", func(model string) sim.OpenAIRequest {
		return sim.OpenAIRequest{Model: model, Stream: true, Prompt: json.RawMessage(`"hello"`)}
	}},
	{"embeddings", "/v1/embeddings", func(model string) sim.OpenAIRequest {
		return sim.OpenAIRequest{Model: model, Input: json.RawMessage(`["hello","world"]`)}
	}},
}

// TestEnvoyRoutesOpenAIRequestsByBodyModel: OpenAI clients name the model
// only in the JSON body. Through a real Envoy, chat, completions (both
// also streamed) and embeddings for two models are each answered only by
// instances of the model named; an unknown model gets the documented 404
// in OpenAI's error shape without reaching any instance; GET /v1/models
// lists the policy's models.
func TestEnvoyRoutesOpenAIRequestsByBodyModel(t *testing.T) {
	envoyBin := requireEnvoy(t)
	sims, fleet := startTwoModels(t, (*modelSim).httpInstance)
	cp := startControlPlane(t, twoModelPolicy, fleet)
	proxy := startEnvoy(t, envoyBin, cp, "az-1")
	base := "http://" + proxy.listenAddress
	ctx := context.Background()

	const perCall = 10
	for model, group := range sims {
		proxy.waitRoutable(t, model)
		counts := map[string]int{}
		for _, c := range openAICalls {
			for i := range perCall {
				reply, err := sim.CallOpenAI(ctx, proxy.client, base, c.path, c.request(model))
				if err != nil || reply.Status != http.StatusOK {
					t.Fatalf("%s %d for %s through Envoy: %v, HTTP %d: %s", c.name, i, model, err, reply.Status, reply.Body)
				}
				checkOpenAIReply(t, c, model, reply)
				counts[reply.Instance]++
			}
		}
		assertAnsweredOnlyBy(t, model, counts, simsByID(group...))
		report(t, "envoy openai model=%s requests=%d split=%v", model, perCall*len(openAICalls), counts)
	}

	checkUnknownModel(t, proxy, base)
	checkModelList(t, proxy, base, "llama-2-7b", "mistral-7b")
}

// checkOpenAIReply holds a reply to the shape its call asks for, naming the
// model it was for.
func checkOpenAIReply(t *testing.T, c openAICall, model string, reply sim.OpenAIReply) {
	t.Helper()
	req := c.request(model)
	if req.Stream {
		if !strings.HasPrefix(reply.ContentType, "text/event-stream") || !reply.Done() || len(reply.Events) < 2 {
			t.Fatalf("%s for %s: want server-sent events ending in [DONE]; type %q, events %q", c.name, model, reply.ContentType, reply.Events)
		}
		var chunk sim.OpenAICompletion
		if err := json.Unmarshal([]byte(reply.Events[0]), &chunk); err != nil || chunk.Model != model {
			t.Fatalf("%s for %s: first chunk %s (%v)", c.name, model, reply.Events[0], err)
		}
		return
	}
	var body struct {
		Model string `json:"model"`
	}
	if err := json.Unmarshal(reply.Body, &body); err != nil || body.Model != model {
		t.Fatalf("%s for %s: reply %s (%v)", c.name, model, reply.Body, err)
	}
}

func checkUnknownModel(t *testing.T, proxy *envoyProxy, base string) {
	t.Helper()
	for _, c := range openAICalls {
		reply, err := sim.CallOpenAI(context.Background(), proxy.client, base, c.path, c.request("gpt-unknown"))
		var e sim.OpenAIError
		if err != nil || reply.Status != snapshot.OpenAIUnknownModelStatus || reply.Instance != "" ||
			!strings.HasPrefix(reply.ContentType, "application/json") ||
			json.Unmarshal(reply.Body, &e) != nil || e.Error.Code == nil || *e.Error.Code != "model_not_found" {
			t.Errorf("%s for an unknown model: %v, HTTP %d, instance %q, type %q: %s; want %d model_not_found from Envoy",
				c.name, err, reply.Status, reply.Instance, reply.ContentType, reply.Body, snapshot.OpenAIUnknownModelStatus)
		}
	}
	report(t, "envoy openai unknown-model status=%d", snapshot.OpenAIUnknownModelStatus)
}

func checkModelList(t *testing.T, proxy *envoyProxy, base string, want ...string) {
	t.Helper()
	reply, err := sim.CallOpenAI(context.Background(), proxy.client, base, snapshot.OpenAIModelsPath, nil)
	var list sim.OpenAIModelList
	if err != nil || reply.Status != http.StatusOK || !strings.HasPrefix(reply.ContentType, "application/json") ||
		json.Unmarshal(reply.Body, &list) != nil {
		t.Fatalf("GET /v1/models: %v, HTTP %d, type %q: %s", err, reply.Status, reply.ContentType, reply.Body)
	}
	var got []string
	for _, m := range list.Data {
		got = append(got, m.ID)
	}
	if list.Object != "list" || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("GET /v1/models = %s; want the list of %v", reply.Body, want)
	}
}
