package weights

import (
	"math"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newTestWeigher(t *testing.T, cfg Config) *Weigher {
	t.Helper()
	w, err := NewWeigher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func util(pct float64) Signals { return Signals{UtilizationPct: Measured(pct)} }

func TestCapacityLeftTakesTheTightestKnownSignal(t *testing.T) {
	tests := []struct {
		name string
		s    Signals
		want float64
	}{
		{"utilization", util(50), 0.5},
		{"headroom above the low mark is no load", Signals{MemoryHeadroom: Measured(0.3)}, 1},
		{"headroom below the low mark", Signals{MemoryHeadroom: Measured(0.025)}, 0.5},
		{"kv cache", Signals{KVCacheUsage: Measured(0.25)}, 0.75},
		{"queue at the half depth", Signals{QueueDepth: Measured(8)}, 0.5},
		{"the tightest signal wins", Signals{UtilizationPct: Measured(50), KVCacheUsage: Measured(0.8), QueueDepth: Measured(1)}, 0.2},
		{"unknown signals do not count", Signals{UtilizationPct: Reading{Value: 99}, KVCacheUsage: Measured(0.3)}, 0.7},
		{"a NaN reading is unknown", Signals{UtilizationPct: Measured(math.NaN()), KVCacheUsage: Measured(0.3)}, 0.7},
		{"out-of-range readings are clamped", Signals{UtilizationPct: Measured(130), KVCacheUsage: Measured(-1)}, 0},
	}
	cfg := Config{}.withDefaults()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, known := cfg.capacityLeft(tt.s)
			if !known || math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("capacityLeft = %v, %v; want %v, true", got, known, tt.want)
			}
		})
	}
}

func TestCapacityLeftNeverRisesWithLoad(t *testing.T) {
	cfg := Config{}.withDefaults()
	base := Signals{UtilizationPct: Measured(40), MemoryHeadroom: Measured(0.04), QueueDepth: Measured(2), KVCacheUsage: Measured(0.3)}
	heavier := map[string]func(s *Signals, step float64){
		"utilization": func(s *Signals, step float64) { s.UtilizationPct.Value += step * 100 },
		"headroom":    func(s *Signals, step float64) { s.MemoryHeadroom.Value -= step * 0.04 },
		"queue":       func(s *Signals, step float64) { s.QueueDepth.Value += step * 50 },
		"kv cache":    func(s *Signals, step float64) { s.KVCacheUsage.Value += step },
	}
	for name, add := range heavier {
		prev, _ := cfg.capacityLeft(base)
		for step := 0.05; step <= 1; step += 0.05 {
			s := base
			add(&s, step)
			got, _ := cfg.capacityLeft(s)
			if got > prev {
				t.Errorf("%s +%.2f: capacity left rose from %v to %v", name, step, prev, got)
			}
			prev = got
		}
	}
}

func TestWeightLevelsSpanOneToMaxWeight(t *testing.T) {
	tests := []struct {
		levels int
		want   []uint32
	}{
		{2, []uint32{64, 128}},
		{3, []uint32{43, 86, 128}},
		{8, []uint32{16, 32, 48, 64, 80, 96, 112, 128}},
	}
	for _, tt := range tests {
		cfg := Config{Levels: tt.levels}.withDefaults()
		for k, want := range tt.want {
			if got := cfg.weight(k); got != want {
				t.Errorf("levels %d: weight(%d) = %d, want %d", tt.levels, k, got, want)
			}
		}
	}
	fine := Config{Levels: 128}.withDefaults()
	if lo, hi := fine.weight(0), fine.weight(127); lo != 1 || hi != 128 {
		t.Errorf("128 levels span %d..%d, want 1..128", lo, hi)
	}
}

func TestHysteresisHoldsUntilTheScoreLeavesTheBandByTheMargin(t *testing.T) {
	w := newTestWeigher(t, Config{MinInterval: time.Nanosecond})
	at := t0
	step := func(capacityLeft float64) uint32 {
		at = at.Add(time.Second)
		return w.Update(at, "ep", util(100*(1-capacityLeft)))
	}
	// Level 4 is the band [0.5, 0.625), weight 80; the margin is one band (0.125).
	for _, c := range []struct {
		left float64
		want uint32
	}{
		{0.55, 80}, {0.38, 80}, {0.749, 80}, {0.37, 48}, {0.49, 48}, {0.5, 80},
	} {
		if got := step(c.left); got != c.want {
			t.Fatalf("capacity left %v: weight %d, want %d", c.left, got, c.want)
		}
	}
}

func TestMinIntervalSpacesChanges(t *testing.T) {
	w := newTestWeigher(t, Config{MinInterval: 30 * time.Second})
	steps := []struct {
		after time.Duration
		load  float64
		want  uint32
	}{
		{0, 10, 128},
		{5 * time.Second, 90, 128},
		{29 * time.Second, 90, 128},
		{30 * time.Second, 90, 16},
		{35 * time.Second, 10, 16},
		{59 * time.Second, 10, 16},
		{60 * time.Second, 10, 128},
		{61 * time.Second, 90, 128},
	}
	for _, s := range steps {
		if got := w.Update(t0.Add(s.after), "ep", util(s.load)); got != s.want {
			t.Errorf("t+%v util %v: weight %d, want %d", s.after, s.load, got, s.want)
		}
	}
}

func TestUnknownSignalsKeepTheWeight(t *testing.T) {
	w := newTestWeigher(t, Config{MinInterval: time.Nanosecond})
	if got := w.Update(t0, "ep", Signals{}); got != DefaultWeight {
		t.Errorf("new endpoint without telemetry: weight %d, want %d", got, DefaultWeight)
	}
	if got := w.Update(t0.Add(time.Second), "ep", util(95)); got != 16 {
		t.Fatalf("first known sample: weight %d, want 16", got)
	}
	unknown := []Signals{{}, {UtilizationPct: Measured(math.Inf(1))}, {QueueDepth: Reading{Value: 0}}}
	for i, s := range unknown {
		if got := w.Update(t0.Add(time.Duration(i+2)*time.Minute), "ep", s); got != 16 {
			t.Errorf("unknown signals %+v: weight %d, want 16 kept", s, got)
		}
	}
}

func TestForgetStartsAnEndpointAfresh(t *testing.T) {
	w := newTestWeigher(t, Config{MinInterval: time.Hour})
	w.Update(t0, "ep", util(95))
	w.Forget("ep")
	if got := w.Update(t0.Add(time.Second), "ep", util(5)); got != 128 {
		t.Errorf("after Forget: weight %d, want 128 at once", got)
	}
	if got := w.Update(t0.Add(2*time.Second), "other", Signals{}); got != DefaultWeight {
		t.Errorf("unseen endpoint: weight %d, want %d", got, DefaultWeight)
	}
}

func TestNewWeigherReportsEveryBadSetting(t *testing.T) {
	_, err := NewWeigher(Config{Levels: 129, Hysteresis: 1.5, MinInterval: -1, QueueHalfDepth: -2, LowHeadroom: 2})
	if err == nil {
		t.Fatal("NewWeigher accepted a bad config")
	}
	for _, field := range []string{"levels", "hysteresis", "minInterval", "queueHalfDepth", "lowHeadroom"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not name %s:\n%v", field, err)
		}
	}
}
