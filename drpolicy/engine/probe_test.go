package engine

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/inferxds/inferxds/drpolicy"
)

func healthServer(t *testing.T, code int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(code)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestProbeHealthServingReportsCheckpoint(t *testing.T) {
	addr := healthServer(t, 200, `{"status":"serving","sleeping":false,"checkpoint":{"id":"ck-7","time":"2026-12-01T10:00:00Z"}}`)
	h, err := ProbeHealth(context.Background(), http.DefaultClient, addr)
	if err != nil {
		t.Fatal(err)
	}
	if h.Checkpoint == nil || h.Checkpoint.ID != "ck-7" || h.Checkpoint.Time.Hour() != 10 {
		t.Fatalf("checkpoint = %+v, want ck-7 at 10:00", h.Checkpoint)
	}
}

func TestProbeHealthNotServing(t *testing.T) {
	for name, tc := range map[string]struct {
		code int
		body string
	}{
		"sleeping":        {503, `{"status":"sleeping","sleeping":true,"checkpoint":{"id":"ck-1","time":"2026-12-01T10:00:00Z"}}`},
		"failing":         {503, `{"status":"failing"}`},
		"not json":        {200, `ok`},
		"200 but loading": {200, `{"status":"loading"}`},
	} {
		t.Run(name, func(t *testing.T) {
			h, err := ProbeHealth(context.Background(), http.DefaultClient, healthServer(t, tc.code, tc.body))
			if err == nil {
				t.Fatalf("probe of %s succeeded: %+v", name, h)
			}
			if name == "sleeping" && (h.Checkpoint == nil || h.Checkpoint.ID != "ck-1") {
				t.Fatalf("sleeping instance lost its checkpoint: %+v", h)
			}
		})
	}
}

func TestProbeHealthUnreachable(t *testing.T) {
	addr := healthServer(t, 200, `{"status":"serving"}`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ProbeHealth(ctx, http.DefaultClient, addr); err == nil {
		t.Fatal("probe with a cancelled context succeeded")
	}
}

func predictServer(t *testing.T, code int, reply func(in string) string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/models/m1/predict" {
			http.NotFound(w, r)
			return
		}
		var in struct {
			Input string `json:"input"`
		}
		json.NewDecoder(r.Body).Decode(&in)
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"output": reply(in.Input)})
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestProbeDeep(t *testing.T) {
	echo := func(in string) string { return in }
	wrong := func(in string) string { return strings.ToUpper(in) }
	for name, tc := range map[string]struct {
		addr        string
		wantCorrupt bool
		wantErr     bool
	}{
		"echo":       {predictServer(t, 200, echo), false, false},
		"wrong text": {predictServer(t, 200, wrong), true, true},
		"HTTP 503":   {predictServer(t, 503, echo), false, true},
	} {
		corrupt, err := ProbeDeep(context.Background(), http.DefaultClient, tc.addr, "m1")
		if corrupt != tc.wantCorrupt || (err != nil) != tc.wantErr {
			t.Errorf("%s: corrupt=%v err=%v, want corrupt=%v err=%v", name, corrupt, err, tc.wantCorrupt, tc.wantErr)
		}
	}
}

// vllmServer answers as vLLM does: GET /health (200 or 503, empty body),
// GET /is_sleeping and OpenAI's POST /v1/completions, nothing else. It
// counts the requests by path.
type vllmServer struct {
	addr string

	mu         sync.Mutex
	code       int    // /health's status
	sleeping   bool   // /is_sleeping's answer
	completion string // every completion's text
	requests   map[string]int
	// lastCompletion is the last completion request's body.
	lastCompletion map[string]any
}

func newVLLMServer(t *testing.T) *vllmServer {
	t.Helper()
	v := &vllmServer{code: http.StatusOK, completion: " Paris.", requests: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(v.serveHTTP))
	t.Cleanup(srv.Close)
	v.addr = strings.TrimPrefix(srv.URL, "http://")
	return v
}

func (v *vllmServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	v.requests[r.Method+" "+r.URL.Path]++
	code, sleeping, completion := v.code, v.sleeping, v.completion
	if r.URL.Path == "/v1/completions" {
		json.NewDecoder(r.Body).Decode(&v.lastCompletion)
	}
	v.mu.Unlock()
	switch r.Method + " " + r.URL.Path {
	case "GET /health":
		w.WriteHeader(code)
	case "GET /is_sleeping":
		json.NewEncoder(w).Encode(map[string]bool{"is_sleeping": sleeping})
	case "POST /v1/completions":
		json.NewEncoder(w).Encode(map[string]any{"choices": []map[string]string{{"text": completion}}})
	default:
		http.NotFound(w, r)
	}
}

func (v *vllmServer) set(code int, sleeping bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.code, v.sleeping = code, sleeping
}

func (v *vllmServer) setCompletion(text string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.completion = text
}

func (v *vllmServer) count(request string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.requests[request]
}

func TestProbeHealthVLLM(t *testing.T) {
	for name, tc := range map[string]struct {
		code       int
		sleeping   bool
		wantStatus string
		wantErr    bool
	}{
		"serving":  {200, false, "serving", false},
		"sleeping": {200, true, "sleeping", true},
		"HTTP 503": {503, false, "failing", true},
	} {
		t.Run(name, func(t *testing.T) {
			v := newVLLMServer(t)
			v.set(tc.code, tc.sleeping)
			h, err := ProbeHealth(context.Background(), http.DefaultClient, v.addr)
			if h.Status != tc.wantStatus || h.API != APIVLLM || (err != nil) != tc.wantErr {
				t.Fatalf("probe = %+v, %v; want status %q from vLLM's API, error %v", h, err, tc.wantStatus, tc.wantErr)
			}
			if h.Sleeping != tc.sleeping || h.Checkpoint != nil {
				t.Errorf("probe = %+v; want sleeping %v and no checkpoint", h, tc.sleeping)
			}
		})
	}
}

func TestProbeHealthAsKnownAPIAsksOneURL(t *testing.T) {
	v := newVLLMServer(t)
	if h, err := ProbeHealthAs(context.Background(), http.DefaultClient, v.addr, APIVLLM); err != nil || !h.Serving() {
		t.Fatalf("probe as vLLM = %+v, %v; want serving", h, err)
	}
	if n := v.count("GET /healthz"); n != 0 {
		t.Errorf("a probe as vLLM asked /healthz %d times", n)
	}
	if h, err := ProbeHealthAs(context.Background(), http.DefaultClient, v.addr, APIModelsim); err == nil {
		t.Errorf("probe of a vLLM server as modelsim = %+v; want an error", h)
	}
	if n := v.count("GET /health"); n != 1 {
		t.Errorf("a probe as modelsim fell back to /health: asked %d times in all, want 1", n)
	}
}

func TestProbeHealthNeitherAPI(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	h, err := ProbeHealth(context.Background(), http.DefaultClient, strings.TrimPrefix(srv.URL, "http://"))
	if err == nil || h.API != APIUnknown {
		t.Fatalf("probe of a server with no health API = %+v, %v; want an error and no API", h, err)
	}
}

func TestProbeCompletion(t *testing.T) {
	dp := drpolicy.DeepProbe{Prompt: "The capital of France is", Expect: "Paris", MaxTokens: 4}
	for name, tc := range map[string]struct {
		text        string
		wantCorrupt bool
	}{
		"expected text": {" Paris.", false},
		"wrong text":    {" Lyon.", true},
	} {
		t.Run(name, func(t *testing.T) {
			v := newVLLMServer(t)
			v.setCompletion(tc.text)
			corrupt, err := ProbeCompletion(context.Background(), http.DefaultClient, v.addr, dp)
			if corrupt != tc.wantCorrupt || (err != nil) != tc.wantCorrupt {
				t.Fatalf("corrupt=%v err=%v, want corrupt=%v", corrupt, err, tc.wantCorrupt)
			}
			v.mu.Lock()
			defer v.mu.Unlock()
			got := v.lastCompletion
			if got["prompt"] != dp.Prompt || got["temperature"] != 0.0 || got["max_tokens"] != 4.0 || got["model"] != nil {
				t.Errorf("request %v: want the prompt, temperature 0, max_tokens 4 and no model", got)
			}
		})
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	if corrupt, err := ProbeCompletion(context.Background(), http.DefaultClient, strings.TrimPrefix(srv.URL, "http://"), dp); corrupt || err == nil {
		t.Errorf("HTTP 404: corrupt=%v err=%v; want an error, not corruption", corrupt, err)
	}
}
