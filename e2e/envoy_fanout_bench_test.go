package e2e

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inferxds/inferxds/internal/filewatch"
	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology"
)

// Shape of the fan-out benchmark: a medium fleet, Envoy counts up to what a
// 2-core machine starts in well under a minute, and the control plane's
// debounce short enough not to dominate the figure.
const (
	fanoutModels    = 100
	fanoutDebounce  = 20 * time.Millisecond
	fanoutPoll      = 25 * time.Millisecond
	fanoutHangGuard = 60 * time.Second
	// fanoutEditedModel is the model whose endpoint every edit moves.
	fanoutEditedModel = "model-000"
)

var fanoutSizes = []int{10, 25, 50}

// fanoutRow is one line of the benchmark's table.
type fanoutRow struct {
	mode                 string
	envoys, edits        int
	perEnvoy, allHaveIt  []time.Duration
	envoyRSS, controlRSS int64 // bytes; envoyRSS is the mean per Envoy
}

// BenchmarkEnvoyFanout measures, for N real Envoys connected to one
// `inferxds serve` with a fleet of fanoutModels models, how long one
// endpoint change in the fleet file takes to reach every Envoy (each
// Envoy's cluster.<model>.update_success counter, polled on its admin), for
// state-of-the-world and Delta ADS. One iteration is one edit; the table at
// the end has the percentiles and the memory per Envoy.
//
//	ENVOY_BIN=$(make -s envoy) go test -run '^$' -bench EnvoyFanout -benchtime 20x ./e2e/
func BenchmarkEnvoyFanout(b *testing.B) {
	envoyBin := requireEnvoy(b)
	var rows []fanoutRow
	for _, mode := range []string{"sotw", "delta"} {
		b.Run("mode="+mode, func(b *testing.B) {
			fleet := spreadFleet(fanoutModels, 2)
			cp := startControlPlane(b, plainPolicy(fanoutModels), fleet, "--debounce", fanoutDebounce.String())
			var envoys []*envoyProxy
			for _, n := range fanoutSizes {
				b.Run(fmt.Sprintf("envoys=%d", n), func(sub *testing.B) {
					// Envoys outlive this size: the next one adds to them.
					for len(envoys) < n {
						envoys = append(envoys, startFanoutEnvoy(b, envoyBin, cp, mode, len(envoys)))
					}
					for _, e := range envoys {
						e.awaitClusters(sub, fanoutModels)
					}
					row := fanoutRow{mode: mode, envoys: n}
					for sub.Loop() {
						perEnvoy := editAndAwait(sub, cp, &fleet, envoys)
						row.perEnvoy = append(row.perEnvoy, perEnvoy...)
						row.allHaveIt = append(row.allHaveIt, slices.Max(perEnvoy))
						row.edits++
					}
					row.envoyRSS = meanRSS(sub, envoys)
					row.controlRSS = rssOf(sub, cp.proc)
					sub.ReportMetric(float64(percentile(row.allHaveIt, 50).Milliseconds()), "p50-all-ms")
					sub.ReportMetric(float64(row.envoyRSS)/(1<<20), "MiB/envoy")
					rows = append(rows, row)
				})
			}
		})
	}
	printFanoutTable(rows)
}

// plainPolicy is n plain models, model-000 onwards.
func plainPolicy(n int) string {
	var p strings.Builder
	p.WriteString("models:\n")
	for i := range n {
		fmt.Fprintf(&p, "  - name: model-%03d\n    hotStandby: 0\n    warmStandby: 0\n    coldStandby: 0\n", i)
	}
	return p.String()
}

// spreadPorts is how many ports spreadFleet uses per loopback address
// (20000 up); edits move an endpoint to editPort and above, out of that range.
const (
	spreadPorts = 30000
	editPort    = 50000
)

// spreadFleet gives each of n models perModel primaries, alternating between
// az-1 and az-2, on loopback ports nothing listens on: no traffic flows,
// only configuration. Its first instance is model-000's.
func spreadFleet(n, perModel int) topology.Fleet {
	fleet := fleetOf()
	zones := []string{"az-1", "az-2"}
	for i := range n {
		for j := range perModel {
			zone, k := zones[j%len(zones)], perModel*i+j
			fleet.Instances = append(fleet.Instances, topology.Instance{
				Name: fmt.Sprintf("model-%03d-%d", i, j), Model: fmt.Sprintf("model-%03d", i),
				Zone: zone, Address: fmt.Sprintf("127.0.%d.1", k/spreadPorts), Port: uint32(20000 + k%spreadPorts),
				Tier: topology.TierHot, Role: topology.RolePrimary, Health: topology.HealthServing,
			})
		}
	}
	return fleet
}

// startFanoutEnvoy starts Envoy number i of zone az-1 on one worker thread
// (a config-only proxy needs no more), speaking mode ADS.
func startFanoutEnvoy(b *testing.B, bin string, cp *controlPlane, mode string, i int) *envoyProxy {
	b.Helper()
	bootstrap := cp.bootstrap(b, fmt.Sprintf("envoy-%s-%d", mode, i), "az-1", "--admin-port", "0", "--xds-mode", mode)
	return launchEnvoy(b, bin, bootstrap, oneWorker...)
}

// awaitClusters waits until Envoy is connected and holds n warm clusters.
func (e *envoyProxy) awaitClusters(b *testing.B, n int) {
	b.Helper()
	err := poll(fanoutHangGuard, func() error {
		s := e.stats(b, `^(control_plane\.connected_state|cluster_manager\.(active|warming)_clusters)$`)
		// active_clusters counts the static xds_cluster too.
		if s["control_plane.connected_state"] != 1 || s["cluster_manager.active_clusters"] != int64(n+1) || s["cluster_manager.warming_clusters"] != 0 {
			return fmt.Errorf("envoy %s: %v", e.adminAddress, s)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

var fanoutEditCount int

// editAndAwait moves one endpoint of fanoutEditedModel to a new port in the
// fleet file and returns, per Envoy, how long after the write its EDS update
// counter for the model moved.
func editAndAwait(b *testing.B, cp *controlPlane, fleet *topology.Fleet, envoys []*envoyProxy) []time.Duration {
	b.Helper()
	stat := "cluster." + snapshot.ClusterName(fanoutEditedModel) + ".update_success"
	filter := "^" + regexp.QuoteMeta(stat) + "$"
	before := make([]int64, len(envoys))
	for i, e := range envoys {
		before[i] = e.stats(b, filter)[stat]
	}
	fanoutEditCount++
	fleet.Instances[0].Port = uint32(editPort + fanoutEditCount%10000)
	data := marshalFleet(b, *fleet)
	editedAt := time.Now()
	writeFileAtomic(b, cp.fleetPath, data)

	took := make([]time.Duration, len(envoys))
	errs := make([]error, len(envoys))
	var wg sync.WaitGroup
	for i, e := range envoys {
		wg.Go(func() {
			deadline := editedAt.Add(fanoutHangGuard)
			for time.Now().Before(deadline) {
				if s, err := e.readStats(filter); err == nil && s[stat] > before[i] {
					took[i] = time.Since(editedAt)
					return
				}
				time.Sleep(fanoutPoll)
			}
			errs[i] = fmt.Errorf("envoy %s never received edit %d", e.adminAddress, fanoutEditCount)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return took
}

// rssOf is the resident memory of p from /proc, in bytes.
func rssOf(b *testing.B, p *process) int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatalf("VmRSS %q: %v", v, err)
			}
			return kib << 10
		}
	}
	b.Fatalf("no VmRSS for pid %d", p.cmd.Process.Pid)
	return 0
}

func meanRSS(b *testing.B, envoys []*envoyProxy) int64 {
	b.Helper()
	var sum int64
	for _, e := range envoys {
		sum += rssOf(b, e.proc)
	}
	return sum / int64(len(envoys))
}

// percentile is the nearest-rank p-th percentile of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Sorted(slices.Values(ds))
	rank := (p*len(s) + 99) / 100
	return s[max(rank, 1)-1]
}

func printFanoutTable(rows []fanoutRow) {
	fmt.Printf("\nEnvoy fan-out: one endpoint edit in a fleet of %d models (%d endpoints); includes the file watch's %v and serve's %v debounce; admins polled every %v\n",
		fanoutModels, 2*fanoutModels, filewatch.DefaultDebounce, fanoutDebounce, fanoutPoll)
	fmt.Printf("%-7s %-6s %5s | %-27s | %-27s | %9s %9s\n", "envoys", "mode", "edits",
		"per Envoy p50 / p99 / max", "all have it p50 / p99 / max", "RSS/Envoy", "CP RSS")
	for _, r := range rows {
		fmt.Printf("%-7d %-6s %5d | %-27s | %-27s | %6.1f MiB %5.1f MiB\n", r.envoys, r.mode, r.edits,
			spread(r.perEnvoy), spread(r.allHaveIt), float64(r.envoyRSS)/(1<<20), float64(r.controlRSS)/(1<<20))
	}
}

func spread(ds []time.Duration) string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond)) }
	return ms(percentile(ds, 50)) + " / " + ms(percentile(ds, 99)) + " / " + ms(slices.Max(ds))
}
