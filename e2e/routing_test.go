package e2e

import (
	"context"
	"testing"

	"github.com/inferxds/inferxds/topology"
)

// twoModelPolicy is llama-2-7b (critical) and mistral-7b (high), neither
// with standbys.
var twoModelPolicy = llamaPolicy("") + `  - name: mistral-7b
    priority: high
    hotStandby: 0
    warmStandby: 0
    coldStandby: 0
    rto: "30s"
`

// llamaPolicy is a one-model policy for llama-2-7b with extra settings (YAML
// indented for the model's mapping).
func llamaPolicy(extra string) string {
	return `models:
  - name: llama-2-7b
    priority: critical
    hotStandby: 0
    warmStandby: 0
    coldStandby: 0
    rto: "10s"
` + extra
}

// startTwoModels starts two simulators of each of twoModelPolicy's models
// and returns them by model, with a fleet that lists their instance (the
// gRPC or the HTTP port) as az-1 primaries.
func startTwoModels(t *testing.T, instance func(*modelSim, *testing.T) topology.Instance) (map[string][]*modelSim, topology.Fleet) {
	t.Helper()
	sims := map[string][]*modelSim{
		"llama-2-7b": {startModelSim(t, "llama-a", "llama-2-7b"), startModelSim(t, "llama-b", "llama-2-7b")},
		"mistral-7b": {startModelSim(t, "mistral-a", "mistral-7b"), startModelSim(t, "mistral-b", "mistral-7b")},
	}
	fleet := fleetOf()
	for _, model := range []string{"llama-2-7b", "mistral-7b"} {
		for _, s := range sims[model] {
			fleet.Instances = append(fleet.Instances, instance(s, t))
		}
	}
	return sims, fleet
}

// TestRoutingByModelHeader: with two models of two instances each, every
// request is answered by an instance of the model it names, and round robin
// uses every instance.
func TestRoutingByModelHeader(t *testing.T) {
	sims, fleet := startTwoModels(t, (*modelSim).grpcInstance)
	cp := startControlPlane(t, twoModelPolicy, fleet)
	client := dialXDS(t, cp, "az-1")
	for model := range sims {
		client.waitRoutable(t, model, hangGuard)
	}

	assertRoutes(t, "routing", sims, func(model string) (string, error) { return client.call(context.Background(), model) })
}

// assertRoutes sends routedRequests requests for each model through send
// and checks that they reach only, and every one of, its instances.
func assertRoutes(t *testing.T, path string, sims map[string][]*modelSim, send func(model string) (string, error)) {
	t.Helper()
	for model, group := range sims {
		counts := countAnswers(t, routedRequests, func(int) (string, error) { return send(model) })
		assertAnsweredOnlyBy(t, model, counts, simsByID(group...))
		report(t, "%s model=%s requests=%d split=%v", path, model, routedRequests, counts)
	}
}

// routedRequests is how many requests assertRoutes sends per model: with
// round robin over two instances, enough that each gets some.
const routedRequests = 100

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
