package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/inferxds/inferxds/internal/filewatch"
)

// scaleInstancesPerModel is the fleet shape of the scale targets:
// every model served by 20 instances.
const scaleInstancesPerModel = 20

// BenchmarkFleetEditAtScale measures, at 500 and 2,000 models × 20
// instances, one endpoint edit in the fleet file reaching the first proxy
// (a real Envoy of zone az-1 over state-of-the-world ADS; the time until its
// EDS update counter for the model moves), with serve's default debounce.
// It also reports serve's resident memory once ready with no proxy
// connected, and with the one Envoy.
//
//	ENVOY_BIN=$(make -s envoy) go test -run '^$' -bench FleetEditAtScale -benchtime 10x ./e2e/
func BenchmarkFleetEditAtScale(b *testing.B) {
	envoyBin := requireEnvoy(b)
	for _, models := range []int{500, 2000} {
		b.Run(fmt.Sprintf("models=%d", models), func(b *testing.B) {
			fleet := spreadFleet(models, scaleInstancesPerModel)
			cp := startControlPlane(b, plainPolicy(models), fleet)
			cp.awaitReady(b)
			idleRSS := rssOf(b, cp.proc)
			envoy := startFanoutEnvoy(b, envoyBin, cp, "sotw", 0)
			envoy.awaitClusters(b, models)
			var took []time.Duration
			for b.Loop() {
				took = append(took, editAndAwait(b, cp, &fleet, []*envoyProxy{envoy})[0])
			}
			connectedRSS := rssOf(b, cp.proc)
			b.ReportMetric(float64(percentile(took, 50).Milliseconds()), "p50-ms")
			b.ReportMetric(float64(idleRSS)/(1<<20), "idle-MiB")
			fmt.Printf("fleet-edit-at-scale models=%d instances=%d edits=%d edit-to-first-proxy p50/p99/max=%s (includes the file watch's %v and serve's default 100ms debounce) serve-RSS idle=%.1fMiB with-1-envoy=%.1fMiB\n",
				models, models*scaleInstancesPerModel, len(took), spread(took), filewatch.DefaultDebounce,
				float64(idleRSS)/(1<<20), float64(connectedRSS)/(1<<20))
		})
	}
}

// awaitReady waits until serve's /readyz answers 200: its inputs are loaded
// and translated.
func (cp *controlPlane) awaitReady(b *testing.B) {
	b.Helper()
	err := poll(fanoutHangGuard, func() error {
		resp, err := http.Get("http://" + cp.MetricsAddress + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
