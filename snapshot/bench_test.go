package snapshot

import (
	"testing"

	"github.com/inferxds/inferxds/topology"
)

// benchSizes are models × endpoints per model. "large" is the architecture's
// target: 500 models with 20 endpoints each, dealt over 3 zones (two active,
// one standby), so 10,000 endpoints. Targets: ≤ 50 ms and ≤ 20 MiB for one
// group's translation; large_3_groups translates it for all three zones.
var benchSizes = []struct {
	name              string
	models, endpoints int
	groups            []string
}{
	{"small", 10, 5, benchZones[:1]},
	{"medium", 100, 10, benchZones[:1]},
	{"large", 500, 20, benchZones[:1]},
	{"large_3_groups", 500, 20, benchZones},
}

// BenchmarkTranslate is a full, uncached translation.
func BenchmarkTranslate(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			fleet, pol := generatedInput(size.models, size.endpoints)
			b.ReportAllocs()
			for b.Loop() {
				for _, group := range size.groups {
					if _, err := Translate(fleet, pol, group); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkEndpointHealthChange is one endpoint of the large fleet going
// unhealthy or back, translated by a warm Translator. Target ≤ 2 ms.
func BenchmarkEndpointHealthChange(b *testing.B) {
	fleet, pol := generatedInput(500, 20)
	tr := NewTranslator()
	if _, err := tr.Translate(fleet, pol, "az-1"); err != nil {
		b.Fatal(err)
	}
	flip := &fleet.Instances[len(fleet.Instances)/2]
	b.ReportAllocs()
	for b.Loop() {
		if flip.Health == topology.HealthServing {
			flip.Health = topology.HealthUnhealthy
		} else {
			flip.Health = topology.HealthServing
		}
		if _, err := tr.Translate(fleet, pol, "az-1"); err != nil {
			b.Fatal(err)
		}
	}
}
