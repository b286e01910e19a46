package e2e

import (
	"fmt"
	"math"
	"testing"
)

// ringHashPolicy asks for gRPC's largest ring (4,096 entries): the share a
// host owns on a ring of N random points spreads by about sqrt(p(1-p)/N), so
// the default 1,024 entries alone could miss 75% ± 5 once in a few hundred
// runs.
var ringHashPolicy = llamaPolicy(`    loadBalancing:
      policy: ring_hash
      hashHeader: x-session
      minRingSize: 4096
`)

// TestRingHashHonoursFleetWeights: with ring_hash on x-session and fleet
// weights 3:1, 2,000 distinct sessions split within 5 points of 75/25.
func TestRingHashHonoursFleetWeights(t *testing.T) {
	heavy := startModelSim(t, "llama-heavy", "llama-2-7b")
	light := startModelSim(t, "llama-light", "llama-2-7b")
	heavyIn, lightIn := heavy.grpcInstance(t), light.grpcInstance(t)
	heavyIn.Weight, lightIn.Weight = 3, 1
	cp := startControlPlane(t, ringHashPolicy, fleetOf(heavyIn, lightIn))
	client := dialXDS(t, cp, "az-1")
	client.waitRoutable(t, "llama-2-7b", hangGuard)

	const sessions = 2000
	counts := client.answeredBy(t, "llama-2-7b", sessions, session)
	report(t, "ring-hash weights=3:1 sessions=%d split=%s:%s",
		sessions, percent(counts[heavy.id], sessions), percent(counts[light.id], sessions))
	if other := sessions - counts[heavy.id] - counts[light.id]; other != 0 {
		t.Errorf("%d sessions answered by neither instance: %v", other, counts)
	}
	if got := float64(counts[heavy.id]) / sessions; math.Abs(got-0.75) > 0.05 {
		t.Errorf("heavy instance got %.1f%% of sessions; want 75%% ± 5", 100*got)
	}

	again := client.answeredBy(t, "llama-2-7b", 50, func(int) []string { return session(7) })
	if len(again) != 1 {
		t.Errorf("one session spread over %d instances: %v; ring hash must pin it", len(again), again)
	}
}

// session is the hash header of the i-th distinct session.
func session(i int) []string {
	return []string{"x-session", fmt.Sprintf("session-%d", i)}
}
