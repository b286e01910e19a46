package telemetry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferxds/inferxds/topology"
	"github.com/inferxds/inferxds/topology/telemetry/weights"
)

// Defaults for Config's zero fields.
const (
	DefaultInterval      = 5 * time.Second
	DefaultTimeout       = 2 * time.Second
	DefaultStaleRounds   = 3 // StaleAfter = DefaultStaleRounds × Interval
	DefaultMaxConcurrent = 16
)

// Config tunes a Runner. Zero fields take the defaults.
type Config struct {
	// Interval is the time between scrape rounds.
	Interval time.Duration
	// Timeout cuts off one scrape; at most Interval.
	Timeout time.Duration
	// StaleAfter is the age at which a sample no longer counts (telemetry
	// becomes unknown); at least Interval.
	StaleAfter time.Duration
	// MaxConcurrent bounds the scrapes in flight.
	MaxConcurrent int
	// Weights tunes telemetry-driven endpoint weights.
	Weights weights.Config
	Logger  *slog.Logger
	// Registry gets the runner's metrics; nil leaves them unregistered.
	Registry prometheus.Registerer
}

func (c Config) withDefaults() Config {
	c.Interval = cmp.Or(c.Interval, DefaultInterval)
	c.Timeout = cmp.Or(c.Timeout, min(DefaultTimeout, c.Interval))
	c.StaleAfter = cmp.Or(c.StaleAfter, DefaultStaleRounds*c.Interval)
	c.MaxConcurrent = cmp.Or(c.MaxConcurrent, DefaultMaxConcurrent)
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	return c
}

// check reports every setting out of range (after defaults).
func (c Config) check() error {
	var errs []error
	if c.Interval < 0 || c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("telemetry interval %v and timeout %v must not be negative", c.Interval, c.Timeout))
	}
	if c.Timeout > c.Interval {
		errs = append(errs, fmt.Errorf("telemetry timeout %v exceeds the scrape interval %v", c.Timeout, c.Interval))
	}
	if c.StaleAfter < c.Interval {
		errs = append(errs, fmt.Errorf("telemetry stale-after %v is shorter than the scrape interval %v", c.StaleAfter, c.Interval))
	}
	if c.MaxConcurrent < 0 {
		errs = append(errs, fmt.Errorf("telemetry max concurrent scrapes must not be negative (got %d)", c.MaxConcurrent))
	}
	return errors.Join(errs...)
}

// Runner keeps a fleet's telemetry current: it scrapes the fleet's targets
// every Interval and, after each round and each new fleet from the source,
// publishes the fleet with the telemetry applied (Apply, then weights). It
// logs GPU faults and recoveries and failing targets, and exports
// inferxds_gpu_drains_total{reason} and inferxds_telemetry_targets{state}.
type Runner struct {
	cfg     Config
	publish func(*topology.Fleet)
	scraper *Scraper
	weigher *weights.Weigher
	wake    chan struct{}
	drains  *prometheus.CounterVec
	states  *prometheus.GaugeVec

	mu      sync.Mutex
	fleet   *topology.Fleet  // latest from the source; nil before the first
	targets []string         // Targets(fleet)
	faults  map[gpuKey]Fault // in force at the last publish
	failing map[string]bool  // targets whose failure was logged
	weighed map[string]bool  // instances the weigher holds state for
}

// gpuKey names a GPU in the fleet.
type gpuKey struct {
	node  string
	index int
}

// Target states, the values of inferxds_telemetry_targets' state label.
const (
	StateUp      = "up"      // the latest scrape succeeded
	StateFailing = "failing" // the latest scrape failed; the last good sample is still fresh
	StateStale   = "stale"   // no good sample within StaleAfter
)

// NewRunner returns a runner that hands each fleet it assembles to
// publish; publish must not modify it. Call UpdateFleet with the source's
// fleets and Run to scrape.
func NewRunner(cfg Config, publish func(*topology.Fleet)) (*Runner, error) {
	cfg = cfg.withDefaults()
	weigher, err := weights.NewWeigher(cfg.Weights)
	if err := errors.Join(cfg.check(), err); err != nil {
		return nil, err
	}
	r := &Runner{
		cfg:     cfg,
		publish: publish,
		scraper: NewScraper(cfg.Timeout, cfg.MaxConcurrent),
		weigher: weigher,
		wake:    make(chan struct{}, 1),
		drains: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inferxds_gpu_drains_total", Help: "GPUs taken out of service (with their instances), by reason: xid, ecc, lost.",
		}, []string{"reason"}),
		states: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "inferxds_telemetry_targets", Help: "Telemetry scrape targets by state: up, failing (last good sample still fresh), stale.",
		}, []string{"state"}),
		faults:  map[gpuKey]Fault{},
		failing: map[string]bool{},
		weighed: map[string]bool{},
	}
	if cfg.Registry != nil {
		if err := errors.Join(cfg.Registry.Register(r.drains), cfg.Registry.Register(r.states)); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// UpdateFleet makes f the source's latest fleet and publishes it with the
// telemetry at hand; new scrape targets are scraped at once. The runner
// does not modify f.
func (r *Runner) UpdateFleet(f *topology.Fleet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fleet = f
	if targets := Targets(f); !slices.Equal(targets, r.targets) {
		r.targets = targets
		r.scraper.SetTargets(targets)
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
	r.publishLocked(time.Now())
}

// Run scrapes every Interval (and at once when targets change) until ctx
// ends.
func (r *Runner) Run(ctx context.Context) {
	ticker := time.NewTicker(r.cfg.Interval)
	defer ticker.Stop()
	for {
		r.scraper.Scrape(ctx)
		if ctx.Err() != nil {
			return
		}
		r.afterRound(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-r.wake:
		}
	}
}

func (r *Runner) afterRound(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reportTargets(now)
	r.publishLocked(now)
}

func (r *Runner) publishLocked(now time.Time) {
	if r.fleet == nil {
		return
	}
	samples := r.scraper.Samples()
	applied, faults := Apply(r.fleet, samples, now, r.cfg.StaleAfter)
	r.weigh(applied, Signals(applied, samples, now, r.cfg.StaleAfter), now)
	r.reportFaults(faults)
	r.publish(applied)
}

// weigh sets the weights telemetry drives and drops the weigher's state of
// instances it no longer weighs.
func (r *Runner) weigh(f *topology.Fleet, signals map[string]weights.Signals, now time.Time) {
	for i := range f.Instances {
		in := &f.Instances[i]
		if s, ok := signals[in.Name]; ok {
			in.Weight = r.weigher.Update(now, in.Name, s)
			r.weighed[in.Name] = true
		}
	}
	for name := range r.weighed {
		if _, ok := signals[name]; !ok {
			r.weigher.Forget(name)
			delete(r.weighed, name)
		}
	}
}

// reportFaults logs and counts GPUs newly taken out of service and logs
// those back in service.
func (r *Runner) reportFaults(faults []Fault) {
	now := make(map[gpuKey]Fault, len(faults))
	for _, f := range faults {
		key := gpuKey{f.Node, f.GPU}
		now[key] = f
		if before, ok := r.faults[key]; ok && before.Reason == f.Reason && before.XID == f.XID {
			continue
		}
		r.drains.WithLabelValues(string(f.Reason)).Inc()
		r.cfg.Logger.Warn("GPU fault: draining its instances", "node", f.Node, "gpu", f.GPU, "uuid", f.UUID,
			"reason", f.Reason, "xid", f.XID, "instances", f.Instances)
	}
	for key, f := range r.faults {
		if _, ok := now[key]; !ok {
			r.cfg.Logger.Info("GPU back in service", "node", f.Node, "gpu", f.GPU, "uuid", f.UUID)
		}
	}
	r.faults = now
}

// reportTargets sets the target-state gauge and logs targets that start or
// stop failing.
func (r *Runner) reportTargets(now time.Time) {
	samples, errs := r.scraper.Samples(), r.scraper.Errors()
	maps.DeleteFunc(r.failing, func(url string, _ bool) bool { return !slices.Contains(r.targets, url) })
	counts := map[string]float64{StateUp: 0, StateFailing: 0, StateStale: 0}
	for _, url := range r.targets {
		err := errs[url]
		switch _, ok := fresh(samples, url, now, r.cfg.StaleAfter); {
		case !ok:
			counts[StateStale]++
		case err != nil:
			counts[StateFailing]++
		default:
			counts[StateUp]++
		}
		r.logFailing(url, err)
	}
	for state, n := range counts {
		r.states.WithLabelValues(state).Set(n)
	}
}

func (r *Runner) logFailing(url string, err error) {
	switch {
	case err != nil && !r.failing[url]:
		r.failing[url] = true
		r.cfg.Logger.Warn("telemetry scrape failing", "target", url, "error", err)
	case err == nil && r.failing[url]:
		delete(r.failing, url)
		r.cfg.Logger.Info("telemetry scrape recovered", "target", url)
	}
}
