package drpolicy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/inferxds/inferxds/drpolicy"
)

// BenchmarkParse500Models measures the policy half of "policy file edit →
// pushed, 500 models ≤ 1 s".
func BenchmarkParse500Models(b *testing.B) {
	var src strings.Builder
	src.WriteString("models:\n")
	for i := range 500 {
		fmt.Fprintf(&src, "  - name: model-%d\n    priority: high\n    hotStandby: 1\n    rto: 10s\n    retries:\n      attempts: 2\n      retryOn: [reset, unavailable]\n", i)
	}
	data := []byte(src.String())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := drpolicy.Parse("big.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
