package drpolicy

import (
	"testing"
)

// FuzzParse feeds arbitrary bytes to the policy loader: it must never panic,
// and whatever it accepts must validate again unchanged.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("policy.yaml", data)
		if err != nil {
			return
		}
		if p == nil {
			t.Fatal("Parse returned neither a policy nor an error")
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("an accepted policy fails validation: %v", err)
		}
	})
}
