package e2e

import (
	"testing"
)

const twoModelPolicy = `models:
  - name: llama-2-7b
    priority: critical
    hotStandby: 0
    warmStandby: 0
    coldStandby: 0
    rto: "10s"
  - name: mistral-7b
    priority: high
    hotStandby: 0
    warmStandby: 0
    coldStandby: 0
    rto: "30s"
`

// TestRoutingByModelHeader: with two models of two instances each, every
// request is answered by an instance of the model it names, and round robin
// uses every instance.
func TestRoutingByModelHeader(t *testing.T) {
	sims := map[string][]*modelSim{
		"llama-2-7b": {startModelSim(t, "llama-a", "llama-2-7b"), startModelSim(t, "llama-b", "llama-2-7b")},
		"mistral-7b": {startModelSim(t, "mistral-a", "mistral-7b"), startModelSim(t, "mistral-b", "mistral-7b")},
	}
	fleet := fleetOf()
	for _, group := range sims {
		for _, s := range group {
			fleet.Instances = append(fleet.Instances, s.grpcInstance(t))
		}
	}
	cp := startControlPlane(t, twoModelPolicy, fleet)
	client := dialXDS(t, cp, "az-1")
	for model := range sims {
		client.waitRoutable(t, model, hangGuard)
	}

	const perModel = 100
	for model, group := range sims {
		counts := client.answeredBy(t, model, perModel, nil)
		assertAnsweredOnlyBy(t, model, counts, simsByID(group...))
		report(t, "routing model=%s requests=%d split=%v", model, perModel, counts)
	}
}

// assertAnsweredOnlyBy fails unless every answer came from one of want and
// each of want answered at least once.
func assertAnsweredOnlyBy(t *testing.T, model string, counts map[string]int, want map[string]*modelSim) {
	t.Helper()
	for id, n := range counts {
		if want[id] == nil {
			t.Errorf("model %s: %d requests answered by %q, not an instance of the model", model, n, id)
		}
	}
	for id := range want {
		if counts[id] == 0 {
			t.Errorf("model %s: instance %s got no requests (split %v)", model, id, counts)
		}
	}
}
