package weights

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// The noise harness: endpoints at steady loads spread over the whole range,
// a third of them exactly on a level boundary, scraped every 5 s of virtual
// time with ±5% noise (utilization ±5 points, KV cache ±0.05, headroom and
// queue depth ±5% of their value). After an hour, 10% of the endpoints go
// from 30% to 85% utilization.
const (
	simScrape      = 5 * time.Second
	simMinutes     = 60
	simNoise       = 0.05
	simShiftFrom   = 30
	simShiftTo     = 85
	simMaxShiftLag = 60 // scrapes before the harness gives up on a shift
)

type simLoad struct {
	util, headroom, kv, queue float64
}

type simResult struct {
	// pushes counts scrape rounds in which any weight changed, changes the
	// weight changes, both over the steady hour after the first round.
	pushes, changes int
	// shiftDelay is the scrapes after the shift until every shifted
	// endpoint published a loaded weight; -1 if that never happened.
	shiftDelay int
	updates    int
}

// steadyLoads spreads n endpoints over the load range: every tenth is a
// shift endpoint at 30% utilization; three in ten sit exactly on a level
// boundary of utilization, two on one of KV-cache use; two are bound by
// queue depth; two are random mixes.
func steadyLoads(rng *rand.Rand, levels, n int) []simLoad {
	loads := make([]simLoad, n)
	for i := range loads {
		edge := float64(i/10%(levels-1)+1) / float64(levels)
		switch i % 10 {
		case 0:
			loads[i] = simLoad{util: simShiftFrom, headroom: 0.08, kv: 0.2}
		case 1, 2, 3:
			loads[i] = simLoad{util: 100 * (1 - edge), headroom: 0.08, kv: 0.1}
		case 4, 5:
			loads[i] = simLoad{util: 10, headroom: 0.08, kv: 1 - edge}
		case 6, 7:
			loads[i] = simLoad{util: 20, headroom: 0.08, kv: 0.1, queue: rng.Float64() * 40}
		default:
			loads[i] = simLoad{util: rng.Float64() * 100, headroom: 0.01 + rng.Float64()*0.2, kv: rng.Float64(), queue: rng.Float64() * 20}
		}
	}
	return loads
}

func (l simLoad) noisy(rng *rand.Rand) Signals {
	jitter := func() float64 { return (2*rng.Float64() - 1) * simNoise }
	return Signals{
		UtilizationPct: Measured(min(max(l.util+100*jitter(), 0), 100)),
		MemoryHeadroom: Measured(l.headroom * (1 + jitter())),
		QueueDepth:     Measured(l.queue * (1 + jitter())),
		KVCacheUsage:   Measured(min(max(l.kv+jitter(), 0), 1)),
	}
}

type simFleet struct {
	w       *Weigher
	rng     *rand.Rand
	names   []string
	loads   []simLoad
	weights []uint32
	now     time.Time
	updates int
}

func newSimFleet(t testing.TB, cfg Config, n int) *simFleet {
	t.Helper()
	w, err := NewWeigher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("ep-%04d", i)
	}
	return &simFleet{w: w, rng: rng, names: names, loads: steadyLoads(rng, w.cfg.Levels, n), weights: make([]uint32, n), now: t0}
}

// scrape runs one round and returns how many weights changed.
func (f *simFleet) scrape() int {
	f.now = f.now.Add(simScrape)
	changed := 0
	for i, name := range f.names {
		w := f.w.Update(f.now, name, f.loads[i].noisy(f.rng))
		if w != f.weights[i] {
			changed++
		}
		f.weights[i] = w
	}
	f.updates += len(f.names)
	return changed
}

func runWeightSim(t testing.TB, cfg Config, endpoints int) simResult {
	f := newSimFleet(t, cfg, endpoints)
	f.scrape() // publishes the first weights
	var r simResult
	for range simMinutes * int(time.Minute/simScrape) {
		if n := f.scrape(); n > 0 {
			r.pushes++
			r.changes += n
		}
	}
	r.shiftDelay = f.shift()
	r.updates = f.updates
	return r
}

// shift moves the shift endpoints to simShiftTo and counts the scrapes until
// each publishes a weight no higher than its loaded score plus noise allows.
func (f *simFleet) shift() int {
	cfg := f.w.cfg
	loaded := cfg.weight(cfg.level(1 - simShiftTo/100.0 + simNoise))
	for i := 0; i < len(f.loads); i += 10 {
		f.loads[i].util = simShiftTo
	}
	for round := 1; round <= simMaxShiftLag; round++ {
		f.scrape()
		if f.allShiftedAtMost(loaded) {
			return round
		}
	}
	return -1
}

func (f *simFleet) allShiftedAtMost(weight uint32) bool {
	for i := 0; i < len(f.weights); i += 10 {
		if f.weights[i] > weight {
			return false
		}
	}
	return true
}

func TestNoiseAloneChangesNoWeightForAnHour(t *testing.T) {
	r := runWeightSim(t, Config{}, 1000)
	if r.changes != 0 {
		t.Errorf("noise changed %d weights in %d scrape rounds, want 0", r.changes, r.pushes)
	}
}

func TestLoadShiftIsPublishedWithinTwoScrapes(t *testing.T) {
	if r := runWeightSim(t, Config{}, 1000); r.shiftDelay < 1 || r.shiftDelay > 2 {
		t.Errorf("shift published after %d scrapes, want 1..2", r.shiftDelay)
	}
}

// The harness must be able to see noise: without hysteresis or a minimum
// interval, boundary endpoints flap.
func TestNoiseFlapsWeightsWithoutHysteresis(t *testing.T) {
	if r := runWeightSim(t, quantizeOnly, 1000); r.changes == 0 {
		t.Error("quantization alone produced no changes under noise; the harness sees nothing")
	}
}

var quantizeOnly = Config{Hysteresis: 1e-9, MinInterval: time.Nanosecond}

func BenchmarkWeightNoise(b *testing.B) {
	for _, c := range []struct {
		name string
		cfg  Config
	}{{"defaults", Config{}}, {"quantize-only", quantizeOnly}} {
		b.Run(c.name, func(b *testing.B) {
			var r simResult
			for b.Loop() {
				r = runWeightSim(b, c.cfg, 1000)
			}
			b.ReportMetric(float64(r.pushes)/simMinutes, "pushes/min")
			b.ReportMetric(float64(r.changes)/simMinutes, "changes/min")
			b.ReportMetric(float64(r.shiftDelay), "shift-delay-scrapes")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(r.updates), "ns/update")
		})
	}
}
