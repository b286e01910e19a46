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
	mux.HandleFunc("POST /admin/fail", s.handleAdminFail)
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
	writeJSON(w, http.StatusOK, PredictResponse{Model: model, Instance: s.cfg.ID, Output: req.Input})
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
	default: // the request was cancelled or timed out while queued or running
		return http.StatusServiceUnavailable
	}
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	if s.Failure().Total() {
		s.writeError(w, http.StatusServiceUnavailable, errors.New("failing"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"instance": s.cfg.ID, "status": "ok"})
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

func (s *Server) handleAdminRecover(w http.ResponseWriter, _ *http.Request) {
	s.setFailure(Failure{})
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
