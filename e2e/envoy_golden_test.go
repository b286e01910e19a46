package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"go.yaml.in/yaml/v4"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/google/go-cmp/cmp"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology"
)

// goldenDir holds the translation golden cases: in/<case>.yaml and the
// reviewed out/<case>.{listeners,routes,clusters,endpoints}.yaml, or
// out/<case>.error.txt for a case the translation rejects.
const goldenDir = "../snapshot/testdata"

// syncTimeout bounds how long an Envoy may take to ACK a whole case.
const syncTimeout = 30 * time.Second

// TestEnvoyLoadsEveryGoldenCase serves each valid golden case from a real
// `inferxds serve` to a real Envoy of the case's zone and checks that Envoy
// accepted everything (no update rejected, nothing left warming) and holds
// exactly the reviewed golden resources: the same clusters, routes and
// socket-listener filter chain, and at run time every endpoint with the
// golden priority, zone, weight and health, plus the policy's outlier
// detection and circuit breakers.
func TestEnvoyLoadsEveryGoldenCase(t *testing.T) {
	envoyBin := requireEnvoy(t)
	cases := validGoldenCases(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cp := startControlPlane(t, c.policyYAML, c.fleet)
			proxy := startEnvoy(t, envoyBin, cp, c.group)
			proxy.waitSynced(t, c.policy.Models)
			dump := proxy.configDump(t)
			c.checkClusters(t, dump.clusters)
			c.checkRoutes(t, dump.routes)
			c.checkEndpoints(t, dump.endpoints)
			c.checkSocketListener(t, dump.listeners)
			c.checkRuntimeClusters(t, proxy.clusterStatuses(t))
			c.checkPolicy(t, dump.clusters, proxy.clusterStatuses(t))
		})
	}
	report(t, "envoy golden cases loaded=%d", len(cases))
}

// goldenCase is one valid testdata/in case with its golden outputs.
type goldenCase struct {
	name       string
	group      string
	fleet      topology.Fleet
	policyYAML string
	policy     drpolicy.Policy
	clusters   []*clusterv3.Cluster
	routes     []*routev3.RouteConfiguration
	listeners  []*listenerv3.Listener
	endpoints  []*endpointv3.ClusterLoadAssignment
}

func validGoldenCases(t *testing.T) []goldenCase {
	t.Helper()
	inputs, err := filepath.Glob(filepath.Join(goldenDir, "in", "*.yaml"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs in %s: %v", goldenDir, err)
	}
	var cases []goldenCase
	for _, path := range inputs {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		if _, err := os.Stat(goldenOut(name, "error.txt")); err == nil {
			continue // the translation rejects this case: nothing reaches Envoy
		}
		cases = append(cases, loadGoldenCase(t, name, path))
	}
	return cases
}

func goldenOut(name, suffix string) string {
	return filepath.Join(goldenDir, "out", name+"."+suffix)
}

// loadGoldenCase reads a case as `inferxds serve` will: the policy as the
// YAML text under "policy:", the fleet as written under "fleet:".
func loadGoldenCase(t *testing.T, name, path string) goldenCase {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var in struct {
		Group  string    `yaml:"group"`
		Fleet  yaml.Node `yaml:"fleet"`
		Policy yaml.Node `yaml:"policy"`
	}
	if err := yaml.Unmarshal(raw, &in); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	c := goldenCase{name: name, group: in.Group}
	policyYAML, err := yaml.Marshal(&in.Policy)
	if err != nil {
		t.Fatal(err)
	}
	c.policyYAML = string(policyYAML)
	if err := in.Fleet.Decode(&c.fleet); err != nil {
		t.Fatalf("%s: fleet: %v", path, err)
	}
	if err := in.Policy.Decode(&c.policy); err != nil {
		t.Fatalf("%s: policy: %v", path, err)
	}
	c.policy.ApplyDefaults()
	c.clusters = readGoldenResources[*clusterv3.Cluster](t, goldenOut(name, "clusters.yaml"))
	c.routes = readGoldenResources[*routev3.RouteConfiguration](t, goldenOut(name, "routes.yaml"))
	c.listeners = readGoldenResources[*listenerv3.Listener](t, goldenOut(name, "listeners.yaml"))
	c.endpoints = readGoldenResources[*endpointv3.ClusterLoadAssignment](t, goldenOut(name, "endpoints.yaml"))
	return c
}

// readGoldenResources parses a golden output file, a YAML list of resources
// in Envoy's JSON field names.
func readGoldenResources[M proto.Message](t *testing.T, path string) []M {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	js, err := k8syaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(js, &items); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := make([]M, len(items))
	for i, item := range items {
		out[i] = newMessage[M]()
		if err := protojson.Unmarshal(item, out[i]); err != nil {
			t.Fatalf("%s item %d: %v", path, i, err)
		}
	}
	return out
}

func newMessage[M proto.Message]() M {
	var zero M
	return zero.ProtoReflect().New().Interface().(M)
}

// waitSynced waits until Envoy has taken LDS, RDS, CDS and every model's
// EDS with nothing warming, and fails at once on any rejected update.
func (e *envoyProxy) waitSynced(t *testing.T, models []drpolicy.Model) {
	t.Helper()
	need := []string{"listener_manager.lds.update_success", "cluster_manager.cds.update_success",
		"http." + snapshot.SocketListenerName + ".rds." + snapshot.RouteConfigName + ".update_success"}
	for _, m := range models {
		need = append(need, "cluster."+snapshot.ClusterName(m.Name)+".update_success")
	}
	var rejected []string
	err := poll(syncTimeout, func() error {
		stats, err := e.readStats("")
		if err != nil {
			return err
		}
		if rejected = rejectedUpdates(stats); len(rejected) > 0 {
			return errExited // stop polling: a NACK does not heal by waiting
		}
		return synced(stats, need)
	})
	if len(rejected) > 0 {
		t.Fatalf("Envoy rejected updates: %v", rejected)
	}
	if err != nil {
		t.Fatalf("Envoy did not sync within %v: %v", syncTimeout, err)
	}
}

func rejectedUpdates(stats map[string]int64) []string {
	var rejected []string
	for name, v := range stats {
		if v > 0 && (strings.HasSuffix(name, ".update_rejected") || name == "listener_manager.listener_create_failure") {
			rejected = append(rejected, fmt.Sprintf("%s=%d", name, v))
		}
	}
	slices.Sort(rejected)
	return rejected
}

func synced(stats map[string]int64, need []string) error {
	if stats["control_plane.connected_state"] != 1 {
		return fmt.Errorf("not connected to the control plane")
	}
	for _, name := range need {
		if stats[name] < 1 {
			return fmt.Errorf("%s is 0", name)
		}
	}
	for _, gauge := range []string{"cluster_manager.warming_clusters", "listener_manager.total_listeners_warming"} {
		if stats[gauge] != 0 {
			return fmt.Errorf("%s = %d", gauge, stats[gauge])
		}
	}
	return nil
}

func (e *envoyProxy) admin(path string) ([]byte, error) {
	resp, err := e.client.Get("http://" + e.adminAddress + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("GET %s: HTTP %d: %s", path, resp.StatusCode, body)
	}
	return body, err
}

// envoyConfig is the dynamic part of Envoy's /config_dump, by name.
type envoyConfig struct {
	clusters  map[string]*clusterv3.Cluster
	routes    map[string]*routev3.RouteConfiguration
	listeners map[string]*envoyListener
	endpoints map[string]*endpointv3.ClusterLoadAssignment
}

// envoyListener is a dynamic listener's active config and the error of its
// last rejected update, if any.
type envoyListener struct {
	active *listenerv3.Listener
	err    string
}

func (e *envoyProxy) configDump(t *testing.T) envoyConfig {
	t.Helper()
	body, err := e.admin("/config_dump?include_eds")
	if err != nil {
		t.Fatal(err)
	}
	var dump struct {
		Configs []struct {
			DynamicActiveClusters []struct {
				Cluster json.RawMessage `json:"cluster"`
			} `json:"dynamic_active_clusters"`
			DynamicRouteConfigs []struct {
				RouteConfig json.RawMessage `json:"route_config"`
			} `json:"dynamic_route_configs"`
			DynamicEndpointConfigs []struct {
				EndpointConfig json.RawMessage `json:"endpoint_config"`
			} `json:"dynamic_endpoint_configs"`
			DynamicListeners []struct {
				Name        string `json:"name"`
				ActiveState *struct {
					Listener json.RawMessage `json:"listener"`
				} `json:"active_state"`
				ErrorState json.RawMessage `json:"error_state"`
			} `json:"dynamic_listeners"`
		} `json:"configs"`
	}
	if err := json.Unmarshal(body, &dump); err != nil {
		t.Fatalf("config_dump: %v", err)
	}
	cfg := envoyConfig{
		clusters:  map[string]*clusterv3.Cluster{},
		routes:    map[string]*routev3.RouteConfiguration{},
		listeners: map[string]*envoyListener{},
		endpoints: map[string]*endpointv3.ClusterLoadAssignment{},
	}
	for _, c := range dump.Configs {
		for _, dc := range c.DynamicActiveClusters {
			cl := unpackDumped[*clusterv3.Cluster](t, dc.Cluster)
			cfg.clusters[cl.GetName()] = cl
		}
		for _, dr := range c.DynamicRouteConfigs {
			rc := unpackDumped[*routev3.RouteConfiguration](t, dr.RouteConfig)
			cfg.routes[rc.GetName()] = rc
		}
		for _, de := range c.DynamicEndpointConfigs {
			cla := unpackDumped[*endpointv3.ClusterLoadAssignment](t, de.EndpointConfig)
			cfg.endpoints[cla.GetClusterName()] = cla
		}
		for _, dl := range c.DynamicListeners {
			l := &envoyListener{err: string(dl.ErrorState)}
			if dl.ActiveState != nil {
				l.active = unpackDumped[*listenerv3.Listener](t, dl.ActiveState.Listener)
			}
			cfg.listeners[dl.Name] = l
		}
	}
	return cfg
}

// unpackDumped reads a resource the config dump prints as a JSON Any.
func unpackDumped[M proto.Message](t *testing.T, raw json.RawMessage) M {
	t.Helper()
	m := newMessage[M]()
	// Drop the Any's "@type" so the fields unmarshal straight into M.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatalf("config_dump entry: %v", err)
	}
	delete(fields, "@type")
	plain, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(plain, m); err != nil {
		t.Fatalf("config_dump %T: %v\n%s", m, err, raw)
	}
	return m
}

// checkClusters: Envoy holds exactly the golden clusters, one per model.
func (c goldenCase) checkClusters(t *testing.T, got map[string]*clusterv3.Cluster) {
	t.Helper()
	var names []string
	for name := range got {
		if name != "xds_cluster" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var want []string
	for _, m := range c.policy.Models {
		want = append(want, snapshot.ClusterName(m.Name))
		for _, tenant := range c.policy.Tenants {
			if c.policy.Tenancy() && tenant.ConcurrencyShare > 0 && tenant.MayCall(&m) {
				want = append(want, snapshot.TenantClusterName(m.Name, tenant.Name))
			}
		}
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("Envoy's dynamic clusters = %v; the policy's models and tenants' shares make %v", names, want)
	}
	for _, w := range c.clusters {
		if diff := cmp.Diff(w, got[w.GetName()], protocmp.Transform()); diff != "" {
			t.Errorf("cluster %s in Envoy differs from the golden (-golden +envoy):\n%s", w.GetName(), diff)
		}
	}
}

func (c goldenCase) checkRoutes(t *testing.T, got map[string]*routev3.RouteConfiguration) {
	t.Helper()
	for _, w := range c.routes {
		if diff := cmp.Diff(w, got[w.GetName()], protocmp.Transform()); diff != "" {
			t.Errorf("route configuration %s in Envoy differs from the golden (-golden +envoy):\n%s", w.GetName(), diff)
		}
	}
}

func (c goldenCase) checkEndpoints(t *testing.T, got map[string]*endpointv3.ClusterLoadAssignment) {
	t.Helper()
	for _, w := range c.endpoints {
		if diff := cmp.Diff(asEnvoyDumps(w), withoutEnvoyDefaults(got[w.GetClusterName()]), protocmp.Transform(), byPriorityAndZone); diff != "" {
			t.Errorf("load assignment %s in Envoy differs from the golden (-golden +envoy):\n%s", w.GetClusterName(), diff)
		}
	}
}

// byPriorityAndZone compares localities regardless of order: Envoy lists
// its own zone's locality first within a priority.
var byPriorityAndZone = protocmp.SortRepeated(func(a, b *endpointv3.LocalityLbEndpoints) bool {
	if a.GetPriority() != b.GetPriority() {
		return a.GetPriority() < b.GetPriority()
	}
	return a.GetLocality().GetZone() < b.GetLocality().GetZone()
})

// asEnvoyDumps is a golden load assignment as Envoy dumps it: Envoy keeps
// a host's health as flags, so a host sent as UNKNOWN (load-balanced like a
// healthy one) comes back HEALTHY.
func asEnvoyDumps(cla *endpointv3.ClusterLoadAssignment) *endpointv3.ClusterLoadAssignment {
	cla = proto.Clone(cla).(*endpointv3.ClusterLoadAssignment)
	for _, loc := range cla.GetEndpoints() {
		for _, ep := range loc.GetLbEndpoints() {
			if ep.GetHealthStatus() == corev3.HealthStatus_UNKNOWN {
				ep.HealthStatus = corev3.HealthStatus_HEALTHY
			}
		}
	}
	return cla
}

// withoutEnvoyDefaults drops what Envoy's dump of a load assignment adds
// to the one received: its default overprovisioning factor and empty
// per-endpoint health-check configs.
func withoutEnvoyDefaults(cla *endpointv3.ClusterLoadAssignment) *endpointv3.ClusterLoadAssignment {
	if cla == nil {
		return nil
	}
	cla = proto.Clone(cla).(*endpointv3.ClusterLoadAssignment)
	if cla.GetPolicy().GetOverprovisioningFactor().GetValue() == envoyDefaultOverprovisioning {
		cla.Policy.OverprovisioningFactor = nil
	}
	if proto.Equal(cla.GetPolicy(), &endpointv3.ClusterLoadAssignment_Policy{}) {
		cla.Policy = nil
	}
	for _, loc := range cla.GetEndpoints() {
		for _, ep := range loc.GetLbEndpoints() {
			if proto.Equal(ep.GetEndpoint().GetHealthCheckConfig(), &endpointv3.Endpoint_HealthCheckConfig{}) {
				ep.GetEndpoint().HealthCheckConfig = nil
			}
		}
	}
	return cla
}

// envoyDefaultOverprovisioning is Envoy's overprovisioning_factor when a
// load assignment sets none.
const envoyDefaultOverprovisioning = 140

// checkSocketListener: the socket listener is active, unrejected, with the
// golden filter chain (its address is the test's, not the golden's). No
// listener Envoy holds carries a rejected update.
func (c goldenCase) checkSocketListener(t *testing.T, got map[string]*envoyListener) {
	t.Helper()
	for name, l := range got {
		if l.err != "" {
			t.Errorf("listener %s: Envoy rejected its last update: %s", name, l.err)
		}
	}
	l := got[snapshot.SocketListenerName]
	if l == nil || l.active == nil {
		t.Fatalf("listener %s is not active in Envoy", snapshot.SocketListenerName)
	}
	for _, w := range c.listeners {
		if w.GetName() != snapshot.SocketListenerName {
			continue
		}
		if diff := cmp.Diff(w.GetFilterChains(), l.active.GetFilterChains(), protocmp.Transform()); diff != "" {
			t.Errorf("listener %s filter chains differ from the golden (-golden +envoy):\n%s", w.GetName(), diff)
		}
	}
}

// envoyHost is one endpoint as Envoy's /clusters reports it at run time.
type envoyHost struct {
	Hostname string `json:"hostname"`
	Address  struct {
		SocketAddress struct {
			Address   string `json:"address"`
			PortValue uint32 `json:"port_value"`
		} `json:"socket_address"`
	} `json:"address"`
	Priority     uint32                `json:"priority"`
	Weight       uint32                `json:"weight"`
	Locality     struct{ Zone string } `json:"locality"`
	HealthStatus struct {
		EDSHealthStatus string `json:"eds_health_status"`
	} `json:"health_status"`
}

// envoyClusterStatus is one cluster of /clusters?format=json.
type envoyClusterStatus struct {
	Name            string      `json:"name"`
	HostStatuses    []envoyHost `json:"host_statuses"`
	CircuitBreakers struct {
		Thresholds []struct {
			Priority           string `json:"priority"`
			MaxConnections     uint32 `json:"max_connections"`
			MaxPendingRequests uint32 `json:"max_pending_requests"`
			MaxRequests        uint32 `json:"max_requests"`
			MaxRetries         uint32 `json:"max_retries"`
		} `json:"thresholds"`
	} `json:"circuit_breakers"`
}

func (e *envoyProxy) clusterStatuses(t *testing.T) map[string]envoyClusterStatus {
	t.Helper()
	body, err := e.admin("/clusters?format=json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		ClusterStatuses []envoyClusterStatus `json:"cluster_statuses"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("/clusters: %v", err)
	}
	byName := map[string]envoyClusterStatus{}
	for _, cs := range doc.ClusterStatuses {
		byName[cs.Name] = cs
	}
	return byName
}

// checkRuntimeClusters compares what Envoy load-balances over with the
// golden load assignments: priority per locality, weight, and health as
// Envoy applies it (it reports UNKNOWN and DRAINING hosts by what it does
// with them: HEALTHY and UNHEALTHY).
func (c goldenCase) checkRuntimeClusters(t *testing.T, got map[string]envoyClusterStatus) {
	t.Helper()
	for _, cla := range c.endpoints {
		if diff := cmp.Diff(goldenHosts(cla), runtimeHosts(got[cla.GetClusterName()])); diff != "" {
			t.Errorf("cluster %s: Envoy's hosts differ from the golden load assignment (-golden +envoy):\n%s", cla.GetClusterName(), diff)
		}
	}
}

// checkPolicy holds Envoy's outlier detection and live circuit breakers to
// the numbers the policy sets (after its defaults).
func (c goldenCase) checkPolicy(t *testing.T, clusters map[string]*clusterv3.Cluster, live map[string]envoyClusterStatus) {
	t.Helper()
	for _, m := range c.policy.Models {
		name := snapshot.ClusterName(m.Name)
		checkPolicyBreakers(t, m, live[name])
		checkPolicyOutlier(t, m, clusters[name].GetOutlierDetection())
	}
}

// hostView is the part of a host the policy and fleet decide.
type hostView struct {
	Hostname, Address, Zone, Health string
	Priority, Weight                uint32
}

func goldenHosts(cla *endpointv3.ClusterLoadAssignment) []hostView {
	var hosts []hostView
	for _, loc := range cla.GetEndpoints() {
		for _, ep := range loc.GetLbEndpoints() {
			sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
			hosts = append(hosts, hostView{
				Hostname: ep.GetEndpoint().GetHostname(),
				Address:  fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()),
				Zone:     loc.GetLocality().GetZone(),
				Health:   runtimeHealth[ep.GetHealthStatus()],
				Priority: loc.GetPriority(),
				Weight:   ep.GetLoadBalancingWeight().GetValue(),
			})
		}
	}
	return sortedHosts(hosts)
}

// runtimeHealth is how Envoy's /clusters reports a host of each EDS health.
var runtimeHealth = map[corev3.HealthStatus]string{
	corev3.HealthStatus_UNKNOWN:   "HEALTHY",
	corev3.HealthStatus_HEALTHY:   "HEALTHY",
	corev3.HealthStatus_UNHEALTHY: "UNHEALTHY",
	corev3.HealthStatus_DRAINING:  "UNHEALTHY",
	corev3.HealthStatus_TIMEOUT:   "UNHEALTHY",
	corev3.HealthStatus_DEGRADED:  "DEGRADED",
}

func runtimeHosts(cs envoyClusterStatus) []hostView {
	var hosts []hostView
	for _, h := range cs.HostStatuses {
		hosts = append(hosts, hostView{
			Hostname: h.Hostname,
			Address:  fmt.Sprintf("%s:%d", h.Address.SocketAddress.Address, h.Address.SocketAddress.PortValue),
			Zone:     h.Locality.Zone,
			Health:   h.HealthStatus.EDSHealthStatus,
			Priority: h.Priority,
			Weight:   h.Weight,
		})
	}
	return sortedHosts(hosts)
}

func sortedHosts(hosts []hostView) []hostView {
	slices.SortFunc(hosts, func(a, b hostView) int { return strings.Compare(a.Address, b.Address) })
	return hosts
}

// checkPolicyBreakers holds Envoy's live default-priority thresholds to the
// policy's circuit breakers, where it sets them.
func checkPolicyBreakers(t *testing.T, m drpolicy.Model, cs envoyClusterStatus) {
	t.Helper()
	cb := m.CircuitBreakers
	if cb == nil {
		return
	}
	if len(cs.CircuitBreakers.Thresholds) == 0 {
		t.Errorf("model %s: Envoy reports no circuit breakers", m.Name)
		return
	}
	live := cs.CircuitBreakers.Thresholds[0] // DEFAULT comes first
	for _, f := range []struct {
		name       string
		policy, at uint32
	}{
		{"maxConnections", cb.MaxConnections, live.MaxConnections},
		{"maxPendingRequests", cb.MaxPendingRequests, live.MaxPendingRequests},
		{"maxRequests", cb.MaxRequests, live.MaxRequests},
		{"maxRetries", maxRetriesWithoutBudget(m), live.MaxRetries},
	} {
		if f.policy != 0 && f.policy != f.at {
			t.Errorf("model %s: circuit breaker %s = %d in Envoy, %d in the policy", m.Name, f.name, f.at, f.policy)
		}
	}
}

// maxRetriesWithoutBudget is the policy's maxRetries unless a retry budget
// replaces it (0: not checked).
func maxRetriesWithoutBudget(m drpolicy.Model) uint32 {
	if m.Retries != nil && m.Retries.Budget != nil {
		return 0
	}
	return m.CircuitBreakers.MaxRetries
}

// checkPolicyOutlier holds the outlier detection Envoy holds to the
// policy's numbers.
func checkPolicyOutlier(t *testing.T, m drpolicy.Model, got *clusterv3.OutlierDetection) {
	t.Helper()
	od := m.OutlierDetection
	if od == nil {
		return
	}
	pairs := []struct {
		name       string
		policy, at uint32
	}{
		{"consecutive5xx", od.Consecutive5xx, got.GetConsecutive_5Xx().GetValue()},
		{"consecutiveGatewayErrors", od.ConsecutiveGatewayErrors, got.GetConsecutiveGatewayFailure().GetValue()},
		{"maxEjectionPercent", od.MaxEjectionPercent, got.GetMaxEjectionPercent().GetValue()},
	}
	for _, p := range pairs {
		if p.policy != p.at {
			t.Errorf("model %s: outlier %s = %d in Envoy, %d in the policy", m.Name, p.name, p.at, p.policy)
		}
	}
	if od.Interval != 0 && got.GetInterval().AsDuration() != od.Interval.D() {
		t.Errorf("model %s: outlier interval = %v in Envoy, %v in the policy", m.Name, got.GetInterval().AsDuration(), od.Interval.D())
	}
	if od.BaseEjectionTime != 0 && got.GetBaseEjectionTime().AsDuration() != od.BaseEjectionTime.D() {
		t.Errorf("model %s: base ejection time = %v in Envoy, %v in the policy", m.Name, got.GetBaseEjectionTime().AsDuration(), od.BaseEjectionTime.D())
	}
}
