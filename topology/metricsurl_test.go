package topology_test

import (
	"strings"
	"testing"

	"github.com/inferxds/inferxds/topology"
)

func TestParseFleetChecksTelemetryURLs(t *testing.T) {
	withURLs := func(node, instance string) string {
		f := strings.Replace(goodFleet, "zone: az-1\n", "zone: az-1\n    telemetryURL: "+node+"\n", 1)
		return strings.Replace(f, "port: 18001}", "port: 18001, metricsURL: "+instance+"}", 1)
	}
	f, err := topology.ParseFleet("fleet.yaml", []byte(withURLs("http://10.0.0.1:9400/metrics", "https://m.example/metrics")))
	if err != nil {
		t.Fatalf("good URLs refused: %v", err)
	}
	if f.Nodes[0].TelemetryURL != "http://10.0.0.1:9400/metrics" || f.Instances[1].MetricsURL != "https://m.example/metrics" {
		t.Errorf("URLs not decoded: node %q, instance %q", f.Nodes[0].TelemetryURL, f.Instances[1].MetricsURL)
	}
	_, err = topology.ParseFleet("fleet.yaml", []byte(withURLs("10.0.0.1:9400/metrics", "ftp://m.example/metrics")))
	for _, want := range []string{
		`fleet.yaml:7: nodes[0].telemetryURL: must be an http:// or https:// URL with a host (got "10.0.0.1:9400/metrics")`,
		`fleet.yaml:12: instances[0].metricsURL: must be an http:// or https:// URL with a host (got "ftp://m.example/metrics")`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
}
