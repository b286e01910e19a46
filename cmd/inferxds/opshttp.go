package main

import (
	"net/http"
	"net/http/pprof"
)

// registerOpsHandlers adds readiness, the per-model status, the DR
// fail-back command and, when enabled, the Go profiler to the metrics port.
func (cp *controlPlane) registerOpsHandlers(mux *http.ServeMux) {
	mux.HandleFunc("GET /readyz", cp.serveReady)
	mux.HandleFunc("GET /status/models/{model}", cp.serveModelStatus)
	mux.HandleFunc("POST /dr/failback", cp.serveFailBack)
	if cp.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
}

// serveReady answers 200 once the first snapshot can be served: the
// controller has translated its inputs once and every view with a
// connected proxy has a snapshot; 503 before.
func (cp *controlPlane) serveReady(w http.ResponseWriter, _ *http.Request) {
	if reason := cp.notReady(); reason != "" {
		http.Error(w, "not ready: "+reason, http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (cp *controlPlane) notReady() string {
	if cp.ctrl.Status().Rounds == 0 {
		return "inputs not translated yet"
	}
	served := cp.server.ServedVersions()
	for _, view := range cp.server.ConnectedViews() {
		if _, ok := served[view]; !ok {
			return "no snapshot yet for view " + view.String()
		}
	}
	return ""
}
