package sim

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func openAIServer(t *testing.T) (*Server, string, *http.Client) {
	t.Helper()
	s := startServer(t, Config{ID: "inst-o", Models: []string{"m1", "m2"}})
	return s, "http://" + s.Ready().HTTPAddress, httpClient(t)
}

func TestOpenAIChatAnswersForTheBodysModel(t *testing.T) {
	_, base, c := openAIServer(t)
	reply, err := CallOpenAI(testContext(t), c, base, openAIChatPath, OpenAIRequest{
		Model: "m2", Messages: []ChatMessage{{Role: "user", Content: "hi there"}},
	})
	if err != nil || reply.Status != http.StatusOK || reply.Instance != "inst-o" {
		t.Fatalf("chat: %v, status %d, instance %q: %s", err, reply.Status, reply.Instance, reply.Body)
	}
	var got OpenAICompletion
	if err := json.Unmarshal(reply.Body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Object != "chat.completion" || got.Model != "m2" || len(got.Choices) != 1 ||
		got.Choices[0].Message.Content != "modelsim inst-o received: hi there" || *got.Choices[0].FinishReason != "stop" {
		t.Errorf("chat completion = %+v", got)
	}
}

func TestOpenAIStreamsChunksThenDone(t *testing.T) {
	_, base, c := openAIServer(t)
	for _, tc := range []struct {
		path, object string
		req          OpenAIRequest
		text         func(OpenAIChoice) string
	}{
		{openAIChatPath, "chat.completion.chunk",
			OpenAIRequest{Model: "m1", Stream: true, Messages: []ChatMessage{{Role: "user", Content: "a b"}}},
			func(c OpenAIChoice) string { return c.Delta.Content }},
		{openAICompletionsPath, "text_completion",
			OpenAIRequest{Model: "m1", Stream: true, Prompt: json.RawMessage(`"a b"`)},
			func(c OpenAIChoice) string { return *c.Text }},
	} {
		reply, err := CallOpenAI(testContext(t), c, base, tc.path, tc.req)
		if err != nil || reply.Status != http.StatusOK || !strings.HasPrefix(reply.ContentType, "text/event-stream") || !reply.Done() {
			t.Fatalf("%s stream: %v, status %d, type %q, events %q", tc.path, err, reply.Status, reply.ContentType, reply.Events)
		}
		var text strings.Builder
		for i, e := range reply.Events[:len(reply.Events)-1] {
			var chunk OpenAICompletion
			if err := json.Unmarshal([]byte(e), &chunk); err != nil || chunk.Object != tc.object || chunk.Model != "m1" {
				t.Fatalf("%s chunk %d = %s (%v)", tc.path, i, e, err)
			}
			text.WriteString(tc.text(chunk.Choices[0]))
		}
		if got := text.String(); got != "modelsim inst-o received: a b" {
			t.Errorf("%s: streamed text %q", tc.path, got)
		}
	}
}

func TestOpenAIEmbeddingsAreDeterministic(t *testing.T) {
	_, base, c := openAIServer(t)
	var first []float64
	for range 2 {
		reply, err := CallOpenAI(testContext(t), c, base, openAIEmbeddingsPath,
			OpenAIRequest{Model: "m1", Input: json.RawMessage(`["x","y"]`)})
		var got OpenAIEmbeddings
		if err != nil || reply.Status != http.StatusOK || json.Unmarshal(reply.Body, &got) != nil || len(got.Data) != 2 {
			t.Fatalf("embeddings: %v, status %d: %s", err, reply.Status, reply.Body)
		}
		if len(got.Data[0].Embedding) != EmbeddingDimensions || slices.Equal(got.Data[0].Embedding, got.Data[1].Embedding) {
			t.Errorf("embeddings of x and y = %v", got.Data)
		}
		if first != nil && !slices.Equal(first, got.Data[0].Embedding) {
			t.Errorf("embedding of x changed: %v then %v", first, got.Data[0].Embedding)
		}
		first = got.Data[0].Embedding
	}
}

func TestOpenAIUnknownModelAndModelList(t *testing.T) {
	_, base, c := openAIServer(t)
	reply, err := CallOpenAI(testContext(t), c, base, openAICompletionsPath, OpenAIRequest{Model: "gpt-9", Prompt: json.RawMessage(`"x"`)})
	var e OpenAIError
	if err != nil || reply.Status != http.StatusNotFound || json.Unmarshal(reply.Body, &e) != nil || e.Error.Code == nil || *e.Error.Code != "model_not_found" {
		t.Errorf("unknown model: %v, status %d: %s", err, reply.Status, reply.Body)
	}
	reply, err = CallOpenAI(testContext(t), c, base, openAIModelsPath, nil)
	var list OpenAIModelList
	if err != nil || reply.Status != http.StatusOK || json.Unmarshal(reply.Body, &list) != nil {
		t.Fatalf("models: %v, status %d: %s", err, reply.Status, reply.Body)
	}
	if len(list.Data) != 2 || list.Data[0].ID != "m1" || list.Data[1].ID != "m2" || list.Object != "list" {
		t.Errorf("models = %+v", list)
	}
}
