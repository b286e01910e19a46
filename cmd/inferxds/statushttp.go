package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/inferxds/inferxds/drpolicy/dr"
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
	// DR is, with serve --dr, each model's instances as the DR state makes
	// them and its open and recent incidents.
	DR []modelDR `json:"dr,omitempty"`
}

// modelDR is one model in /status's DR view.
type modelDR struct {
	Model     string        `json:"model"`
	Instances []drInstance  `json:"instances"`
	Incidents []dr.Incident `json:"incidents,omitempty"`
}

type drInstance struct {
	Name       string         `json:"name"`
	Zone       string         `json:"zone"`
	Tier       string         `json:"tier"`
	Role       string         `json:"role"`
	Health     string         `json:"health"`
	Checkpoint *dr.Checkpoint `json:"checkpoint,omitempty"`
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
		DR:          cp.drStatus(),
	}
	for view, v := range cp.server.ServedVersions() {
		doc.Views[view.String()] = viewVersions(v)
	}
	if len(doc.Errors) > 0 {
		doc.LastError = &doc.Errors[0]
	}
	return doc
}

// drStatus is the DR view of every model of the policy; nil without --dr.
func (cp *controlPlane) drStatus() []modelDR {
	state := cp.drState()
	if state == nil {
		return nil
	}
	pol, _ := cp.hub.Policy.Get()
	fleet, pol := dr.Effective(cp.servedFleet(), pol, state)
	out := make([]modelDR, 0, len(pol.Models))
	for _, m := range pol.Models {
		md := modelDR{Model: m.Name, Instances: []drInstance{}}
		for _, in := range fleet.Instances {
			if in.Model == m.Name {
				st := newInstanceStatus(in, state)
				md.Instances = append(md.Instances, drInstance{Name: st.Name, Zone: st.Zone, Tier: st.Tier, Role: st.Role, Health: st.Health, Checkpoint: st.Checkpoint})
			}
		}
		md.Incidents = modelIncidents(state, m.Name)
		out = append(out, md)
	}
	return out
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
