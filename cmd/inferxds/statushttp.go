package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/inferxds/inferxds/xds"
)

// httpHandler serves the metrics port: /metrics (the xds registry),
// /healthz and /status.
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
	return mux
}

// statusDocument is /status: what each group is served, what is failing
// now (latest first), and every connected node's sync state.
type statusDocument struct {
	Groups      map[string]groupVersions `json:"groups"`
	Generation  uint64                   `json:"generation"`
	LastApplied time.Time                `json:"lastApplied,omitzero"`
	LastError   *errorStatus             `json:"lastError,omitempty"`
	Errors      []errorStatus            `json:"errors"`
	Nodes       []xds.NodeStatus         `json:"nodes"`
}

type groupVersions struct {
	Listeners string `json:"listeners"`
	Routes    string `json:"routes"`
	Clusters  string `json:"clusters"`
	Endpoints string `json:"endpoints"`
}

// errorStatus is a source that failed to load (Source set) or a group whose
// translation failed (Group and Inputs set).
type errorStatus struct {
	Source string    `json:"source,omitempty"`
	Group  *string   `json:"group,omitempty"`
	Inputs []string  `json:"inputs,omitempty"`
	Error  string    `json:"error"`
	At     time.Time `json:"at"`
}

func (cp *controlPlane) status() statusDocument {
	ctrl := cp.ctrl.Status()
	doc := statusDocument{
		Groups:      map[string]groupVersions{},
		Generation:  ctrl.Generation,
		LastApplied: ctrl.LastApplied,
		Errors:      currentErrors(ctrl),
		Nodes:       cp.server.Status(),
	}
	for group, v := range cp.server.ServedVersions() {
		doc.Groups[group] = groupVersions(v)
	}
	if len(doc.Errors) > 0 {
		doc.LastError = &doc.Errors[0]
	}
	return doc
}

func currentErrors(ctrl xds.ControllerStatus) []errorStatus {
	out := []errorStatus{}
	for source, e := range ctrl.SourceErrors {
		out = append(out, errorStatus{Source: source, Error: e.Err.Error(), At: e.At})
	}
	for _, e := range ctrl.Failing {
		out = append(out, errorStatus{Group: &e.Group, Inputs: e.Inputs, Error: e.Err.Error(), At: e.At})
	}
	slices.SortFunc(out, func(a, b errorStatus) int { return b.At.Compare(a.At) })
	return out
}
