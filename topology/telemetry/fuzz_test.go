package telemetry_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/inferxds/inferxds/topology/telemetry"
)

// FuzzParseText feeds arbitrary scrape bodies to the telemetry parser and
// applies what it accepts, as both a node's and a model server's page, to a
// fleet: nothing may panic, and the applied fleet must stay valid.
func FuzzParseText(f *testing.F) {
	fleet := parseFleet(f, testFleet)
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := telemetry.ParseText(bytes.NewReader(data))
		if err != nil {
			return
		}
		sample := telemetry.Sample{At: now, Metrics: m}
		samples := telemetry.Samples{nodeURL: sample, modelURL: sample}
		applied, _ := telemetry.Apply(fleet, samples, now, time.Minute)
		if err := applied.Validate(); err != nil {
			t.Fatalf("telemetry made the fleet invalid: %v", err)
		}
		telemetry.Signals(applied, samples, now, time.Minute)
	})
}
