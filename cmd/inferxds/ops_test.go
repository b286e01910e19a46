package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/inferxds/inferxds/deploy"
	"github.com/inferxds/inferxds/topology"
)

// scrape parses the served /metrics.
func (s *served) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(s.get(t, "/metrics")))
	if err != nil {
		t.Fatal(err)
	}
	return families
}

// sample is the value of the series of name whose labels include want
// ("k=v" pairs); ok is false when there is none.
func sample(families map[string]*dto.MetricFamily, name string, want ...string) (v float64, ok bool) {
	for _, m := range families[name].GetMetric() {
		if !hasLabels(m, want) {
			continue
		}
		switch {
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// sum adds the series of name whose labels include want.
func sum(families map[string]*dto.MetricFamily, name string, want ...string) float64 {
	total := 0.0
	for _, m := range families[name].GetMetric() {
		if hasLabels(m, want) {
			total += m.GetGauge().GetValue()
		}
	}
	return total
}

func hasLabels(m *dto.Metric, want []string) bool {
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	for _, kv := range want {
		k, v, _ := strings.Cut(kv, "=")
		if labels[k] != v {
			return false
		}
	}
	return true
}

func wantSample(t *testing.T, families map[string]*dto.MetricFamily, value float64, name string, labels ...string) {
	t.Helper()
	got, ok := sample(families, name, labels...)
	if !ok {
		t.Errorf("%s%v is missing", name, labels)
	} else if got != value {
		t.Errorf("%s%v = %v, want %v", name, labels, got, value)
	}
}

var xdsTypeNames = []string{"Listener", "RouteConfiguration", "Cluster", "ClusterLoadAssignment"}

// TestServeMetricsExistFromStartAndFollowEvents: every alerting series is
// there before any proxy connects, at zero where nothing happened yet, and
// moves when a proxy ACKs and when the fleet changes.
func TestServeMetricsExistFromStartAndFollowEvents(t *testing.T) {
	policyDir, fleetFile := copyExamples(t)
	s := startServe(t, "--policy-dir", policyDir, "--fleet", fleetFile)

	start := s.scrape(t)
	wantSample(t, start, 1, "inferxds_build_info", "goversion="+runtime.Version())
	for _, typ := range xdsTypeNames {
		for _, name := range []string{"inferxds_xds_push_ack_seconds", "inferxds_xds_acks_total", "inferxds_xds_nacks_total",
			"inferxds_xds_proxies_out_of_sync", "inferxds_xds_out_of_sync_max_seconds"} {
			wantSample(t, start, 0, name, "type="+typ)
		}
	}
	wantSample(t, start, 0, "inferxds_drained_gpus")
	wantSample(t, start, 0, "inferxds_source_error", "source=fleet")
	wantSample(t, start, 0, "inferxds_source_error", "source=policy")
	wantSample(t, start, 0, "inferxds_snapshot_rejected_total", "stage=validate")
	// Example fleet: llama-2-7b has a primary in az-1 and az-2 and hot
	// standbys in az-2 and az-3; gpt-4-8b's only hot instance is in az-1.
	wantSample(t, start, 1, "inferxds_endpoints", "zone=az-1", "model=llama-2-7b", "priority=0")
	wantSample(t, start, 2, "inferxds_endpoints", "zone=az-3", "model=llama-2-7b", "priority=0")
	wantSample(t, start, 4, "inferxds_instances", "model=llama-2-7b", "tier=hot", "healthy=true")
	wantSample(t, start, 0, "inferxds_instances", "model=llama-2-7b", "tier=hot", "healthy=false")
	wantSample(t, start, 2, "inferxds_instances", "model=gpt-4-8b", "tier=cold", "healthy=true")
	loaded, _ := sample(start, "inferxds_source_last_success_timestamp_seconds", "source=fleet")
	if _, ok := sample(start, "inferxds_source_last_success_timestamp_seconds", "source=policy"); !ok || loaded <= 0 {
		t.Errorf("source_last_success_timestamp_seconds: fleet %v, policy present %v; want both set at start-up", loaded, ok)
	}

	connectProxy(t, s.XDSAddress, zoneNode("envoy-az1", "az-1", "envoy"), false)
	editFile(t, fleetFile, "port: 18100}", "port: 18100, health: unhealthy}")
	waitFor(t, 30*time.Second, func() error {
		m := s.scrape(t)
		if v, _ := sample(m, "inferxds_instances", "model=llama-2-7b", "tier=hot", "healthy=false"); v != 1 {
			return fmt.Errorf("unhealthy hot llama-2-7b instances = %v, want 1 after the edit", v)
		}
		return nil
	})
	after := s.scrape(t)
	wantSample(t, after, 1, "inferxds_xds_push_ack_seconds", "type=Cluster")
	wantSample(t, after, 1, "inferxds_xds_acks_total", "type=Cluster")
	if got := sum(after, "inferxds_endpoints", "zone=az-1", "model=llama-2-7b"); got != 3 {
		t.Errorf("llama-2-7b endpoints seen from az-1 = %v, want 3 once the az-1 primary is out", got)
	}
	if v, _ := sample(after, "inferxds_source_last_success_timestamp_seconds", "source=fleet"); v <= loaded {
		t.Errorf("fleet last success %v, want later than start-up's %v", v, loaded)
	}
	if v, _ := sample(after, "inferxds_last_applied_timestamp_seconds"); v <= 0 {
		t.Errorf("last_applied_timestamp_seconds = %v after a proxy got its view", v)
	}
}

// TestServeReadyAfterTheFirstSnapshot: with a debounce that never ends,
// nothing is translated until a proxy connects (which is translated at
// once); /readyz says so.
func TestServeReadyAfterTheFirstSnapshot(t *testing.T) {
	s := startServe(t, "--debounce", "1h", "--max-delay", "1h")
	if code := httpStatus(t, "http://"+s.MetricsAddress+"/readyz", ""); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before any translation = %d, want 503", code)
	}
	connectProxy(t, s.XDSAddress, zoneNode("envoy-az1", "az-1", "envoy"), false)
	if code := httpStatus(t, "http://"+s.MetricsAddress+"/readyz", ""); code != http.StatusOK {
		t.Errorf("/readyz after a proxy received its snapshot = %d, want 200", code)
	}
}

func TestServePprofOnlyWhenAsked(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{{nil, http.StatusNotFound}, {[]string{"--pprof"}, http.StatusOK}} {
		s := startServe(t, tc.args...)
		if code := httpStatus(t, "http://"+s.MetricsAddress+"/debug/pprof/", ""); code != tc.want {
			t.Errorf("serve %v: /debug/pprof/ = %d, want %d", tc.args, code, tc.want)
		}
	}
}

func TestVersionFlag(t *testing.T) {
	res := runCLI(t, "--version")
	if res.code != 0 || res.stdout != "inferxds version "+buildVersion()+"\n" {
		t.Errorf("--version: exit %d, %q", res.code, res.stdout)
	}
}

// TestServeLogsWhatAnOperatorFollows: what was loaded, proxies coming and
// going, each applied change and what it changed, and recovery after a
// broken edit, in JSON lines.
func TestServeLogsWhatAnOperatorFollows(t *testing.T) {
	policyDir, fleetFile := copyExamples(t)
	s := startServe(t, "--policy-dir", policyDir, "--fleet", fleetFile, "--log-format", "json")
	wantLog(t, s, "loaded policy and fleet", `"models":3`, `"instances":13`, `"zones":3`, `"fleet":"`+fleetFile+`"`)

	if _, err := s.dump(t, "az-1", false); err != nil {
		t.Fatal(err)
	}
	wantLog(t, s, "proxy connected", `"node":"test-az-1"`, `"view":"az-1/all"`)
	wantLog(t, s, "proxy disconnected", `"node":"test-az-1"`)

	editFile(t, fleetFile, "port: 18100}", "port: 18100, health: unhealthy}")
	wantLog(t, s, "inputs changed; translating", `"endpointsRemoved":["llama-2-7b-az1-primary"]`)
	wantLog(t, s, "view updated", `"view":"az-1/all"`)

	editFile(t, fleetFile, "zones:", "zones: [")
	wantLog(t, s, "source error", `"source":"fleet"`)
	editFile(t, fleetFile, "zones: [", "zones:")
	wantLog(t, s, "source recovered: the fixed input is applied", `"source":"fleet"`)

	for line := range strings.Lines(s.logs.String()) {
		if !json.Valid([]byte(line)) {
			t.Errorf("not a JSON line: %s", line)
		}
	}
}

func wantLog(t *testing.T, s *served, msg string, parts ...string) {
	t.Helper()
	waitFor(t, 30*time.Second, func() error {
		if !lineHas(s.logs.String(), append([]string{`"msg":"` + msg + `"`}, parts...)...) {
			return fmt.Errorf("no log line has %q and %v:\n%s", msg, parts, s.logs)
		}
		return nil
	})
}

func TestServeRefusesBadLogSettings(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--log-level", "chatty"}, `--log-level (INFERXDS_LOG_LEVEL) "chatty": must be debug, info, warn or error`},
		{[]string{"serve", "--log-format", "xml"}, `--log-format (INFERXDS_LOG_FORMAT) "xml": must be text or json`},
	} {
		res := runCLI(t, tc.args...)
		if res.code != 1 || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", tc.args, res.code, res.stderr, tc.want)
		}
	}
}

// TestModelWithoutEndpointsReportsZero: a policy model that nothing serves
// has inferxds_endpoints{priority="0"} at 0 in every zone, which the
// InferxdsModelWithoutEndpoints alert needs.
func TestModelWithoutEndpointsReportsZero(t *testing.T) {
	fleet, err := deploy.LoadExampleFleet()
	if err != nil {
		t.Fatal(err)
	}
	pol, err := deploy.LoadExamplePolicy()
	if err != nil {
		t.Fatal(err)
	}
	fleet.Instances = slices.DeleteFunc(fleet.Instances, func(in topology.Instance) bool { return in.Model == "mistral-7b" })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(constCollector(fleetMetrics(fleet, pol, nil)))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range families {
		byName[f.GetName()] = f
	}
	for _, zone := range []string{"az-1", "az-2", "az-3"} {
		wantSample(t, byName, 0, "inferxds_endpoints", "zone="+zone, "model=mistral-7b", "priority=0")
		if _, ok := sample(byName, "inferxds_endpoints", "zone="+zone, "model=mistral-7b", "priority=1"); ok {
			t.Errorf("%s: a priority 1 series for a model without endpoints", zone)
		}
	}
}

// constCollector serves fixed metrics.
type constCollector []prometheus.Metric

func (c constCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c {
		ch <- m.Desc()
	}
}

func (c constCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c {
		ch <- m
	}
}
