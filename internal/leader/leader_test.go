package leader

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/internal/hub"
	"github.com/inferxds/inferxds/topology"
)

const (
	ns    = "inferxds-system"
	lease = 2 * time.Second
	// hangGuard bounds every wait on an event; tests never wait on time.
	hangGuard = time.Minute
)

// replica is one control plane's election: its hub and its elector.
type replica struct {
	name    string
	hub     *hub.Hub
	elector *Elector
	stop    context.CancelFunc
	done    chan error
}

func start(t *testing.T, client kubernetes.Interface, name string) *replica {
	t.Helper()
	h := hub.New(nil)
	e, err := New(Config{Client: client, Namespace: ns, Identity: name, LeaseDuration: lease, Hub: h})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{name: name, hub: h, elector: e, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- e.Run(ctx) }()
	t.Cleanup(r.kill)
	return r
}

// kill stops the replica (releasing the lease if it holds it) and waits
// for it to be gone.
func (r *replica) kill() {
	r.stop()
	<-r.done
	r.done <- nil // kill again is a no-op
}

// waitUntil waits for cond, checking it after each signal on changes.
func waitUntil(t *testing.T, what string, changes <-chan struct{}, cond func() bool) {
	t.Helper()
	guard := time.After(hangGuard)
	for !cond() {
		select {
		case <-changes:
		case <-guard:
			t.Fatalf("still waiting for %s", what)
		}
	}
}

// waitLeader waits until one of the replicas leads and returns it.
func waitLeader(t *testing.T, rs ...*replica) *replica {
	t.Helper()
	changes := make(chan struct{}, 1)
	for _, r := range rs {
		ch, stop := r.elector.LeadingChanges()
		t.Cleanup(stop)
		go func() {
			for range ch {
				select {
				case changes <- struct{}{}:
				default:
				}
			}
		}()
	}
	var leader *replica
	waitUntil(t, "a leader", changes, func() bool {
		for _, r := range rs {
			if r.elector.Leading() {
				leader = r
				return true
			}
		}
		return false
	})
	return leader
}

func waitState(t *testing.T, r *replica, want *dr.State) {
	t.Helper()
	ch, stop := r.hub.DR.Subscribe()
	defer stop()
	waitUntil(t, r.name+"'s hub to hold the DR state", ch, func() bool {
		got, _ := r.hub.DR.Get()
		return got != nil && cmp.Equal(got, want)
	})
}

// countingActuator counts the actions it carried out; with started set,
// each signals it started and waits until its context ends.
type countingActuator struct {
	done    atomic.Int32
	started chan struct{}
}

func (c *countingActuator) Do(ctx context.Context, a dr.Action) (topology.Instance, error) {
	if c.started != nil {
		c.started <- struct{}{}
		<-ctx.Done()
		return topology.Instance{}, ctx.Err()
	}
	c.done.Add(1)
	return topology.Instance{Name: a.Instance}, nil
}

var wake = dr.Action{Kind: dr.ActionWake, Model: "llama", Instance: "llama-warm-1", Tier: topology.TierHot}

func incidentState(id string) *dr.State {
	at := time.Date(2026, 12, 2, 11, 0, 0, 0, time.UTC)
	return &dr.State{
		Instances: []dr.InstanceState{{Name: "llama-1", Model: "llama", Health: topology.HealthUnhealthy}},
		Incidents: []dr.Incident{{ID: id, Model: "llama", Instance: "llama-1", Failure: dr.FailureProcessCrash, DetectedAt: at, DrainedAt: at}},
	}
}

func TestOnlyTheLeaderActuates(t *testing.T) {
	client := fake.NewClientset()
	a, b := start(t, client, "replica-a"), start(t, client, "replica-b")
	leader := waitLeader(t, a, b)
	follower := map[*replica]*replica{a: b, b: a}[leader]
	if follower.elector.Leading() {
		t.Fatal("both replicas lead")
	}
	acts := map[*replica]*countingActuator{a: {}, b: {}}
	for r, act := range acts {
		_, err := r.elector.Guard(act).Do(context.Background(), wake)
		if leading := r == leader; leading != (err == nil) {
			t.Errorf("%s (leading %v): Do answered %v", r.name, leading, err)
		}
	}
	if acts[leader].done.Load() != 1 || acts[follower].done.Load() != 0 {
		t.Errorf("leader carried out %d actions, follower %d; want 1 and 0", acts[leader].done.Load(), acts[follower].done.Load())
	}
	_, err := follower.elector.Guard(acts[follower]).Do(context.Background(), wake)
	if !errors.Is(err, ErrNotLeading) {
		t.Errorf("follower's Do: %v, want ErrNotLeading", err)
	}
}

func TestEveryReplicaServesTheLeadersStateAndANewLeaderContinuesIt(t *testing.T) {
	client := fake.NewClientset()
	a, b := start(t, client, "replica-a"), start(t, client, "replica-b")
	leader := waitLeader(t, a, b)
	follower := map[*replica]*replica{a: b, b: a}[leader]

	first := incidentState("llama/llama-1/1")
	leader.hub.DR.Publish(first)
	waitState(t, follower, first)

	began := time.Now()
	leader.kill()
	if waitLeader(t, follower) != follower {
		t.Fatal("the follower did not take over")
	}
	t.Logf("hand-over after the leader stopped: %v", time.Since(began))
	if got, _ := follower.hub.DR.Get(); !cmp.Equal(got, first) {
		t.Fatalf("the new leader did not start from the state written last (-want +got):\n%s", cmp.Diff(first, got))
	}

	// The new leader's next state is written for the next replica.
	next := incidentState("llama/llama-1/1")
	next.Incidents[0].Replacement = "llama-warm-1"
	follower.hub.DR.Publish(next)
	third := start(t, client, "replica-c")
	waitState(t, third, next)
	if third.elector.Leading() {
		t.Error("a replica that joined later leads beside the leader")
	}
}

func TestLosingTheLeaseCancelsActuationAtOnce(t *testing.T) {
	client := fake.NewClientset()
	var failing atomic.Bool // the API server stops answering lease updates
	client.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		return failing.Load(), nil, errors.New("API server unreachable")
	})
	r := start(t, client, "replica-a")
	waitLeader(t, r)
	if g := testutil.ToFloat64(r.elector.leadingGauge); g != 1 {
		t.Errorf("inferxds_leader %v while leading, want 1", g)
	}

	blocked := &countingActuator{started: make(chan struct{}, 1)}
	result := make(chan error, 1)
	go func() {
		_, err := r.elector.Guard(blocked).Do(context.Background(), wake)
		result <- err
	}()
	<-blocked.started
	failing.Store(true)
	select {
	case err := <-result:
		if !errors.Is(err, ErrNotLeading) {
			t.Errorf("in-flight action ended with %v, want ErrNotLeading", err)
		}
	case <-time.After(hangGuard):
		t.Fatal("the in-flight action was not cancelled when the lease was lost")
	}
	if r.elector.Leading() {
		t.Error("still leading after the lease was lost")
	}
	if _, err := r.elector.Guard(&countingActuator{}).Do(context.Background(), wake); !errors.Is(err, ErrNotLeading) {
		t.Errorf("an action after the lease was lost: %v, want ErrNotLeading", err)
	}
	ended, stop := r.elector.LeadingChanges()
	defer stop()
	waitUntil(t, "the term to end", ended, func() bool { leading, _ := r.elector.leading.Get(); return !leading })
	if g := testutil.ToFloat64(r.elector.leadingGauge); g != 0 {
		t.Errorf("inferxds_leader %v after the lease was lost, want 0", g)
	}
	failing.Store(false)
	waitLeader(t, r) // and it takes part again once the API answers
}

type reportingActuator struct {
	countingActuator
	failures chan dr.Failure
}

func (r *reportingActuator) Failures() <-chan dr.Failure { return r.failures }

func TestAGuardedActuatorStillReportsFailures(t *testing.T) {
	r := start(t, fake.NewClientset(), "replica-a")
	act := &reportingActuator{failures: make(chan dr.Failure)}
	reporter, ok := r.elector.Guard(act).(dr.FailureReporter)
	if !ok || reporter.Failures() != act.Failures() {
		t.Fatal("the guarded actuator does not hand on the actuator's failures")
	}
	if _, ok := r.elector.Guard(&countingActuator{}).(dr.FailureReporter); ok {
		t.Error("an actuator that reports no failures became a FailureReporter when guarded")
	}
}

// A replica that loses the lease goes back to serving the state the
// leader wrote, not what it decided but could not publish.
func TestALeaderThatLosesTheLeaseServesTheWrittenStateAgain(t *testing.T) {
	client := fake.NewClientset()
	var apiDown atomic.Bool
	for _, resource := range []string{"leases", "configmaps"} {
		client.PrependReactor("*", resource, func(a k8stesting.Action) (bool, runtime.Object, error) {
			return apiDown.Load() && a.GetVerb() != "get" && a.GetVerb() != "list" && a.GetVerb() != "watch", nil, errors.New("API server unreachable")
		})
	}
	r := start(t, client, "replica-a")
	waitLeader(t, r)
	written := incidentState("llama/llama-1/1")
	r.hub.DR.Publish(written)
	follower := start(t, client, "replica-b")
	waitState(t, follower, written)

	apiDown.Store(true)
	unwritten := incidentState("llama/llama-1/1")
	unwritten.Incidents[0].Replacement = "llama-warm-1"
	r.hub.DR.Publish(unwritten)
	changes, stop := r.elector.LeadingChanges()
	defer stop()
	waitUntil(t, "the lease to be lost", changes, func() bool { return !r.elector.Leading() })
	waitState(t, r, written)
}
