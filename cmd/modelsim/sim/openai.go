package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The OpenAI-compatible API vLLM serves: the model is named in the JSON
// body, not in the path. Requests go through the same model lookup,
// failure injection, concurrency limit and latency as predict, and count in
// modelsim_requests_total with protocol "openai".
const (
	openAIChatPath        = "/v1/chat/completions"
	openAICompletionsPath = "/v1/completions"
	openAIEmbeddingsPath  = "/v1/embeddings"
	openAIModelsPath      = "/v1/models"
	// EmbeddingDimensions is the length of every embedding modelsim returns.
	EmbeddingDimensions = 8
	sseDone             = "[DONE]"
)

// OpenAIRequest is the part of a chat, completion or embedding request
// modelsim reads.
type OpenAIRequest struct {
	Model    string          `json:"model"`
	Messages []ChatMessage   `json:"messages,omitempty"`
	Prompt   json.RawMessage `json:"prompt,omitempty"`
	Input    json.RawMessage `json:"input,omitempty"`
	Stream   bool            `json:"stream,omitempty"`
}

// ChatMessage is one message of a chat; in a streamed chunk's delta the
// role is set on the first chunk only.
type ChatMessage struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content"`
}

// OpenAIChoice is one choice of a completion or a streamed chunk: Message
// for chat, Delta for chat chunks, Text for completions.
type OpenAIChoice struct {
	Index        int          `json:"index"`
	Message      *ChatMessage `json:"message,omitempty"`
	Delta        *ChatMessage `json:"delta,omitempty"`
	Text         *string      `json:"text,omitempty"`
	FinishReason *string      `json:"finish_reason"`
}

// OpenAICompletion is a chat completion, a text completion, or one chunk
// of either when streamed.
type OpenAICompletion struct {
	ID      string         `json:"id"`
	Object  string         `json:"object"`
	Created int64          `json:"created"`
	Model   string         `json:"model"`
	Choices []OpenAIChoice `json:"choices"`
}

// OpenAIEmbedding is one embedding of an embeddings reply.
type OpenAIEmbedding struct {
	Object    string    `json:"object"`
	Index     int       `json:"index"`
	Embedding []float64 `json:"embedding"`
}

// OpenAIEmbeddings is the reply to POST /v1/embeddings.
type OpenAIEmbeddings struct {
	Object string            `json:"object"`
	Model  string            `json:"model"`
	Data   []OpenAIEmbedding `json:"data"`
}

// OpenAIModel is one entry of GET /v1/models.
type OpenAIModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// OpenAIModelList is the reply to GET /v1/models.
type OpenAIModelList struct {
	Object string        `json:"object"`
	Data   []OpenAIModel `json:"data"`
}

// OpenAIError is OpenAI's error body.
type OpenAIError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// openAI serves the OpenAI-compatible endpoints of one instance.
type openAI struct {
	s        *Server
	requests atomic.Int64 // numbers completion ids
}

func (s *Server) openAIRoutes(mux *http.ServeMux) {
	o := &openAI{s: s}
	mux.HandleFunc("POST "+openAIChatPath, o.handleChat)
	mux.HandleFunc("POST "+openAICompletionsPath, o.handleCompletions)
	mux.HandleFunc("POST "+openAIEmbeddingsPath, o.handleEmbeddings)
	mux.HandleFunc("GET "+openAIModelsPath, o.handleModels)
}

func (o *openAI) handleChat(w http.ResponseWriter, r *http.Request) {
	req, ok := o.begin(w, r)
	if !ok {
		return
	}
	prompt := ""
	if n := len(req.Messages); n > 0 {
		prompt = req.Messages[n-1].Content
	}
	answer := o.answer(prompt)
	id := o.completionID("chatcmpl")
	if req.Stream {
		o.stream(w, id, "chat.completion.chunk", req.Model, answer, func(i int, word string) OpenAIChoice {
			delta := &ChatMessage{Content: word}
			if i == 0 {
				delta.Role = "assistant"
			}
			return OpenAIChoice{Delta: delta}
		})
		return
	}
	writeJSON(w, http.StatusOK, OpenAICompletion{
		ID: id, Object: "chat.completion", Created: time.Now().Unix(), Model: req.Model,
		Choices: []OpenAIChoice{{Message: &ChatMessage{Role: "assistant", Content: answer}, FinishReason: finished()}},
	})
}

func (o *openAI) handleCompletions(w http.ResponseWriter, r *http.Request) {
	req, ok := o.begin(w, r)
	if !ok {
		return
	}
	answer := o.answer(firstString(req.Prompt))
	id := o.completionID("cmpl")
	if req.Stream {
		o.stream(w, id, "text_completion", req.Model, answer, func(_ int, word string) OpenAIChoice {
			return OpenAIChoice{Text: &word}
		})
		return
	}
	writeJSON(w, http.StatusOK, OpenAICompletion{
		ID: id, Object: "text_completion", Created: time.Now().Unix(), Model: req.Model,
		Choices: []OpenAIChoice{{Text: &answer, FinishReason: finished()}},
	})
}

func (o *openAI) handleEmbeddings(w http.ResponseWriter, r *http.Request) {
	req, ok := o.begin(w, r)
	if !ok {
		return
	}
	inputs := stringOrList(req.Input)
	reply := OpenAIEmbeddings{Object: "list", Model: req.Model, Data: make([]OpenAIEmbedding, len(inputs))}
	for i, in := range inputs {
		if o.s.Corrupted() {
			in = garble(in)
		}
		reply.Data[i] = OpenAIEmbedding{Object: "embedding", Index: i, Embedding: embed(in)}
	}
	writeJSON(w, http.StatusOK, reply)
}

func (o *openAI) handleModels(w http.ResponseWriter, _ *http.Request) {
	list := OpenAIModelList{Object: "list", Data: make([]OpenAIModel, len(o.s.cfg.Models))}
	for i, m := range o.s.cfg.Models {
		list.Data[i] = OpenAIModel{ID: m, Object: "model", OwnedBy: "modelsim"}
	}
	writeJSON(w, http.StatusOK, list)
}

// begin reads the request and runs it through the instance like predict;
// on failure it has answered with OpenAI's error shape.
func (o *openAI) begin(w http.ResponseWriter, r *http.Request) (OpenAIRequest, bool) {
	var req OpenAIRequest
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeOpenAIError(w, http.StatusBadRequest, "invalid_request_error", "", fmt.Sprintf("request body: %v", err))
		return req, false
	}
	err = o.s.process(r.Context(), req.Model)
	code := httpStatus(err)
	o.s.metrics.requests.WithLabelValues(o.s.modelLabel(req.Model), "openai", strconv.Itoa(code)).Inc()
	switch {
	case errors.Is(err, errModelNotServed):
		writeOpenAIError(w, code, "invalid_request_error", "model_not_found",
			fmt.Sprintf("The model %q does not exist on instance %s.", req.Model, o.s.cfg.ID))
		return req, false
	case err != nil:
		writeOpenAIError(w, code, "server_error", "", fmt.Sprintf("instance %s: %v", o.s.cfg.ID, err))
		return req, false
	}
	return req, true
}

// stream writes answer word by word as server-sent events, then [DONE].
func (o *openAI) stream(w http.ResponseWriter, id, object, model, answer string, choice func(int, string) OpenAIChoice) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	created := time.Now().Unix()
	words := strings.SplitAfter(answer, " ")
	for i, word := range words {
		c := choice(i, word)
		if i == len(words)-1 {
			c.FinishReason = finished()
		}
		chunk, _ := json.Marshal(OpenAICompletion{ID: id, Object: object, Created: created, Model: model, Choices: []OpenAIChoice{c}})
		fmt.Fprintf(w, "data: %s\n\n", chunk)
		if flusher != nil {
			flusher.Flush()
		}
	}
	fmt.Fprintf(w, "data: %s\n\n", sseDone)
}

// answer is the simulated generation: it names the instance, so a caller
// can tell who answered from the text as well as from the header. A
// corrupted instance garbles it.
func (o *openAI) answer(prompt string) string {
	text := fmt.Sprintf("modelsim %s received: %s", o.s.cfg.ID, prompt)
	if o.s.Corrupted() {
		return garble(text)
	}
	return text
}

func (o *openAI) completionID(prefix string) string {
	return fmt.Sprintf("%s-%s-%d", prefix, o.s.cfg.ID, o.requests.Add(1))
}

func finished() *string {
	stop := "stop"
	return &stop
}

func writeOpenAIError(w http.ResponseWriter, status int, kind, code, message string) {
	var e OpenAIError
	e.Error.Message, e.Error.Type = message, kind
	if code != "" {
		param := "model"
		e.Error.Code, e.Error.Param = &code, &param
	}
	writeJSON(w, status, e)
}

// strings2 reads an OpenAI "input" or "prompt": a string or a list of them.
func stringOrList(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(raw, &many)
	return many
}

func firstString(raw json.RawMessage) string {
	if all := stringOrList(raw); len(all) > 0 {
		return all[0]
	}
	return ""
}

// embed is a deterministic unit-free vector for text: the same text always
// gets the same embedding on every instance.
func embed(text string) []float64 {
	v := make([]float64, EmbeddingDimensions)
	for i := range v {
		h := fnv.New32a()
		fmt.Fprintf(h, "%d:%s", i, text)
		v[i] = float64(h.Sum32()%2000)/1000 - 1
	}
	return v
}
