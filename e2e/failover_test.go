package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/inferxds/inferxds/topology"
)

const failoverModel = "llama-2-7b"

// failoverPolicy leaves retries and outlier detection at their defaults:
// the drill checks what an operator gets without tuning.
const failoverPolicy = `models:
  - name: llama-2-7b
    priority: critical
    hotStandby: 1
    warmStandby: 0
    coldStandby: 0
    rto: "10s"
    rpo: "0"
`

// Timing of the failover drill.
const (
	failoverCallers = 8
	warmupAnswers   = 200
	// healthCheckDelay is how long after the crash the fleet file marks the
	// primary unhealthy, as a health checker polling at this interval would;
	// the drill waits longer if the standby has not answered by then.
	healthCheckDelay = time.Second
	afterUpdate      = time.Second
	// simLatency keeps requests in flight when the primary dies.
	simLatency = "2ms"
)

// TestHotStandbyFailover: the primary (az-1) of a model with a hot standby
// (az-2) is SIGKILLed under load; gRPC clients move to the standby through
// retries and priority failover before the fleet file says anything, and no
// request fails.
func TestHotStandbyFailover(t *testing.T) {
	primary := startModelSim(t, "llama-primary", failoverModel, "--latency", simLatency)
	standby := startModelSim(t, "llama-standby", failoverModel, "--latency", simLatency)
	cp := startControlPlane(t, failoverPolicy, failoverFleet(primary.grpcInstance(t), standby.grpcInstance(t), topology.HealthServing))
	client := dialXDS(t, cp, "az-1")
	client.waitRoutable(t, failoverModel, hangGuard)

	call := func() (string, error) { return client.call(context.Background(), failoverModel) }
	after := failoverFleet(primary.grpcInstance(t), standby.grpcInstance(t), topology.HealthUnhealthy)
	failoverDrill(t, "grpc-xds", call, primary, standby, func() { cp.writeFleet(t, after) })
}

// failoverFleet places primary in az-1 with the given health and standby as
// a hot standby in az-2.
func failoverFleet(primary, standby topology.Instance, primaryHealth topology.Health) topology.Fleet {
	primary.Health = primaryHealth
	standby.Zone = "az-2"
	standby.Role = topology.RoleStandby
	return fleetOf(primary, standby)
}

// failoverDrill runs the crash under load through call and checks the
// outcomes; markUnhealthy rewrites the fleet file.
func failoverDrill(t *testing.T, path string, call func() (string, error), primary, standby *modelSim, markUnhealthy func()) {
	t.Helper()
	l := startLoad(call, failoverCallers)
	warmedUp := func(outcomes []outcome) bool { return answersFrom(outcomes, primary.id) >= warmupAnswers }
	if !l.waitFor(hangGuard, warmedUp) {
		outcomes := l.stop()
		t.Fatalf("primary did not answer %d requests during warm-up; %d outcomes, errors: %v",
			warmupAnswers, len(outcomes), errorCounts(outcomes))
	}

	killedAt := time.Now()
	primary.proc.kill(t)
	time.Sleep(time.Until(killedAt.Add(healthCheckDelay)))
	// The fleet file changes only once the standby has answered, so "the
	// client moved before the fleet said anything" is an observed order of
	// events rather than a race against the health checker's timer.
	movedAlone := l.waitFor(hangGuard, func(outcomes []outcome) bool {
		n, _ := answersAfter(outcomes, standby.id, killedAt)
		return n > 0
	})
	fleetUpdatedAt := time.Now()
	markUnhealthy()
	time.Sleep(afterUpdate)
	outcomes := l.stop()

	report(t, "failover path=%s fleet-update-at=%v", path, fleetUpdatedAt.Sub(killedAt).Round(time.Millisecond))
	if !movedAlone {
		t.Errorf("the standby answered nothing in the %v after the crash, before the fleet file changed", hangGuard)
	}
	checkFailover(t, path, outcomes, killedAt, primary.id, standby.id)
}

func answersFrom(outcomes []outcome, id string) int {
	n := 0
	for _, o := range outcomes {
		if o.err == nil && o.id == id {
			n++
		}
	}
	return n
}

func checkFailover(t *testing.T, path string, outcomes []outcome, killedAt time.Time, primaryID, standbyID string) {
	t.Helper()
	var failed, standbyBeforeKill int
	var firstStandby time.Duration = -1
	for _, o := range outcomes {
		switch {
		case o.err != nil:
			failed++
		case o.at.Before(killedAt) && o.id != primaryID:
			standbyBeforeKill++
		case !o.at.Before(killedAt) && o.id == standbyID && (firstStandby < 0 || o.at.Sub(killedAt) < firstStandby):
			firstStandby = o.at.Sub(killedAt)
		}
	}
	report(t, "failover path=%s first-standby-answer=%v failed=%d requests=%d",
		path, firstStandby.Round(time.Millisecond), failed, len(outcomes))
	if failed > 0 {
		t.Errorf("%d of %d requests failed; errors: %v", failed, len(outcomes), errorCounts(outcomes))
	}
	if standbyBeforeKill > 0 {
		t.Errorf("%d requests answered by another instance than the primary while it was up", standbyBeforeKill)
	}
	if firstStandby < 0 {
		t.Fatalf("the standby never answered after the primary was killed")
	}
	last := outcomes[len(outcomes)-1]
	if last.err != nil || last.id != standbyID {
		t.Errorf("last request: answered by %q, err %v; want the standby %s", last.id, last.err, standbyID)
	}
}

// errorCounts groups failed outcomes by error text.
func errorCounts(outcomes []outcome) map[string]int {
	counts := map[string]int{}
	for _, o := range outcomes {
		if o.err != nil {
			counts[o.err.Error()]++
		}
	}
	return counts
}
