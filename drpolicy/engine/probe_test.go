package engine

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
