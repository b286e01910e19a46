package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology"
)

// modelStatus is GET /status/models/{model}: the model's instances in the
// fleet the control plane serves (telemetry and, with --dr, the DR state
// applied) and the EDS priority each zone's proxies give them, translated
// on request from the current fleet and policy, so zones without a
// connected proxy are shown too; with --dr, the model's open and recent
// incidents.
type modelStatus struct {
	Model string `json:"model"`
	// Zones are the fleet's zones, the columns of Priorities.
	Zones     []string         `json:"zones"`
	Instances []instanceStatus `json:"instances"`
	Incidents []dr.Incident    `json:"incidents,omitempty"`
}

type instanceStatus struct {
	Name    string `json:"name"`
	Zone    string `json:"zone"`
	Node    string `json:"node,omitempty"`
	Address string `json:"address"`
	Tier    string `json:"tier"`
	Role    string `json:"role"`
	Health  string `json:"health"`
	Weight  uint32 `json:"weight"`
	// Priorities is the instance's EDS priority as seen from each zone;
	// a zone is absent when the instance is not an endpoint there.
	Priorities map[string]uint32 `json:"priorities"`
	// Checkpoint is the model checkpoint the instance last reported to the
	// DR loop's probes.
	Checkpoint *dr.Checkpoint `json:"checkpoint,omitempty"`
}

// servedFleet is the fleet the controller translates: with telemetry
// applied once scraping has published it.
func (cp *controlPlane) servedFleet() *topology.Fleet {
	if cp.telemetry != nil {
		if f, version := cp.hub.Telemetry.Get(); version > 0 {
			return f
		}
	}
	f, _ := cp.hub.Fleet.Get()
	return f
}

func (cp *controlPlane) serveModelStatus(w http.ResponseWriter, r *http.Request) {
	model := r.PathValue("model")
	pol, _ := cp.hub.Policy.Get()
	state := cp.drState()
	fleet, pol := dr.Effective(cp.servedFleet(), pol, state)
	doc, found, err := modelStatusOf(fleet, pol, state, model, cp.translateOptions())
	switch {
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	case !found:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("model %q is neither in the policy nor in the fleet", model)})
	default:
		writeJSON(w, http.StatusOK, doc)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// modelStatusOf describes model in the effective fleet and policy, with
// the DR state's checkpoints and incidents (state may be nil); found is
// false when neither the policy nor the fleet has it.
func modelStatusOf(fleet *topology.Fleet, pol *drpolicy.Policy, state *dr.State, model string, opts []snapshot.Option) (doc modelStatus, found bool, err error) {
	doc = modelStatus{Model: model, Zones: []string{}, Instances: []instanceStatus{}}
	for _, in := range fleet.Instances {
		if in.Model == model {
			doc.Instances = append(doc.Instances, newInstanceStatus(in, state))
		}
	}
	doc.Incidents = modelIncidents(state, model)
	inPolicy := slices.ContainsFunc(pol.Models, func(m drpolicy.Model) bool { return m.Name == model })
	if !inPolicy && len(doc.Instances) == 0 {
		return doc, false, nil
	}
	zones, err := translateZones(fleet, pol, opts)
	if err != nil {
		return doc, true, err
	}
	for _, z := range zones {
		doc.Zones = append(doc.Zones, z.zone)
		priorities := endpointPriorities(z.resources, snapshot.ClusterName(model))
		for i := range doc.Instances {
			if p, ok := priorities[doc.Instances[i].Name]; ok {
				doc.Instances[i].Priorities[z.zone] = p
			}
		}
	}
	return doc, true, nil
}

// modelIncidents are the model's open and recent incidents in state (which
// may be nil).
func modelIncidents(state *dr.State, model string) []dr.Incident {
	var out []dr.Incident
	if state != nil {
		for _, inc := range state.Incidents {
			if inc.Model == model {
				out = append(out, inc)
			}
		}
	}
	return out
}

func newInstanceStatus(in topology.Instance, state *dr.State) instanceStatus {
	st := instanceStatus{
		Name: in.Name, Zone: in.Zone, Node: in.Node, Address: fmt.Sprintf("%s:%d", in.Address, in.Port),
		Tier: string(in.Tier), Role: string(in.Role), Health: string(in.Health), Weight: in.EffectiveWeight(),
		Priorities: map[string]uint32{},
	}
	if state != nil {
		if rec, ok := state.Instance(in.Name); ok {
			st.Checkpoint = rec.Checkpoint
		}
	}
	return st
}

// endpointPriorities maps each endpoint of the cluster's load assignment,
// by hostname (the instance name), to its priority.
func endpointPriorities(r *snapshot.Resources, cluster string) map[string]uint32 {
	out := map[string]uint32{}
	for _, cla := range r.Endpoints {
		if cla.GetClusterName() != cluster {
			continue
		}
		for _, loc := range cla.GetEndpoints() {
			for _, ep := range loc.GetLbEndpoints() {
				out[ep.GetEndpoint().GetHostname()] = loc.GetPriority()
			}
		}
	}
	return out
}

func runModelStatus(ctx context.Context, w io.Writer, o statusOptions, model string) error {
	token, err := securityConfig{MetricsTokenFile: o.tokenFile}.metricsToken()
	if err != nil {
		return err
	}
	doc, err := fetchModelStatus(ctx, o.metricsAddress, model, token)
	if err != nil {
		return err
	}
	return writeOutput(w, o.output, doc, func(tw *tabwriter.Writer) { modelTable(tw, doc) })
}

func fetchModelStatus(ctx context.Context, addr, model, token string) (modelStatus, error) {
	u := "http://" + addr + "/status/models/" + url.PathEscape(model)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return modelStatus{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return modelStatus{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return modelStatus{}, fmt.Errorf("GET %s: %s: %s", u, resp.Status, e.Error)
	}
	var doc modelStatus
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return modelStatus{}, fmt.Errorf("GET %s: %w", u, err)
	}
	return doc, nil
}

func modelTable(tw *tabwriter.Writer, doc modelStatus) {
	checkpoints := slices.ContainsFunc(doc.Instances, func(in instanceStatus) bool { return in.Checkpoint != nil })
	fmt.Fprint(tw, "INSTANCE\tZONE\tNODE\tADDRESS\tTIER\tROLE\tHEALTH\tWEIGHT")
	for _, z := range doc.Zones {
		fmt.Fprint(tw, "\tP@"+z)
	}
	if checkpoints {
		fmt.Fprint(tw, "\tCHECKPOINT")
	}
	fmt.Fprintln(tw)
	for _, in := range doc.Instances {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d", in.Name, in.Zone, cmp.Or(in.Node, "-"), in.Address, in.Tier, in.Role, in.Health, in.Weight)
		for _, z := range doc.Zones {
			p, ok := in.Priorities[z]
			cell := "-"
			if ok {
				cell = strconv.FormatUint(uint64(p), 10)
			}
			fmt.Fprint(tw, "\t"+cell)
		}
		if checkpoints {
			fmt.Fprint(tw, "\t"+checkpointCell(in.Checkpoint))
		}
		fmt.Fprintln(tw)
	}
	if len(doc.Incidents) > 0 {
		fmt.Fprintln(tw)
		incidentTable(tw, doc.Incidents)
	}
}

func checkpointCell(c *dr.Checkpoint) string {
	if c == nil {
		return "-"
	}
	return c.ID + "@" + c.Time.UTC().Format(time.RFC3339)
}

// incidentTable lists incidents with each stage's time after the fault
// (or, where the fault time is not known, after detection).
func incidentTable(tw *tabwriter.Writer, incidents []dr.Incident) {
	fmt.Fprintln(tw, "INCIDENT\tFAILURE\tINSTANCE\tREPLACEMENT\tFAULT\tDETECTED\tDRAINED\tPROMOTION\tREADY\tRESTORED\tNOTE")
	for _, inc := range incidents {
		from := cmp.Or(inc.FaultAt, inc.DetectedAt)
		fault := "-"
		if !inc.FaultAt.IsZero() {
			fault = inc.FaultAt.UTC().Format(time.RFC3339Nano)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s", inc.ID, inc.Failure, inc.Instance, cmp.Or(inc.Replacement, "-"), fault)
		for _, at := range []time.Time{inc.DetectedAt, inc.DrainedAt, inc.PromotionStartedAt, inc.PromotedReadyAt, inc.RestoredAt} {
			fmt.Fprint(tw, "\t"+sinceCell(from, at))
		}
		fmt.Fprintln(tw, "\t"+cmp.Or(inc.Note, "-"))
	}
}

// sinceCell is at as a time after from ("+1.25s"), or "-" when the stage
// has not happened.
func sinceCell(from, at time.Time) string {
	if at.IsZero() {
		return "-"
	}
	if from.IsZero() {
		return at.UTC().Format(time.RFC3339Nano)
	}
	return "+" + at.Sub(from).Round(time.Millisecond).String()
}
