package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/internal/filewatch"
	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology"
)

// dropInstances is the example fleet without the instances of models.
func dropInstances(t *testing.T, fleetFile string, models ...string) string {
	t.Helper()
	data, err := os.ReadFile(fleetFile)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for line := range strings.Lines(string(data)) {
		if !slices.ContainsFunc(models, func(m string) bool { return strings.Contains(line, "model: "+m+",") }) {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "")
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// servedEndpointCounts lists "cluster×count" for what az-1's proxies receive.
func servedEndpointCounts(t *testing.T, s *served) string {
	t.Helper()
	out, err := s.dump(t, "az-1", true)
	if err != nil {
		t.Fatal(err)
	}
	var counts []string
	for _, cla := range parseDump(t, []byte(out))["endpoints"].Resources {
		n := 0
		localities, _ := cla["endpoints"].([]any)
		for _, l := range localities {
			lbs, _ := l.(map[string]any)["lbEndpoints"].([]any)
			n += len(lbs)
		}
		counts = append(counts, fmt.Sprintf("%s×%d", cla["clusterName"], n))
	}
	slices.Sort(counts)
	return strings.Join(counts, ",")
}

// TestServeRefusesAMassRemovalUntilAnnotated: a fleet edit that removes two
// of three models is refused (log, /status, metric) and proxies keep every
// endpoint; the same edit with the annotation is applied.
func TestServeRefusesAMassRemovalUntilAnnotated(t *testing.T) {
	policyDir, fleetFile := copyExamples(t)
	s := startServe(t, "--policy-dir", policyDir, "--fleet", fleetFile)
	all := servedEndpointCounts(t, s)

	shrunk := dropInstances(t, fleetFile, "mistral-7b", "gpt-4-8b")
	writeFile(t, fleetFile, shrunk)
	waitFor(t, 30*time.Second, func() error {
		if status := s.get(t, "/status"); !strings.Contains(status, "change refused: it removes 2 of 3 models") {
			return fmt.Errorf("/status does not report the refusal:\n%s", status)
		}
		if m := s.get(t, "/metrics"); !strings.Contains(m, `inferxds_source_change_refused_total{reason="models_removed",source="fleet"} 1`) {
			return errors.New("refusal not counted in inferxds_source_change_refused_total")
		}
		return nil
	})
	if !lineHas(s.logs.String(), "source error", "change refused") {
		t.Errorf("refusal not logged:\n%s", s.logs)
	}
	if got := servedEndpointCounts(t, s); got != all {
		t.Fatalf("endpoints after a refused removal = %s, want all of %s", got, all)
	}

	writeFile(t, fleetFile, "# inferxds: allow-mass-removal\n"+shrunk)
	waitFor(t, 30*time.Second, func() error {
		if got := servedEndpointCounts(t, s); !strings.Contains(got, "mistral-7b×0") || !strings.Contains(got, "gpt-4-8b×0") {
			return fmt.Errorf("annotated removal not applied: endpoints %s", got)
		}
		return nil
	})
	if !lineHas(s.logs.String(), "level=WARN", `policy model \"mistral-7b\" has no instance in the fleet`) {
		t.Errorf("no warning about policy models without instances:\n%s", s.logs)
	}
}

// TestServeRefusesAVanishedPolicyFile: with dr-policy.yaml gone, tenants.yaml
// alone is a valid policy of no models; it is refused, not served.
func TestServeRefusesAVanishedPolicyFile(t *testing.T) {
	policyDir, fleetFile := copyExamples(t)
	s := startServe(t, "--policy-dir", policyDir, "--fleet", fleetFile)
	all := servedEndpointCounts(t, s)
	if err := os.Remove(filepath.Join(policyDir, "dr-policy.yaml")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() error {
		if status := s.get(t, "/status"); !strings.Contains(status, "policy file dr-policy.yaml is gone") {
			return fmt.Errorf("/status does not report the missing file:\n%s", status)
		}
		return nil
	})
	if got := servedEndpointCounts(t, s); got != all {
		t.Fatalf("endpoints = %s, want all of %s", got, all)
	}
}

// TestHalfWrittenExamplesNeverReachTranslation replays every line prefix
// of each example file as a file caught half-written, through the watch,
// the guard and translation as serve wires them: no prefix is passed on,
// so no zone ever loses a route or endpoint; the full file again is.
func TestHalfWrittenExamplesNeverReachTranslation(t *testing.T) {
	policyDir, fleetFile := copyExamples(t)
	h := startHarness(t, policyDir, fleetFile)
	for _, file := range []string{fleetFile, filepath.Join(policyDir, "dr-policy.yaml"), filepath.Join(policyDir, "tenants.yaml")} {
		full, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, prefix := range linePrefixes(string(full)) {
			if err := os.WriteFile(file, []byte(prefix), 0o644); err != nil {
				t.Fatal(err)
			}
			h.awaitHeld(t, file)
			if err := os.WriteFile(file, full, 0o644); err != nil {
				t.Fatal(err)
			}
			h.awaitLoad(t)
		}
	}
	if h.loads == 0 {
		t.Fatal("nothing was ever passed on; the replay proved nothing")
	}
}

func linePrefixes(text string) []string {
	var out []string
	for i := range len(text) {
		if text[i] == '\n' && i+1 < len(text) {
			out = append(out, text[:i+1])
		}
	}
	return append(out, "")
}

// harness wires the sources to translation as serve does, and checks every
// translation against the full example's routes and endpoints.
type harness struct {
	events chan string // "held <file>" or "load"
	loads  int
}

func startHarness(t *testing.T, policyDir, fleetFile string) *harness {
	t.Helper()
	guard, err := newInputGuard(config{MaxRemovalShare: 0.5}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	fleet, pol, err := sources{policyDir: policyDir, fleetFile: fleetFile}.load()
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(guard.admitFleet(fleet, fleetFile), guard.admitPolicy(pol, policyDir)); err != nil {
		t.Fatal(err)
	}
	want := servedResources(t, fleet, pol)
	h := &harness{events: make(chan string, 1024)}
	var mu sync.Mutex // the two watches' callbacks share fleet and pol
	check := func(f *topology.Fleet, p *drpolicy.Policy) {
		if got := servedResources(t, f, p); !hasAll(got, want) {
			t.Errorf("a zone lost routes or endpoints: serves %v, had %v", got, want)
		}
		h.events <- "load"
	}
	opts := func() filewatch.Options {
		return filewatch.Options{Debounce: 5 * time.Millisecond, Poll: time.Hour, Hold: time.Hour, Errors: func(err error) {
			h.events <- "held " + err.Error()
		}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	t.Cleanup(func() { cancel(); <-done; <-done })
	go func() {
		defer func() { done <- struct{}{} }()
		_ = topology.WatchFile(ctx, fleetFile, opts(), func(f *topology.Fleet, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err == nil && guard.admitFleet(f, fleetFile) == nil {
				fleet = f
				check(fleet, pol)
				return
			}
			h.events <- fmt.Sprintf("held fleet refused: %v", err)
		})
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		_ = drpolicy.Watch(ctx, policyDir, opts(), func(p *drpolicy.Policy, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err == nil && guard.admitPolicy(p, policyDir) == nil {
				pol = p
				check(fleet, pol)
				return
			}
			h.events <- fmt.Sprintf("held policy refused: %v", err)
		})
	}()
	h.awaitLoad(t)
	h.awaitLoad(t)
	return h
}

// servedResources lists "zone cluster endpoint" for every endpoint and "zone route
// cluster" for every route every zone would receive.
func servedResources(t *testing.T, f *topology.Fleet, p *drpolicy.Policy) []string {
	t.Helper()
	var out []string
	for _, zone := range groupsOf(f) {
		r, err := snapshot.Translate(f, p, zone)
		if err != nil {
			t.Fatal(err)
		}
		for _, cla := range r.Endpoints {
			for _, l := range cla.GetEndpoints() {
				for _, e := range l.GetLbEndpoints() {
					out = append(out, fmt.Sprintf("%s %s %v", zone, cla.GetClusterName(), e.GetEndpoint().GetAddress()))
				}
			}
		}
		for _, rc := range r.Routes {
			for _, vh := range rc.GetVirtualHosts() {
				for _, route := range vh.GetRoutes() {
					out = append(out, fmt.Sprintf("%s route %s", zone, route.GetRoute().GetCluster()))
				}
			}
		}
	}
	return out
}

// awaitHeld waits for a held or refused change, counting the loads on the
// way (the file as it was, or the empty start of a write).
func (h *harness) awaitHeld(t *testing.T, file string) {
	t.Helper()
	h.await(t, false, "a prefix of "+file+" was neither held nor refused")
}

// awaitLoad waits for a change to be passed on.
func (h *harness) awaitLoad(t *testing.T) {
	t.Helper()
	h.await(t, true, "the restored file was not passed on")
}

func (h *harness) await(t *testing.T, load bool, failure string) {
	t.Helper()
	for {
		select {
		case ev := <-h.events:
			if ev == "load" {
				h.loads++
			}
			if (ev == "load") == load {
				return
			}
		case <-time.After(30 * time.Second):
			t.Fatal(failure + " within 30s")
		}
	}
}

func hasAll(got, want []string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}
