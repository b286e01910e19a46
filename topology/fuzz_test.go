package topology

import (
	"testing"
)

// FuzzParseFleet feeds arbitrary bytes to the fleet loader: it must never
// panic, whatever it accepts must validate again, and the incremental parser
// must agree with the one-shot one.
func FuzzParseFleet(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fleet, err := ParseFleet("fleet.yaml", data)
		var p FleetParser
		again, againErr := p.Parse("fleet.yaml", data)
		if (err == nil) != (againErr == nil) {
			t.Fatalf("ParseFleet error %v, FleetParser error %v", err, againErr)
		}
		if err != nil {
			return
		}
		if err := fleet.Validate(); err != nil {
			t.Fatalf("an accepted fleet fails validation: %v", err)
		}
		if !fleet.Equal(again) {
			t.Fatal("FleetParser and ParseFleet disagree")
		}
	})
}
