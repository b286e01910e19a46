package xds

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology"
)

// countingTranslate wraps testTranslate, counts calls per group and can be
// made to fail.
type countingTranslate struct {
	mu    sync.Mutex
	calls map[string]int
	fail  error
}

func (c *countingTranslate) translate(f *topology.Fleet, p *drpolicy.Policy, group string) (*snapshot.Resources, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[group]++
	if c.fail != nil {
		return nil, c.fail
	}
	return testTranslate(f, p, group)
}

func (c *countingTranslate) count(group string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[group]
}

func (c *countingTranslate) setFail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail = err
}

func startController(t *testing.T, srv *Server, tr *countingTranslate) *Controller {
	t.Helper()
	c := NewController(srv, ControllerConfig{Translate: tr.translate, Holdoff: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond})
	runController(t, c)
	return c
}

// runController runs c until the test ends.
func runController(t *testing.T, c *Controller) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// waitFor waits, for at most 5 s, for a round after which ok holds.
func waitFor(t *testing.T, c *Controller, ok func(ControllerStatus) bool) ControllerStatus {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		updated := c.Updated()
		if s := c.Status(); ok(s) {
			return s
		}
		select {
		case <-updated:
		case <-timeout:
			t.Fatalf("controller status never matched: %+v", c.Status())
		}
	}
}

func generation(n uint64) func(ControllerStatus) bool {
	return func(s ControllerStatus) bool { return s.Generation >= n && !s.Pending }
}

func TestControllerCoalescesABurst(t *testing.T) {
	srv := NewServer(ServerConfig{})
	tr := &countingTranslate{}
	c := startController(t, srv, tr)
	c.UpdatePolicy(&drpolicy.Policy{})

	fleet := testFleet()
	for i := range 50 {
		f := testFleet()
		f.Instances[0].Weight = uint32(i + 1)
		c.UpdateFleet(f)
		fleet = f
	}
	s := waitFor(t, c, generation(1))

	if s.Generation > 2 || tr.count("az-1") > 2 {
		t.Errorf("50 updates gave %d rounds and %d translations for az-1, want 1 or 2", s.Generation, tr.count("az-1"))
	}
	got, _ := srv.Versions("az-1")
	if want := mustTranslate(t, fleet, "az-1").Versions; got != want {
		t.Errorf("az-1 serves %+v, want the last update's %+v", got, want)
	}
	for _, group := range []string{"", "az-1", "az-2"} {
		if _, ok := srv.Versions(group); !ok {
			t.Errorf("group %q has no snapshot", group)
		}
	}
}

func TestControllerDropsEqualInputs(t *testing.T) {
	srv := NewServer(ServerConfig{})
	tr := &countingTranslate{}
	c := startController(t, srv, tr)
	c.UpdatePolicy(&drpolicy.Policy{})
	c.UpdateFleet(testFleet())
	waitFor(t, c, generation(1))

	c.UpdateFleet(testFleet())
	c.UpdatePolicy(&drpolicy.Policy{})
	if s := c.Status(); s.Pending {
		t.Errorf("equal inputs left a change pending: %+v", s)
	}
	if got := tr.count("az-1"); got != 1 {
		t.Errorf("az-1 translated %d times, want 1", got)
	}
}

func TestControllerKeepsLastSnapshotWhenTranslateFails(t *testing.T) {
	srv := NewServer(ServerConfig{})
	tr := &countingTranslate{}
	c := startController(t, srv, tr)
	c.UpdatePolicy(&drpolicy.Policy{})
	c.UpdateFleet(testFleet())
	waitFor(t, c, generation(1))
	good, _ := srv.Versions("az-1")

	errBad := errors.New("model m9: no such tenant")
	tr.setFail(errBad)
	changed := testFleet()
	changed.Instances[0].Weight = 7
	c.UpdateFleet(changed)
	s := waitFor(t, c, generation(2))

	if got, _ := srv.Versions("az-1"); got != good {
		t.Errorf("az-1 serves %+v after a failed translation, want the last good %+v", got, good)
	}
	if len(s.Failing) != 3 { // "", az-1, az-2
		t.Errorf("Failing = %v, want the three groups", s.Failing)
	}
	for _, e := range s.Failing {
		if !errors.Is(e.Err, errBad) || len(e.Inputs) != 1 || e.Inputs[0] != InputFleet {
			t.Errorf("group %q failing with %v (inputs %v), want the translate error caused by the fleet", e.Group, e.Err, e.Inputs)
		}
	}
	if got := testutil.ToFloat64(srv.metrics.snapshotRejected.WithLabelValues(stageTranslate)); got != 3 {
		t.Errorf("snapshot_rejected_total{stage=translate} = %v, want 3", got)
	}

	tr.setFail(nil)
	changed = testFleet()
	changed.Instances[0].Weight = 8
	c.UpdateFleet(changed)
	if failing := waitFor(t, c, generation(3)).Failing; len(failing) != 0 {
		t.Errorf("Failing after recovery = %v, want none", failing)
	}
}

func TestControllerTranslatesForANewlyConnectedZone(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{})
	tr := &countingTranslate{}
	c := startController(t, srv, tr)
	c.UpdatePolicy(&drpolicy.Policy{})
	c.UpdateFleet(testFleet())
	waitFor(t, c, generation(1))

	// az-9 has no instances and is not in the fleet; its proxies still need
	// a snapshot (every endpoint remote).
	client := openSotW(t, addr)
	client.send(t, &discoveryv3.DiscoveryRequest{Node: zoneNode("proxy-9", "az-9"), TypeUrl: resource.EndpointType, ResourceNames: []string{"m1"}})
	cla := endpointsIn(t, next(t, client.recv))["m1"]
	if cla == nil || len(cla.Endpoints) != 2 {
		t.Fatalf("az-9 got %v, want m1 with both zones' endpoints", cla)
	}
	if got := tr.count("az-1"); got != 1 {
		t.Errorf("a new zone re-translated az-1 (%d calls), want only az-9 translated", got)
	}
}

func TestControllerRecordsSourceErrors(t *testing.T) {
	c := NewController(NewServer(ServerConfig{}), ControllerConfig{Translate: testTranslate})
	c.ReportSourceError("topology/file", errors.New("fleet.yaml:3: unknown field"))
	c.ReportSourceError("drpolicy", errors.New("policy.yaml:9: bad duration"))
	c.ReportSourceError("drpolicy", nil)

	s := c.Status()
	if len(s.SourceErrors) != 1 || s.SourceErrors["topology/file"].Err == nil {
		t.Errorf("SourceErrors = %v, want only topology/file", s.SourceErrors)
	}
	if got := testutil.ToFloat64(c.sourceErrors.WithLabelValues("drpolicy")); got != 0 {
		t.Errorf("source_error{source=drpolicy} = %v after it cleared, want 0", got)
	}
}
