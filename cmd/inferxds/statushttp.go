package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/inferxds/inferxds/internal/controller"
	"github.com/inferxds/inferxds/internal/hub"
	"github.com/inferxds/inferxds/xds"
)

// httpHandler serves the metrics port: /metrics (the xds registry),
// /healthz, /readyz, /status, /status/models/{model} and, with --pprof,
// /debug/pprof/.
func (cp *controlPlane) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(cp.server.Registry(), promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(cp.status())
	})
	cp.registerOpsHandlers(mux)
	return mux
}

// statusDocument is /status: what each view is served, what is failing
// now (latest first), and every connected node's sync state.
type statusDocument struct {
	Views       map[string]viewVersions `json:"views"`
	Generation  uint64                  `json:"generation"`
	LastApplied time.Time               `json:"lastApplied,omitzero"`
	LastError   *errorStatus            `json:"lastError,omitempty"`
	Errors      []errorStatus           `json:"errors"`
	Nodes       []xds.NodeStatus        `json:"nodes"`
	Tenants     []tenantStatus          `json:"tenants,omitempty"`
}

type viewVersions struct {
	Listeners string `json:"listeners"`
	Routes    string `json:"routes"`
	Clusters  string `json:"clusters"`
	Endpoints string `json:"endpoints"`
}

// errorStatus is a source that failed to load (Source set) or a view whose
// translation failed (View and Inputs set).
type errorStatus struct {
	Source string    `json:"source,omitempty"`
	View   string    `json:"view,omitempty"`
	Inputs []string  `json:"inputs,omitempty"`
	Error  string    `json:"error"`
	At     time.Time `json:"at"`
}

func (cp *controlPlane) status() statusDocument {
	ctrl := cp.ctrl.Status()
	doc := statusDocument{
		Views:       map[string]viewVersions{},
		Generation:  ctrl.Generation,
		LastApplied: ctrl.LastApplied,
		Errors:      currentErrors(cp.hub.SourceErrors(), ctrl.Failing),
		Nodes:       cp.server.Status(),
		Tenants:     cp.tenantUsage(),
	}
	for view, v := range cp.server.ServedVersions() {
		doc.Views[view.String()] = viewVersions(v)
	}
	if len(doc.Errors) > 0 {
		doc.LastError = &doc.Errors[0]
	}
	return doc
}

func currentErrors(sources map[string]hub.SourceError, failing []controller.ApplyError) []errorStatus {
	out := []errorStatus{}
	for source, e := range sources {
		out = append(out, errorStatus{Source: source, Error: e.Err.Error(), At: e.At})
	}
	for _, e := range failing {
		out = append(out, errorStatus{View: e.View, Inputs: e.Inputs, Error: e.Err.Error(), At: e.At})
	}
	slices.SortFunc(out, func(a, b errorStatus) int { return b.At.Compare(a.At) })
	return out
}
