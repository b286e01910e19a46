package snapshot

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
)

// TestTranslatorMatchesTranslate feeds one Translator a run of changes and
// checks every result against an uncached Translate of the same inputs.
func TestTranslatorMatchesTranslate(t *testing.T) {
	fleet, pol := generatedInput(20, 6)
	steps := []struct {
		name   string
		group  string
		change func(*topology.Fleet, *drpolicy.Policy)
	}{
		{"first", "az-1", func(*topology.Fleet, *drpolicy.Policy) {}},
		{"unchanged", "az-1", func(*topology.Fleet, *drpolicy.Policy) {}},
		{"endpoint unhealthy", "az-1", func(f *topology.Fleet, _ *drpolicy.Policy) { f.Instances[0].Health = topology.HealthUnhealthy }},
		{"weight", "az-1", func(f *topology.Fleet, _ *drpolicy.Policy) { f.Instances[1].Weight = 9 }},
		{"health unknown", "az-1", func(f *topology.Fleet, _ *drpolicy.Policy) { f.Instances[2].Health = topology.HealthUnknown }},
		{"other group", "az-2", func(*topology.Fleet, *drpolicy.Policy) {}},
		{"back to az-1", "az-1", func(*topology.Fleet, *drpolicy.Policy) {}},
		{"policy timeout in place", "az-1", func(_ *topology.Fleet, p *drpolicy.Policy) {
			p.Models[3].Timeout = drpolicy.Duration(time.Minute)
		}},
		{"retry attempts through a shared pointer", "az-1", func(_ *topology.Fleet, p *drpolicy.Policy) { p.Models[4].Retries.Attempts = 5 }},
		{"zone roles flip", "az-1", func(f *topology.Fleet, p *drpolicy.Policy) {
			f.Zones[1].Role, f.Zones[2].Role = topology.ZoneStandby, topology.ZoneActive
			p.AZFailover.ActiveZones, p.AZFailover.StandbyZone = []string{"az-1", "az-3"}, "az-2"
		}},
		{"model removed", "az-1", func(_ *topology.Fleet, p *drpolicy.Policy) { p.Models = p.Models[:len(p.Models)-1] }},
		{"address moves", "az-1", func(f *topology.Fleet, _ *drpolicy.Policy) { f.Instances[5].Address = "10.99.0.1" }},
	}
	tr := NewTranslator()
	for _, s := range steps {
		s.change(fleet, pol)
		got, err := tr.Translate(fleet, pol, s.group)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		want, err := Translate(fleet, pol, s.group)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if diff := diffResources(got, want); diff != "" {
			t.Errorf("%s: cached translation differs from a fresh one (-fresh +cached):\n%s", s.name, diff)
		}
	}
}

func diffResources(got, want *Resources) string {
	return cmp.Diff(want, got, protocmp.Transform(), cmpopts.IgnoreUnexported(Resources{}))
}

func TestEndpointHealthChangeKeepsOtherVersions(t *testing.T) {
	fleet, pol := generatedInput(50, 10)
	tr := NewTranslator()
	before := mustTranslate(t, tr, fleet, pol)
	fleet.Instances[7].Health = topology.HealthDraining
	after := mustTranslate(t, tr, fleet, pol)
	b, a := before.Versions, after.Versions
	if a.Listeners != b.Listeners || a.Routes != b.Routes || a.Clusters != b.Clusters {
		t.Errorf("an endpoint health change moved listener/route/cluster versions: %+v → %+v", b, a)
	}
	if a.Endpoints == b.Endpoints {
		t.Errorf("endpoint version %s did not change although an endpoint left", a.Endpoints)
	}
}

func TestPolicyChangesMoveTheRightVersions(t *testing.T) {
	cases := []struct {
		name                                   string
		change                                 func(*drpolicy.Policy)
		routes, clusters, endpoints, listeners bool
	}{
		{name: "timeout changes routes only", change: func(p *drpolicy.Policy) { p.Models[0].Timeout = drpolicy.Duration(time.Hour) },
			routes: true},
		{name: "outlier detection changes clusters and so endpoints", change: func(p *drpolicy.Policy) { p.Models[0].OutlierDetection.Consecutive5xx = 99 },
			clusters: true, endpoints: true},
		{name: "ring hash changes routes and clusters", change: func(p *drpolicy.Policy) {
			p.Models[0].LoadBalancing = drpolicy.LoadBalancing{Policy: drpolicy.LBRingHash, HashHeader: "x-user"}
		}, routes: true, clusters: true, endpoints: true},
		{name: "tenant changes nothing sent", change: func(p *drpolicy.Policy) { p.Models[0].Tenant = "research" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fleet, pol := generatedInput(5, 3)
			tr := NewTranslator()
			b := mustTranslate(t, tr, fleet, pol).Versions
			c.change(pol)
			a := mustTranslate(t, tr, fleet, pol).Versions
			moved := [4]bool{a.Listeners != b.Listeners, a.Routes != b.Routes, a.Clusters != b.Clusters, a.Endpoints != b.Endpoints}
			if want := [4]bool{c.listeners, c.routes, c.clusters, c.endpoints}; moved != want {
				t.Errorf("versions moved (listeners, routes, clusters, endpoints) = %v, want %v", moved, want)
			}
		})
	}
}

func TestTranslateIgnoresInputOrder(t *testing.T) {
	fleet, pol := generatedInput(10, 6)
	want := mustTranslate(t, NewTranslator(), fleet, pol)
	slices.Reverse(fleet.Instances)
	slices.Reverse(fleet.Zones)
	slices.Reverse(pol.Models)
	got := mustTranslate(t, NewTranslator(), fleet, pol)
	if diff := diffResources(got, want); diff != "" {
		t.Errorf("reordered inputs changed the output (-before +after):\n%s", diff)
	}
}

func TestListenAddressOption(t *testing.T) {
	fleet, pol := generatedInput(1, 1)
	r, err := Translate(fleet, pol, "az-1", WithListenAddress("127.0.0.1", 18000))
	if err != nil {
		t.Fatal(err)
	}
	def, err := Translate(fleet, pol, "az-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range r.Listeners {
		if sa := l.GetAddress().GetSocketAddress(); l.GetName() == SocketListenerName && (sa.GetAddress() != "127.0.0.1" || sa.GetPortValue() != 18000) {
			t.Errorf("socket listener binds %s:%d, want 127.0.0.1:18000", sa.GetAddress(), sa.GetPortValue())
		}
	}
	if r.Versions.Listeners == def.Versions.Listeners {
		t.Error("a different listen address left the listener version unchanged")
	}
}

func TestTranslateReportsEveryBadModel(t *testing.T) {
	fleet, pol := generatedInput(4, 2)
	pol.Models[0].LoadBalancing = drpolicy.LoadBalancing{Policy: drpolicy.LBRingHash}
	pol.Models[2].Mirror = &drpolicy.Mirror{Model: "model-0001", Percent: 150}
	pol.Models = append(pol.Models, pol.Models[3])
	r, err := Translate(fleet, pol, "az-1")
	if r != nil || err == nil {
		t.Fatalf("Translate gave resources %v and error %v; want nil resources and an error", r != nil, err)
	}
	for _, want := range []string{`model "model-0000": loadBalancing ring_hash needs a hashHeader`,
		`model "model-0002": mirror percent 150`, `model "model-0003" is declared twice`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not report %q", err, want)
		}
	}
}

func TestNilInputsTranslateToEmptyRouting(t *testing.T) {
	r, err := Translate(nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Listeners) != 2 || len(r.Routes) != 1 || len(r.Clusters) != 0 || len(r.Endpoints) != 0 {
		t.Errorf("got %d listeners, %d route configurations, %d clusters, %d load assignments; want 2, 1, 0, 0",
			len(r.Listeners), len(r.Routes), len(r.Clusters), len(r.Endpoints))
	}
}

func mustTranslate(t *testing.T, tr *Translator, f *topology.Fleet, p *drpolicy.Policy) *Resources {
	t.Helper()
	r, err := tr.Translate(f, p, "az-1")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestTranslatorFollowsNewFleetsAcrossZones hands one Translator a run of
// new fleets (each a changed copy, as the controller does), alternating
// zones so that a zone falls several changes behind, and checks every result
// against an uncached Translate.
func TestTranslatorFollowsNewFleetsAcrossZones(t *testing.T) {
	fleet, pol := generatedInput(20, 6)
	steps := []struct {
		name   string
		zone   string
		change func(*topology.Fleet)
	}{
		{"first", "az-1", func(*topology.Fleet) {}},
		{"other zone", "az-2", func(*topology.Fleet) {}},
		{"drain", "az-1", func(f *topology.Fleet) { f.Instances[3].Health = topology.HealthDraining }},
		{"weight", "az-1", func(f *topology.Fleet) { f.Instances[40].Weight = 3 }},
		{"two changes behind", "az-2", func(f *topology.Fleet) { f.Instances[7].Port = 9000 }},
		{"instance moves to another model", "az-1", func(f *topology.Fleet) { f.Instances[8].Model = "model-0005" }},
		{"instance removed", "az-2", func(f *topology.Fleet) { f.Instances = f.Instances[1:] }},
		{"zone roles flip", "az-1", func(f *topology.Fleet) {
			f.Zones[1].Role, f.Zones[2].Role = topology.ZoneStandby, topology.ZoneActive
		}},
		{"zone roles back", "az-3", func(f *topology.Fleet) {
			f.Zones[1].Role, f.Zones[2].Role = topology.ZoneActive, topology.ZoneStandby
		}},
		{"every instance of a model stops serving", "az-1", func(f *topology.Fleet) {
			for i := range f.Instances {
				if f.Instances[i].Model == "model-0002" {
					f.Instances[i].Health = topology.HealthUnhealthy
				}
			}
		}},
	}
	tr := NewTranslator()
	for _, s := range steps {
		next := *fleet
		next.Zones = slices.Clone(fleet.Zones)
		next.Instances = slices.Clone(fleet.Instances)
		s.change(&next)
		fleet = &next
		if s.name == "zone roles flip" {
			pol.AZFailover.ActiveZones, pol.AZFailover.StandbyZone = []string{"az-1", "az-3"}, "az-2"
		}
		if s.name == "zone roles back" {
			pol.AZFailover.ActiveZones, pol.AZFailover.StandbyZone = []string{"az-1", "az-2"}, "az-3"
		}
		got, err := tr.Translate(fleet, pol, s.zone)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		want, err := Translate(fleet, pol, s.zone)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if diff := diffResources(got, want); diff != "" {
			t.Errorf("%s: cached translation differs from a fresh one (-fresh +cached):\n%s", s.name, diff)
		}
	}
}

// TestModelListFitsEnvoysDirectResponseLimit: with enough models the
// GET /v1/models answer outgrows Envoy's 4 KiB direct response default, which
// made Envoy reject the whole route configuration; the configuration then
// raises the limit to the body's size, and leaves it unset while it fits.
func TestModelListFitsEnvoysDirectResponseLimit(t *testing.T) {
	for _, models := range []int{3, 500} {
		fleet, pol := generatedInput(models, 1)
		r, err := Translate(fleet, pol, "az-1")
		if err != nil {
			t.Fatal(err)
		}
		rc := r.Routes[0]
		var body string
		for _, route := range rc.GetVirtualHosts()[0].GetRoutes() {
			if route.GetName() == OpenAIModelsRouteName {
				body = route.GetDirectResponse().GetBody().GetInlineString()
			}
		}
		limit := rc.GetMaxDirectResponseBodySizeBytes()
		switch {
		case len(body) <= envoyDirectResponseBodyLimit && limit != nil:
			t.Errorf("%d models: a %d-byte model list fits the default, yet the limit is set to %d", models, len(body), limit.GetValue())
		case len(body) > envoyDirectResponseBodyLimit && limit.GetValue() < uint32(len(body)):
			t.Errorf("%d models: the model list is %d bytes, the direct response limit %v", models, len(body), limit)
		}
		if models == 500 && len(body) <= envoyDirectResponseBodyLimit {
			t.Fatalf("500 models give only a %d-byte list: the case tests nothing", len(body))
		}
	}
}
