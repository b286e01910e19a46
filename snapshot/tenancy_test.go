package snapshot

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/inferxds/inferxds/drpolicy"
)

// TestTranslatorFollowsTenancyChanges: a Translator turning tenancy on, then
// changing a tenant, then off again gives exactly what a fresh translation
// gives each time, and the gRPC API listener never changes.
func TestTranslatorFollowsTenancyChanges(t *testing.T) {
	in := loadGoldenInput(t, "testdata/in/tenants.yaml")
	tenanted := in.Policy
	changed := in.Policy
	changed.Tenants = append([]drpolicy.Tenant(nil), in.Policy.Tenants...)
	changed.Tenants[0].ConcurrencyShare = 10
	plain := in.Policy
	plain.TenantAuth = nil

	tr := NewTranslator()
	var api *Resources
	for i, pol := range []*drpolicy.Policy{&plain, &tenanted, &changed, &plain} {
		got, err := tr.Translate(&in.Fleet, pol, in.Group)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		want, err := Translate(&in.Fleet, pol, in.Group)
		if err != nil {
			t.Fatal(err)
		}
		if got.Versions != want.Versions || !proto.Equal(got.Routes[0], want.Routes[0]) || len(got.Clusters) != len(want.Clusters) {
			t.Errorf("step %d: the Translator's output differs from a fresh translation: versions %+v, want %+v", i, got.Versions, want.Versions)
		}
		if api == nil {
			api = got
		} else if !proto.Equal(got.Listeners[0], api.Listeners[0]) || got.Listeners[0].GetName() != APIListenerName {
			t.Errorf("step %d: the API listener changed with tenancy", i)
		}
	}
}
