package snapshot

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/inferxds/inferxds/topology"
)

// call is one request and where the translated config should send it.
type call struct {
	name   string
	header string // model named in the model-name header; "" sends none
	path   string // request path; "" means a gRPC method path
	body   string // model named in an OpenAI request body; "" names none
	zone   string // the asking node's zone (its group)
	// unhealthy instances are reported so in the fleet before translating;
	// down instances fail in the data plane only (the control plane has not
	// heard yet), so they stay in the config and the data plane skips them.
	unhealthy []string
	down      []string
	// wantCluster is the cluster the request routes to ("" = no route);
	// wantPriority is the first priority with an endpoint not down (-1 =
	// none) and wantEndpoints that priority's usable instances.
	wantCluster   string
	wantPriority  int
	wantEndpoints []string
}

func TestSimulateDRFleet(t *testing.T) {
	calls := []call{
		{name: "local primaries first", header: "llama-2-7b", zone: "az-1",
			wantCluster: "llama-2-7b", wantPriority: 0, wantEndpoints: []string{"llama-a1", "llama-a2"}},
		{name: "path route works without the header", path: "/v1/models/llama-2-7b/generate", zone: "az-2",
			wantCluster: "llama-2-7b", wantPriority: 0, wantEndpoints: []string{"llama-b1"}},
		{name: "local primaries fail: other active zone is P1", header: "llama-2-7b", zone: "az-1", down: []string{"llama-a1", "llama-a2"},
			wantCluster: "llama-2-7b", wantPriority: 1, wantEndpoints: []string{"llama-b1"}},
		{name: "local primaries reported unhealthy: other zone becomes P0", header: "llama-2-7b", zone: "az-1",
			unhealthy:   []string{"llama-a1", "llama-a2"},
			wantCluster: "llama-2-7b", wantPriority: 0, wantEndpoints: []string{"llama-b1"}},
		{name: "one local primary fails: the other keeps P0", header: "llama-2-7b", zone: "az-1", down: []string{"llama-a1"},
			wantCluster: "llama-2-7b", wantPriority: 0, wantEndpoints: []string{"llama-a2"}},
		{name: "all primaries fail: hot standbys at P2, never the warm one", header: "llama-2-7b", zone: "az-2",
			down:        []string{"llama-a1", "llama-a2", "llama-b1"},
			wantCluster: "llama-2-7b", wantPriority: 2, wantEndpoints: []string{"llama-h1", "llama-h2"}},
		{name: "active zones fail: the standby zone at P3", header: "llama-2-7b", zone: "az-1",
			down:        []string{"llama-a1", "llama-a2", "llama-b1", "llama-h1", "llama-h2"},
			wantCluster: "llama-2-7b", wantPriority: 3, wantEndpoints: []string{"llama-z1", "llama-z2"}},
		{name: "active zones reported down: the standby zone is P0", header: "llama-2-7b", zone: "az-2",
			unhealthy:   []string{"llama-a1", "llama-a2", "llama-b1", "llama-h1", "llama-h2"},
			wantCluster: "llama-2-7b", wantPriority: 0, wantEndpoints: []string{"llama-z1", "llama-z2"}},
		{name: "the standby zone sees active primaries first", header: "llama-2-7b", zone: "az-3",
			wantCluster: "llama-2-7b", wantPriority: 0, wantEndpoints: []string{"llama-a1", "llama-a2", "llama-b1"}},
		{name: "the standby zone: its own instances last", header: "llama-2-7b", zone: "az-3",
			down:        []string{"llama-a1", "llama-a2", "llama-b1", "llama-h1", "llama-h2"},
			wantCluster: "llama-2-7b", wantPriority: 2, wantEndpoints: []string{"llama-z1", "llama-z2"}},
		{name: "everything reported down: no endpoint", header: "llama-2-7b", zone: "az-1",
			unhealthy:   []string{"llama-a1", "llama-a2", "llama-b1", "llama-h1", "llama-h2", "llama-z1", "llama-z2"},
			wantCluster: "llama-2-7b", wantPriority: -1},
		{name: "unknown model: no route", header: "gpt-5", zone: "az-1", wantPriority: -1},
		{name: "OpenAI body names the model", path: "/v1/chat/completions", body: "llama-2-7b", zone: "az-1",
			wantCluster: "llama-2-7b", wantPriority: 0, wantEndpoints: []string{"llama-a1", "llama-a2"}},
		{name: "OpenAI body names an unknown model: no cluster", path: "/v1/embeddings", body: "gpt-5", zone: "az-1", wantPriority: -1},
		{name: "a body model does not route other paths", path: "/v1/chat/completions/x", body: "llama-2-7b", zone: "az-1", wantPriority: -1},
	}
	base := loadGoldenInput(t, "testdata/in/zone-view-az-1.yaml")
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			fleet := withUnhealthy(base.Fleet, c.unhealthy)
			r, err := Translate(&fleet, &base.Policy, c.zone)
			if err != nil {
				t.Fatal(err)
			}
			cluster := resolveRoute(r.Routes[0], c.header, c.path, c.body)
			priority, endpoints := firstUsablePriority(findAssignment(r.Endpoints, cluster), c.down)
			if cluster != c.wantCluster || priority != c.wantPriority || !slices.Equal(endpoints, c.wantEndpoints) {
				t.Errorf("got cluster %q, priority %d, endpoints %v; want %q, %d, %v",
					cluster, priority, endpoints, c.wantCluster, c.wantPriority, c.wantEndpoints)
			}
		})
	}
}

// withUnhealthy copies the fleet with the named instances unhealthy.
func withUnhealthy(f topology.Fleet, names []string) topology.Fleet {
	f.Instances = slices.Clone(f.Instances)
	for i := range f.Instances {
		if slices.Contains(names, f.Instances[i].Name) {
			f.Instances[i].Health = topology.HealthUnhealthy
		}
	}
	return f
}

// resolveRoute is what the data plane does with a request: the first route
// whose path, headers and body model (the json_to_metadata metadata) match
// picks the cluster; a direct response picks none.
func resolveRoute(rc *routev3.RouteConfiguration, modelHeader, path, bodyModel string) string {
	if path == "" {
		path = "/inference.Model/Generate"
	}
	for _, rt := range rc.GetVirtualHosts()[0].GetRoutes() {
		m := rt.GetMatch()
		if pathMatches(m, path) && headersMatch(m.GetHeaders(), modelHeader) && metadataMatches(m.GetDynamicMetadata(), bodyModel) {
			return rt.GetRoute().GetCluster()
		}
	}
	return ""
}

func pathMatches(m *routev3.RouteMatch, path string) bool {
	switch {
	case m.GetSafeRegex() != nil:
		return regexp.MustCompile(m.GetSafeRegex().GetRegex()).MatchString(path)
	case m.GetPath() != "":
		return path == m.GetPath()
	default:
		return strings.HasPrefix(path, m.GetPrefix())
	}
}

func metadataMatches(matchers []*matcherv3.MetadataMatcher, bodyModel string) bool {
	for _, mm := range matchers {
		if mm.GetValue().GetStringMatch().GetExact() != bodyModel {
			return false
		}
	}
	return true
}

func headersMatch(matchers []*routev3.HeaderMatcher, modelHeader string) bool {
	for _, h := range matchers {
		if h.GetName() != "model-name" || h.GetStringMatch().GetExact() != modelHeader {
			return false
		}
	}
	return true
}

func findAssignment(clas []*endpointv3.ClusterLoadAssignment, cluster string) *endpointv3.ClusterLoadAssignment {
	for _, cla := range clas {
		if cla.GetClusterName() == cluster {
			return cla
		}
	}
	return nil
}

// firstUsablePriority is where a data plane sends the request: the lowest
// priority with an endpoint that is not down. It returns -1 when none is.
func firstUsablePriority(cla *endpointv3.ClusterLoadAssignment, down []string) (int, []string) {
	byPriority := map[int][]string{}
	for _, loc := range cla.GetEndpoints() {
		for _, ep := range loc.GetLbEndpoints() {
			if name := ep.GetEndpoint().GetHostname(); !slices.Contains(down, name) {
				byPriority[int(loc.GetPriority())] = append(byPriority[int(loc.GetPriority())], name)
			}
		}
	}
	for p := range len(cla.GetEndpoints()) {
		if names, ok := byPriority[p]; ok {
			return p, names
		}
	}
	return -1, nil
}
