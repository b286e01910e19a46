package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// HeaderInstance carries the instance id on every HTTP reply, so a caller
// behind a proxy sees which instance answered without reading the body.
const HeaderInstance = "X-Modelsim-Instance"

const maxBodyBytes = 1 << 20

// PredictRequest is the body of POST /v1/models/<name>/predict; an empty
// body means a null input.
type PredictRequest struct {
	Input json.RawMessage `json:"input"`
}

// PredictResponse is the reply to a successful predict: the input echoed.
type PredictResponse struct {
	Model    string          `json:"model"`
	Instance string          `json:"instance"`
	Output   json.RawMessage `json:"output"`
}

// errorResponse is the body of every non-2xx reply.
type errorResponse struct {
	Instance string `json:"instance"`
	Error    string `json:"error"`
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/models/{model}/predict", s.handlePredict)
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("POST /sleep", s.handleSleep)
	mux.HandleFunc("POST /wake_up", s.handleWakeUp)
	mux.HandleFunc("GET /is_sleeping", s.handleIsSleeping)
	mux.HandleFunc("POST /admin/fail", s.handleAdminFail)
	mux.HandleFunc("POST /admin/corrupt", s.handleAdminCorrupt)
	mux.HandleFunc("POST /admin/recover", s.handleAdminRecover)
	s.openAIRoutes(mux)
	return withInstanceHeader(s.cfg.ID, mux)
}

func withInstanceHeader(id string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderInstance, id)
		next.ServeHTTP(w, r)
	})
}

func (s *Server) handlePredict(w http.ResponseWriter, r *http.Request) {
	model := r.PathValue("model")
	req, err := readPredictRequest(r)
	if err != nil {
		s.writeError(w, http.StatusBadRequest, err)
		return
	}
	err = s.process(r.Context(), model)
	code := httpStatus(err)
	s.metrics.requests.WithLabelValues(s.modelLabel(model), "http", strconv.Itoa(code)).Inc()
	if err != nil {
		s.writeError(w, code, fmt.Errorf("model %q: %w", model, err))
		return
	}
	output := req.Input
	if s.Corrupted() {
		output = garbledOutput(req.Input)
	}
	writeJSON(w, http.StatusOK, PredictResponse{Model: model, Instance: s.cfg.ID, Output: output})
}

// readPredictRequest reads the whole body, so the connection stays usable
// and a closed connection cancels the request context.
func readPredictRequest(r *http.Request) (PredictRequest, error) {
	var req PredictRequest
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err != nil || len(body) == 0 {
		return req, err
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, fmt.Errorf("request body: %w", err)
	}
	return req, nil
}

func httpStatus(err error) int {
	var injected injectedError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, errModelNotServed):
		return http.StatusNotFound
	case errors.As(err, &injected):
		return injected.failure.HTTPStatus
	default: // not serving (loading, asleep, waking), or the request was cancelled or timed out
		return http.StatusServiceUnavailable
	}
}

// Health is the reply to GET /healthz: HTTP 200 only when Status is
// StatusServing, 503 otherwise.
type Health struct {
	Instance   string      `json:"instance"`
	Status     Status      `json:"status"`
	Sleeping   bool        `json:"sleeping"`
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	h := Health{Instance: s.cfg.ID, Status: s.Status(), Sleeping: s.Sleeping(), Checkpoint: s.cfg.Checkpoint}
	code := http.StatusOK
	if h.Status != StatusServing {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, h)
}

// handleSleep is vLLM's POST /sleep?level=1: weights offloaded to host
// memory, so a wake-up is a warm load. Level 2 (weights discarded) is not
// simulated.
func (s *Server) handleSleep(w http.ResponseWriter, r *http.Request) {
	if level := r.URL.Query().Get("level"); level != "" && level != "1" {
		s.writeError(w, http.StatusBadRequest, fmt.Errorf("sleep level %q: only level 1 is simulated", level))
		return
	}
	s.answerTransition(w, s.Sleep(r.Context()))
}

func (s *Server) handleWakeUp(w http.ResponseWriter, r *http.Request) {
	s.answerTransition(w, s.WakeUp(r.Context()))
}

func (s *Server) answerTransition(w http.ResponseWriter, err error) {
	if err != nil {
		s.writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) handleIsSleeping(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{"is_sleeping": s.Sleeping()})
}

// handleAdminFail sets the injected failure from the optional query
// parameters status, code and rate; with none of them every request fails.
func (s *Server) handleAdminFail(w http.ResponseWriter, r *http.Request) {
	f, err := failureFromQuery(r)
	if err == nil {
		err = s.SetFailure(f)
	}
	if err != nil {
		s.writeError(w, http.StatusBadRequest, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func failureFromQuery(r *http.Request) (Failure, error) {
	q := r.URL.Query()
	var f Failure
	var errs []error
	if v := q.Get("status"); v != "" {
		status, err := strconv.Atoi(v)
		errs = append(errs, err)
		f.HTTPStatus = status
	}
	code, err := ParseGRPCCode(q.Get("code"))
	errs = append(errs, err)
	f.GRPCCode = code
	if v := q.Get("rate"); v != "" {
		rate, err := strconv.ParseFloat(v, 64)
		errs = append(errs, err)
		f.Rate = rate
	}
	if !f.Active() {
		f.Rate = 1
	}
	return f, errors.Join(errs...)
}

func (s *Server) handleAdminCorrupt(w http.ResponseWriter, _ *http.Request) {
	s.SetCorrupt(true)
	w.WriteHeader(http.StatusNoContent)
}

// handleAdminRecover clears every fault: injected failure and corruption.
func (s *Server) handleAdminRecover(w http.ResponseWriter, _ *http.Request) {
	s.setFailure(Failure{})
	s.SetCorrupt(false)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, errorResponse{Instance: s.cfg.ID, Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	// The status line is already out; a failed write means the client left.
	_ = json.NewEncoder(w).Encode(body)
}
