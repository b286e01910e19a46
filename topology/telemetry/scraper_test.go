package telemetry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inferxds/inferxds/cmd/modelsim/sim"
	"github.com/inferxds/inferxds/topology"
	"github.com/inferxds/inferxds/topology/telemetry"
)

// exporter is a real HTTP metrics endpoint on 127.0.0.1 whose page (or
// failure) a test changes while it runs.
type exporter struct {
	*httptest.Server
	page  atomic.Value // string
	mode  atomic.Value // "", "fail" or "hang"
	hangs chan struct{}
}

func startExporter(t *testing.T, page string) *exporter {
	e := &exporter{hangs: make(chan struct{})}
	e.setPage(page)
	e.mode.Store("")
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch e.mode.Load() {
		case "fail":
			http.Error(w, "exporter broken", http.StatusInternalServerError)
		case "hang":
			select {
			case <-r.Context().Done():
			case <-e.hangs:
			}
		default:
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			w.Write([]byte(e.page.Load().(string)))
		}
	}))
	t.Cleanup(func() { close(e.hangs); e.Close() })
	return e
}

func (e *exporter) setPage(page string) { e.page.Store(page) }

func TestScraperKeepsTheLastGoodSampleUntilItIsStale(t *testing.T) {
	e := startExporter(t, exposition(healthyGPU(0, "GPU-aaaa"), healthyGPU(1, "GPU-bbbb")))
	s := telemetry.NewScraper(200*time.Millisecond, 4)
	s.SetTargets([]string{e.URL})
	before := time.Now()
	s.Scrape(context.Background())
	good, ok := s.Samples()[e.URL]
	if !ok || good.At.Before(before) || len(good.Metrics["DCGM_FI_DEV_GPU_UTIL"]) != 2 {
		t.Fatalf("after a good scrape: sample %+v (present %v), errors %v", good, ok, s.Errors())
	}

	for _, mode := range []string{"hang", "fail"} {
		e.mode.Store(mode)
		start := time.Now()
		s.Scrape(context.Background())
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%s: a scrape with a 200ms timeout took %v", mode, took)
		}
		if err := s.Errors()[e.URL]; err == nil {
			t.Errorf("%s: no error recorded", mode)
		}
		if kept := s.Samples()[e.URL]; !kept.At.Equal(good.At) {
			t.Errorf("%s: the last good sample was replaced: %v, want %v", mode, kept.At, good.At)
		}
	}

	fleet := parseFleet(t, strings.ReplaceAll(testFleet, nodeURL, e.URL))
	applied, _ := telemetry.Apply(fleet, s.Samples(), good.At.Add(staleAfter+time.Millisecond), staleAfter)
	if h := applied.Nodes[0].GPUs[0].Health; h != topology.HealthUnknown {
		t.Errorf("GPU health %q from a stale sample, want unknown", h)
	}

	s.SetTargets(nil)
	if len(s.Samples()) != 0 || len(s.Errors()) != 0 {
		t.Errorf("dropped target still has a sample or an error")
	}
}

func TestScraperBoundsConcurrentScrapes(t *testing.T) {
	var inFlight, most, served atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(30 * time.Millisecond) // a slow exporter, so scrapes overlap
		served.Add(1)
		w.Write([]byte("up 1\n"))
	}))
	t.Cleanup(srv.Close)
	var targets []string
	for _, path := range []string{"/a", "/b", "/c", "/d", "/e", "/f"} {
		targets = append(targets, srv.URL+path)
	}
	s := telemetry.NewScraper(time.Second, 2)
	s.SetTargets(targets)
	s.Scrape(context.Background())
	if len(s.Samples()) != 6 || served.Load() != 6 {
		t.Errorf("%d samples, %d requests served; want 6", len(s.Samples()), served.Load())
	}
	if m := most.Load(); m > 2 {
		t.Errorf("%d scrapes in flight at once, want at most 2", m)
	}
}

// TestModelLoadFromARealModelsim: a modelsim instance with one slot and
// two requests reports one running and one waiting, which Apply reads.
func TestModelLoadFromARealModelsim(t *testing.T) {
	srv, err := sim.Start(sim.Config{ID: "a", Models: []string{"llama"}, HTTPAddress: "127.0.0.1:0", Latency: time.Minute, MaxConcurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var requests sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		requests.Wait()
		srv.Close()
	})
	for range 2 {
		requests.Go(func() { sim.Predict(ctx, http.DefaultClient, srv.Ready().HTTPAddress, "llama", "hi") })
	}
	url := "http://" + srv.Ready().HTTPAddress + "/metrics"
	fleet := parseFleet(t, strings.ReplaceAll(testFleet, modelURL, url))
	s := telemetry.NewScraper(time.Second, 1)
	s.SetTargets([]string{url})
	want := topology.Load{Running: 1, QueueDepth: 1, KVCacheUsage: 1}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.Scrape(ctx)
		applied, _ := telemetry.Apply(fleet, s.Samples(), time.Now(), staleAfter)
		got := instance(t, applied, "a").Load
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("load %+v, want %+v (scrape errors %v)", got, want, s.Errors())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
