package snapshot

import (
	"strings"
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestValidateCatches breaks one thing in a good translation at a time and
// expects Validate to name it.
func TestValidateCatches(t *testing.T) {
	cases := []struct {
		name   string
		damage func(r *Resources)
		want   string
	}{
		{"route configuration missing", func(r *Resources) { r.Routes = nil },
			`listener "inference": route configuration "inference" does not exist`},
		{"route to a missing cluster", func(r *Resources) { r.Clusters = r.Clusters[1:] },
			`route "model-0000/header": cluster "model-0000" does not exist`},
		{"mirror to a missing cluster", func(r *Resources) { r.Clusters = r.Clusters[:1] },
			`route "model-0000/path": cluster "model-0001" does not exist`},
		{"cluster without load assignment", func(r *Resources) { r.Endpoints = r.Endpoints[1:] },
			`cluster "model-0000": no load assignment "model-0000"`},
		{"priority gap", func(r *Resources) { r.Endpoints[0].Endpoints[1].Priority = 5 },
			`load assignment "model-0000": priorities skip`},
		{"zero locality weight", func(r *Resources) { r.Endpoints[0].Endpoints[0].LoadBalancingWeight = wrapperspb.UInt32(0) },
			`locality weight must be positive`},
		{"duplicate address", func(r *Resources) {
			eps := r.Endpoints[0].Endpoints[0].LbEndpoints
			eps[1].GetEndpoint().Address = eps[0].GetEndpoint().GetAddress()
		}, `appears twice`},
		{"invalid connection manager inside an Any", func(r *Resources) {
			r.Listeners[0].GetApiListener().ApiListener = mustAny(&hcmv3.HttpConnectionManager{})
		}, `HttpConnectionManager: invalid HttpConnectionManager.StatPrefix`},
		{"router not last", func(r *Resources) {
			hcm := httpConnectionManager("x")
			hcm.HttpFilters = append(hcm.HttpFilters, &hcmv3.HttpFilter{Name: "envoy.filters.http.cors"})
			r.Listeners[1].FilterChains[0].Filters[0].GetTypedConfig().Value, _ = proto.Marshal(hcm)
		}, `listener "ingress_http": the router must be the last HTTP filter`},
		{"route without a path match", func(r *Resources) { r.Routes[0].VirtualHosts[0].Routes[0].Match.PathSpecifier = nil },
			`gRPC clients need a path match`},
		{"invalid cluster field", func(r *Resources) {
			r.Clusters[0].OutlierDetection.MaxEjectionPercent = wrapperspb.UInt32(101)
		}, `invalid OutlierDetection.MaxEjectionPercent: value must be less than or equal to 100`},
		{"duplicate cluster", func(r *Resources) { r.Clusters = append(r.Clusters, r.Clusters[0]) },
			`cluster "model-0000" appears twice`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fleet, pol := generatedInput(2, 6) // model-0000 mirrors to model-0001
			r, err := Translate(fleet, pol, "az-1")
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(r); err != nil {
				t.Fatalf("a fresh translation does not validate: %v", err)
			}
			// Translator output is read-only and trusted as validated; the
			// damage goes into a copy, as into resources built by hand.
			r = &Resources{Listeners: r.Listeners, Routes: r.Routes, Clusters: r.Clusters, Endpoints: r.Endpoints, Versions: r.Versions}
			c.damage(r)
			err = Validate(r)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Validate = %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// TestValidateAcceptsEveryTranslation: what Translate's cached checks
// accept, the exported Validate accepts too.
func TestValidateAcceptsEveryTranslation(t *testing.T) {
	for _, c := range []struct{ models, endpoints int }{{1, 1}, {30, 7}} {
		fleet, pol := generatedInput(c.models, c.endpoints)
		for _, group := range append(benchZones, "") {
			r, err := Translate(fleet, pol, group)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(r); err != nil {
				t.Errorf("%d models, group %q: %v", c.models, group, err)
			}
		}
	}
}
