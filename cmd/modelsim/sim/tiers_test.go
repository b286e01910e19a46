package sim

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/inferxds/inferxds/drpolicy/engine"
	"github.com/inferxds/inferxds/internal/testpoll"
)

// testLoadTime is long enough that the first probe after Start lands
// before it ends; the tests wait for transitions, never for the time.
const testLoadTime = time.Second

func healthz(t *testing.T, c *http.Client, s *Server) (Health, int) {
	t.Helper()
	resp, err := c.Get("http://" + s.Ready().HTTPAddress + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	defer resp.Body.Close()
	var h Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("/healthz body: %v", err)
	}
	return h, resp.StatusCode
}

// statusesUntil polls /healthz until it reports want and returns every
// distinct status seen on the way, in order.
func statusesUntil(t *testing.T, c *http.Client, s *Server, want Status) []Status {
	t.Helper()
	var seen []Status
	testpoll.Until(t, "status "+string(want), func() bool {
		h, _ := healthz(t, c, s)
		if len(seen) == 0 || seen[len(seen)-1] != h.Status {
			seen = append(seen, h.Status)
		}
		return h.Status == want
	})
	return seen
}

func inferCode(t *testing.T, s *Server) codes.Code {
	t.Helper()
	_, err := oipClient(t, s).ModelInfer(testContext(t), NewInferRequest(testModel, "x"))
	return status.Code(err)
}

// checkAnswers checks what s answers now (when says when, for the
// failures): predict with wantHTTP, ModelInfer with wantGRPC, and its health
// probes as wantProbes.
func checkAnswers(t *testing.T, c *http.Client, s *Server, when string, wantHTTP int, wantGRPC codes.Code, wantProbes healthOf) {
	t.Helper()
	if got := predictStatus(t, c, s, testModel); got != wantHTTP {
		t.Errorf("predict %s = %d, want %d", when, got, wantHTTP)
	}
	if got := inferCode(t, s); got != wantGRPC {
		t.Errorf("ModelInfer %s = %v, want %v", when, got, wantGRPC)
	}
	if diff := cmp.Diff(wantProbes, probeHealth(t, c, s)); diff != "" {
		t.Errorf("health probes %s (-want +got):\n%s", when, diff)
	}
}

func isSleeping(t *testing.T, c *http.Client, s *Server) bool {
	t.Helper()
	resp, err := c.Get("http://" + s.Ready().HTTPAddress + "/is_sleeping")
	if err != nil {
		t.Fatalf("GET /is_sleeping: %v", err)
	}
	defer resp.Body.Close()
	var got struct {
		IsSleeping bool `json:"is_sleeping"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("/is_sleeping body: %v", err)
	}
	return got.IsSleeping
}

func sleepingGaugeValue(t *testing.T, c *http.Client, s *Server) float64 {
	t.Helper()
	return scrapeGauges(t, c, s, MetricSleeping)[""]
}

func TestColdLoadIsLoadingThenServing(t *testing.T) {
	s := startServer(t, Config{ColdLoadTime: testLoadTime})
	c := httpClient(t)
	if h, code := healthz(t, c, s); h.Status != StatusLoading || code != http.StatusServiceUnavailable {
		t.Fatalf("/healthz right after start = %+v, HTTP %d; want loading, 503", h, code)
	}
	checkAnswers(t, c, s, "while loading", http.StatusServiceUnavailable, codes.Unavailable, failing)

	if seen := statusesUntil(t, c, s, StatusServing); !cmp.Equal(seen, []Status{StatusLoading, StatusServing}) {
		t.Errorf("statuses seen = %v, want loading then serving", seen)
	}
	if got := predictStatus(t, c, s, testModel); got != http.StatusOK {
		t.Errorf("predict once loaded = %d, want 200", got)
	}
	if diff := cmp.Diff(healthy, probeHealth(t, c, s)); diff != "" {
		t.Errorf("health probes once loaded (-want +got):\n%s", diff)
	}
}

func TestStartAsleepLoadsThenSleepsUntilWoken(t *testing.T) {
	s := startServer(t, Config{StartAsleep: true, ColdLoadTime: testLoadTime})
	c := httpClient(t)
	if seen := statusesUntil(t, c, s, StatusSleeping); !cmp.Equal(seen, []Status{StatusLoading, StatusSleeping}) {
		t.Errorf("statuses seen = %v, want loading then sleeping", seen)
	}
	if h, code := healthz(t, c, s); !h.Sleeping || code != http.StatusServiceUnavailable {
		t.Errorf("/healthz asleep = %+v, HTTP %d; want sleeping, 503", h, code)
	}
	if !isSleeping(t, c, s) || sleepingGaugeValue(t, c, s) != 1 {
		t.Errorf("is_sleeping %v, %s %v; want true and 1", isSleeping(t, c, s), MetricSleeping, sleepingGaugeValue(t, c, s))
	}
	checkAnswers(t, c, s, "asleep", http.StatusServiceUnavailable, codes.Unavailable, failing)
}

func TestWakeUpServesAndSleepStopsServingAgain(t *testing.T) {
	s := startServer(t, Config{StartAsleep: true, WarmLoadTime: testLoadTime})
	c := httpClient(t)
	base := "http://" + s.Ready().HTTPAddress

	if h, _ := healthz(t, c, s); h.Status != StatusSleeping {
		t.Fatalf("/healthz before wake_up = %+v, want sleeping", h)
	}

	// Two wake-ups at once: the first moves the instance to waking, both
	// return once it serves.
	var calls sync.WaitGroup
	wakeCodes := make([]int, 2)
	for i := range wakeCodes {
		calls.Go(func() { wakeCodes[i] = postStatus(t, c, base+"/wake_up") })
	}
	statusesUntil(t, c, s, StatusWaking)
	if !isSleeping(t, c, s) {
		t.Error("is_sleeping = false while waking, want true (as vLLM)")
	}
	calls.Wait()
	if !cmp.Equal(wakeCodes, []int{200, 200}) {
		t.Errorf("concurrent POST /wake_up = %v, want 200 twice", wakeCodes)
	}
	if h, code := healthz(t, c, s); h.Status != StatusServing || h.Sleeping || code != http.StatusOK {
		t.Errorf("/healthz after wake_up returned = %+v, HTTP %d; want serving, 200", h, code)
	}
	if diff := cmp.Diff(healthy, probeHealth(t, c, s)); diff != "" {
		t.Errorf("health probes awake (-want +got):\n%s", diff)
	}
	if got := predictStatus(t, c, s, testModel); got != http.StatusOK {
		t.Errorf("predict awake = %d, want 200", got)
	}
	if got := sleepingGaugeValue(t, c, s); got != 0 {
		t.Errorf("%s awake = %v, want 0", MetricSleeping, got)
	}
	if got := postStatus(t, c, base+"/wake_up"); got != http.StatusOK || s.Status() != StatusServing {
		t.Errorf("POST /wake_up while awake = %d, status %s; want 200, serving", got, s.Status())
	}

	if got := postStatus(t, c, base+"/sleep?level=2"); got != http.StatusBadRequest {
		t.Errorf("POST /sleep?level=2 = %d, want 400 (not simulated)", got)
	}
	if got := postStatus(t, c, base+"/sleep?level=1"); got != http.StatusOK {
		t.Fatalf("POST /sleep?level=1 = %d, want 200", got)
	}
	if got := predictStatus(t, c, s, testModel); got != http.StatusServiceUnavailable {
		t.Errorf("predict after /sleep = %d, want 503", got)
	}
	if h, _ := healthz(t, c, s); h.Status != StatusSleeping || !isSleeping(t, c, s) {
		t.Errorf("/healthz after /sleep = %+v, want sleeping", h)
	}
}

func TestCheckpointOnHealthzAndMetrics(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := startServer(t, Config{Checkpoint: &Checkpoint{ID: "ckpt-42", Time: at}})
	c := httpClient(t)
	h, _ := healthz(t, c, s)
	if diff := cmp.Diff(&Checkpoint{ID: "ckpt-42", Time: at}, h.Checkpoint); diff != "" {
		t.Errorf("/healthz checkpoint (-want +got):\n%s", diff)
	}
	got := scrapeLabelled(t, c, s, MetricCheckpoint, "checkpoint")
	if diff := cmp.Diff(map[string]float64{"ckpt-42": float64(at.Unix())}, got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", MetricCheckpoint, diff)
	}

	// engine.ProbeHealth is what the control plane reads.
	probed, err := engine.ProbeHealth(testContext(t), c, s.Ready().HTTPAddress)
	if err != nil || probed.Checkpoint == nil || probed.Checkpoint.ID != "ckpt-42" || !probed.Checkpoint.Time.Equal(at) {
		t.Errorf("ProbeHealth = %+v, %v; want serving at ckpt-42", probed, err)
	}
}

func TestCheckpointNeedsIDAndTime(t *testing.T) {
	for _, cp := range []*Checkpoint{{ID: "x"}, {Time: time.Now()}} {
		if err := (Config{ID: "a", Models: []string{"m"}, HTTPAddress: ":0", Checkpoint: cp}).Validate(); err == nil {
			t.Errorf("Validate with checkpoint %+v = nil, want an error", cp)
		}
	}
}

func TestCorruptionAnswersWronglyWhileHealthy(t *testing.T) {
	s := startServer(t, Config{})
	c := httpClient(t)
	base := "http://" + s.Ready().HTTPAddress
	addr := s.Ready().HTTPAddress
	if corrupt, err := engine.ProbeDeep(testContext(t), c, addr, testModel); corrupt || err != nil {
		t.Fatalf("ProbeDeep of a healthy instance = %v, %v; want correct", corrupt, err)
	}
	chat := OpenAIRequest{Model: testModel, Messages: []ChatMessage{{Role: "user", Content: "hi"}}}
	right, err := CallOpenAI(testContext(t), c, base, openAIChatPath, chat)
	if err != nil {
		t.Fatal(err)
	}

	if got := postStatus(t, c, base+"/admin/corrupt"); got != http.StatusNoContent {
		t.Fatalf("POST /admin/corrupt = %d, want 204", got)
	}
	if corrupt, err := engine.ProbeDeep(testContext(t), c, addr, testModel); !corrupt {
		t.Errorf("ProbeDeep of a corrupted instance = %v, %v; want corrupt", corrupt, err)
	}
	wrong, err := CallOpenAI(testContext(t), c, base, openAIChatPath, chat)
	if err != nil || wrong.Status != http.StatusOK || chatText(t, wrong) == chatText(t, right) {
		t.Errorf("chat while corrupted: %v, HTTP %d, %q; want 200 with text other than %q", err, wrong.Status, chatText(t, wrong), chatText(t, right))
	}
	resp, err := oipClient(t, s).ModelInfer(testContext(t), NewInferRequest(testModel, "hello"))
	if err != nil || string(resp.GetOutputs()[0].GetContents().GetBytesContents()[0]) == "hello" {
		t.Errorf("ModelInfer while corrupted = %v, %v; want OK with an output other than the input", resp, err)
	}
	if diff := cmp.Diff(healthy, probeHealth(t, c, s)); diff != "" {
		t.Errorf("health probes while corrupted (-want +got):\n%s", diff)
	}

	if got := postStatus(t, c, base+"/admin/recover"); got != http.StatusNoContent {
		t.Fatalf("POST /admin/recover = %d, want 204", got)
	}
	if corrupt, err := engine.ProbeDeep(testContext(t), c, addr, testModel); corrupt || err != nil {
		t.Errorf("ProbeDeep after recover = %v, %v; want correct", corrupt, err)
	}
}

func TestGarbleNeverEchoes(t *testing.T) {
	for _, text := range []string{"", "a", "aba", "!", "-!-", engine.DeepProbeInput, `{"x":1}`, "null", "日本"} {
		if got := garble(text); got == text {
			t.Errorf("garble(%q) = %q, the input", text, got)
		}
	}
}

func chatText(t *testing.T, r OpenAIReply) string {
	t.Helper()
	var got OpenAICompletion
	if err := json.Unmarshal(r.Body, &got); err != nil || len(got.Choices) == 0 || got.Choices[0].Message == nil {
		t.Fatalf("chat reply %s: %v", r.Body, err)
	}
	return got.Choices[0].Message.Content
}

func TestSleepWhileWakingSleepsAfterTheWakeUp(t *testing.T) {
	s := startServer(t, Config{StartAsleep: true, WarmLoadTime: testLoadTime})
	c := httpClient(t)
	base := "http://" + s.Ready().HTTPAddress
	woke := make(chan int, 1)
	go func() { woke <- postStatus(t, c, base+"/wake_up") }()
	statusesUntil(t, c, s, StatusWaking)
	if got := postStatus(t, c, base+"/sleep"); got != http.StatusOK {
		t.Fatalf("POST /sleep while waking = %d, want 200", got)
	}
	if got := <-woke; got != http.StatusOK {
		t.Errorf("POST /wake_up = %d, want 200", got)
	}
	if got := s.Status(); got != StatusSleeping {
		t.Errorf("status after sleep while waking = %s, want sleeping", got)
	}
}

func TestShutdownEndsAWakeUpInProgress(t *testing.T) {
	s := startServer(t, Config{StartAsleep: true, WarmLoadTime: time.Hour})
	woke := make(chan error, 1)
	go func() { woke <- s.WakeUp(testContext(t)) }()
	testpoll.Until(t, "waking", func() bool { return s.Status() == StatusWaking })
	if err := s.Shutdown(testContext(t)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-woke; !errors.Is(err, errStopped) {
		t.Errorf("WakeUp during shutdown = %v, want %v", err, errStopped)
	}
}
