package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/e2e/kubeenv"
	"github.com/inferxds/inferxds/internal/leader"
	"github.com/inferxds/inferxds/topology"
	kubetopo "github.com/inferxds/inferxds/topology/kube"
)

const (
	replicaNamespace = "inferxds-system"
	replicaLease     = 3 * time.Second
)

// TestReplicasServeTheSameVersionsAndHandOverTheLease runs two control
// planes against a real API server with --leader-elect. A proxy that
// moves from one replica to the other, naming the versions it has, is
// sent no resource (versions are content hashes): only the empty answer
// a new wildcard subscription gets; over state of the world, the version
// it has. One replica
// leads; after it is killed (SIGKILL: the lease is not released) the other
// takes the lease once it expires.
func TestReplicasServeTheSameVersionsAndHandOverTheLease(t *testing.T) {
	env := kubeenv.Start(t)
	client := kubernetes.NewForConfigOrDie(env.Config)
	createNamespace(t, client, replicaNamespace)
	llama := startModelSim(t, "llama-a", "llama-2-7b")
	mistral := startModelSim(t, "mistral-a", "mistral-7b")
	fleet := fleetOf(llama.grpcInstance(t), mistral.grpcInstance(t))
	flags := []string{"--kubeconfig", env.Kubeconfig, "--leader-elect", "--lease-namespace", replicaNamespace, "--lease-duration", replicaLease.String()}
	a := startControlPlane(t, twoModelPolicy, fleet, flags...)
	b := startControlPlane(t, twoModelPolicy, fleet, flags...)

	versions := deltaVersions(t, dialDelta(t, a, "proxy-1", "az-1"), nil)
	moved := dialDelta(t, b, "proxy-1", "az-1")
	for _, typeURL := range []string{resourcev3.ClusterType, resourcev3.EndpointType} {
		moved.send(t, &discoveryv3.DeltaDiscoveryRequest{Node: moved.node, TypeUrl: typeURL,
			ResourceNamesSubscribe: []string{"*"}, InitialResourceVersions: versions[typeURL]})
		if resp := moved.next(t, hangGuard); len(resp.GetResources()) != 0 || len(resp.GetRemovedResources()) != 0 {
			t.Errorf("a proxy moved to the other replica with the versions it has was sent %s %v, removed %v; want nothing",
				resp.GetTypeUrl(), resourceNames(resp), resp.GetRemovedResources())
		}
	}
	moved.expectQuiet(t, time.Second)

	// A state-of-the-world stream is answered in full when it opens, but
	// at the version the proxy has: nothing new to apply.
	first := sotwResponse(t, sotwStream(t, a, ""))
	if again := sotwResponse(t, sotwStream(t, b, first.GetVersionInfo())); again.GetVersionInfo() != first.GetVersionInfo() {
		t.Errorf("a state-of-the-world proxy moved to the other replica got clusters version %s, had %s", again.GetVersionInfo(), first.GetVersionInfo())
	}

	leading, following := whoLeads(t, a, b)
	holder := leaseHolder(t, client)
	killed := time.Now()
	leading.proc.kill(t)
	waitForLog(t, following, "msg=leading")
	report(t, "leader hand-over after SIGKILL: %v (lease duration %v)", time.Since(killed).Round(time.Millisecond), replicaLease)
	if now := leaseHolder(t, client); now == holder {
		t.Errorf("the Lease is still held by %s, the killed replica", now)
	}
}

// deltaVersions subscribes d to every cluster and endpoint set, naming
// the versions it has, ACKs, and returns the version of each resource
// sent, by type.
func deltaVersions(t *testing.T, d *deltaClient, have map[string]map[string]string) map[string]map[string]string {
	t.Helper()
	for _, typeURL := range []string{resourcev3.ClusterType, resourcev3.EndpointType} {
		d.send(t, &discoveryv3.DeltaDiscoveryRequest{Node: d.node, TypeUrl: typeURL,
			ResourceNamesSubscribe: []string{"*"}, InitialResourceVersions: have[typeURL]})
	}
	versions := map[string]map[string]string{}
	for len(versions[resourcev3.ClusterType]) == 0 || len(versions[resourcev3.EndpointType]) == 0 {
		resp := d.next(t, hangGuard)
		for _, r := range resp.GetResources() {
			if versions[resp.GetTypeUrl()] == nil {
				versions[resp.GetTypeUrl()] = map[string]string{}
			}
			versions[resp.GetTypeUrl()][r.GetName()] = r.GetVersion()
		}
		d.ack(t, resp)
	}
	return versions
}

// whoLeads waits until one of the control planes logs that it leads.
func whoLeads(t *testing.T, a, b *controlPlane) (leading, following *controlPlane) {
	t.Helper()
	err := poll(hangGuard, func() error {
		switch {
		case strings.Contains(a.proc.output.String(), "msg=leading"):
			leading, following = a, b
		case strings.Contains(b.proc.output.String(), "msg=leading"):
			leading, following = b, a
		default:
			return errors.New("no replica leads")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(following.proc.output.String(), "msg=leading") {
		t.Fatal("both replicas lead")
	}
	return leading, following
}

func waitForLog(t *testing.T, cp *controlPlane, text string) {
	t.Helper()
	if err := poll(hangGuard, func() error {
		if !strings.Contains(cp.proc.output.String(), text) {
			return errors.New("not logged yet: " + text)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func leaseHolder(t *testing.T, client kubernetes.Interface) string {
	t.Helper()
	lease, err := client.CoordinationV1().Leases(replicaNamespace).Get(context.Background(), leader.DefaultLeaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

// TestReplicasServeTheLeadersDRState runs two control planes with --dr and
// --leader-elect against a real API server. When a primary dies, only the
// leader decides (the other's incident log holds only the leader's
// incident), and both serve the endpoints the leader's DR state gives, at
// the same version. After the leader is killed, the other leads from the
// state published last: its proxies are sent nothing and no incident is
// opened again.
func TestReplicasServeTheLeadersDRState(t *testing.T) {
	env := kubeenv.Start(t)
	client := kubernetes.NewForConfigOrDie(env.Config)
	createNamespace(t, client, replicaNamespace)
	primary := startModelSim(t, "llama-a", "llama-2-7b")
	standby := startModelSim(t, "llama-b", "llama-2-7b")
	fleet := failoverFleet(primary.httpInstance(t), standby.httpInstance(t), topology.HealthServing)
	incidentLogs := map[*controlPlane]string{}
	start := func() *controlPlane {
		log := filepath.Join(t.TempDir(), "incidents.jsonl")
		cp := startControlPlane(t, llamaPolicy(""), fleet, "--kubeconfig", env.Kubeconfig, "--leader-elect",
			"--lease-namespace", replicaNamespace, "--lease-duration", replicaLease.String(),
			"--dr", "--probe-interval", "200ms", "--incident-log", log)
		incidentLogs[cp] = log
		return cp
	}
	a, b := start(), start()
	leading, following := whoLeads(t, a, b)
	clients := map[*controlPlane]*deltaClient{}
	for _, cp := range []*controlPlane{leading, following} {
		clients[cp] = dialDelta(t, cp, "proxy-1", "az-1")
		deltaVersions(t, clients[cp], nil)
	}

	primary.proc.kill(t)
	killed := time.Now()
	versions := map[*controlPlane]string{}
	for cp, d := range clients {
		resp := d.next(t, hangGuard)
		d.ack(t, resp)
		if names := resourceNames(resp); len(names) != 1 || names[0] != "llama-2-7b" {
			t.Fatalf("after the primary died got %s %v; want the llama-2-7b endpoints", resp.GetTypeUrl(), names)
		}
		versions[cp] = resp.GetResources()[0].GetVersion()
	}
	report(t, "primary killed -> both replicas pushed the leader's endpoints: %v", time.Since(killed).Round(time.Millisecond))
	if versions[leading] != versions[following] {
		t.Errorf("the replicas serve different endpoints: leader version %s, other %s", versions[leading], versions[following])
	}
	incident := onlyIncident(t, readIncidents(t, incidentLogs[leading]))
	if incident.Instance != "llama-a" || incident.Replacement != "llama-b" || incident.RestoredAt.IsZero() {
		t.Errorf("leader's incident %+v: want llama-a replaced by llama-b, restored", incident)
	}

	leading.proc.kill(t)
	waitForLog(t, following, "continued=true")
	clients[following].expectQuiet(t, time.Second)
	// The other replica's log mirrors the state it served: the leader's
	// incident, never one of its own.
	if log := readIncidents(t, incidentLogs[following]); log != "" && onlyIncident(t, log).ID != incident.ID {
		t.Errorf("the other replica opened its own incident beside the leader's %s:\n%s", incident.ID, log)
	}
}

// readIncidents is what a control plane wrote to its --incident-log.
func readIncidents(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(data)
}

// onlyIncident is the one incident of a log, at its last stage.
func onlyIncident(t *testing.T, log string) dr.Incident {
	t.Helper()
	var last dr.Incident
	for line := range strings.Lines(log) {
		var inc dr.Incident
		if err := json.Unmarshal([]byte(line), &inc); err != nil {
			t.Fatalf("incident log line %q: %v", line, err)
		}
		if last.ID != "" && inc.ID != last.ID {
			t.Fatalf("more than one incident:\n%s", log)
		}
		last = inc
	}
	return last
}

// TestANewLeaderFinishesTheIncidentInFlight runs two control planes with
// --dr, --actuator kube and --leader-elect. A primary dies; the leader
// starts waking the warm standby (its Pod, which the test plays the
// kubelet for, is a modelsim asleep) and is killed while the wake-up is
// under way. The other replica takes the lease, continues the incident
// from the published state, wakes the standby and restores the incident.
func TestANewLeaderFinishesTheIncidentInFlight(t *testing.T) {
	env := kubeenv.Start(t)
	admin := kubernetes.NewForConfigOrDie(env.Config)
	createNamespace(t, admin, replicaNamespace)
	createNamespace(t, admin, actuatorNamespace)
	primary := startModelSim(t, "llama-a", "llama-2-7b")
	warm := startModelSim(t, "llama-w", "llama-2-7b", "--start-asleep", "--warm-load-time", "3s")
	fleet := wakeFleet(primary.httpInstance(t), warm.httpInstance(t))
	sleepingPod(t, admin, fleet.Instances[1])

	incidentLogs := map[*controlPlane]string{}
	start := func() *controlPlane {
		log := filepath.Join(t.TempDir(), "incidents.jsonl")
		cp := startControlPlane(t, llamaPolicy(""), fleet, "--kubeconfig", env.Kubeconfig, "--leader-elect",
			"--lease-namespace", replicaNamespace, "--lease-duration", replicaLease.String(),
			"--dr", "--probe-interval", "200ms", "--incident-log", log, "--actuator", "kube", "--actuator-namespace", actuatorNamespace)
		incidentLogs[cp] = log
		return cp
	}
	leading, following := whoLeads(t, start(), start())

	primary.proc.kill(t)
	inFlight := waitPublished(t, admin, func(inc dr.Incident) bool {
		return inc.Replacement == "llama-w" && !inc.PromotionStartedAt.IsZero() && inc.PromotedReadyAt.IsZero()
	})
	leading.proc.kill(t)
	killed := time.Now()
	waitForLog(t, following, "continued=true")
	finished := waitPublished(t, admin, func(inc dr.Incident) bool { return inc.ID == inFlight.ID && !inc.RestoredAt.IsZero() })
	report(t, "leader killed mid-wake -> new leader restored the incident: %v (lease duration %v, warm load 3s)",
		time.Since(killed).Round(time.Millisecond), replicaLease)
	waitForLog(t, following, `msg="action done" part=kube-actuator action=wake instance=llama-w`)
	if finished.PromotedReadyAt.IsZero() {
		t.Errorf("incident %+v restored without its promotion ready", finished)
	}
	if got := onlyIncident(t, readIncidents(t, incidentLogs[following])); got.ID != inFlight.ID || got.RestoredAt.IsZero() {
		t.Errorf("the new leader's incident log ends with %+v; want %s restored", got, inFlight.ID)
	}
	pod, err := admin.CoreV1().Pods(actuatorNamespace).Get(t.Context(), "llama-w", metav1.GetOptions{})
	if err != nil || pod.Labels[kubetopo.DefaultLabels().Tier] != "hot" {
		t.Errorf("the woken Pod: %v, labels %v; want tier hot", err, pod.Labels)
	}
}

// wakeFleet is a primary and a warm standby on one node with two GPUs,
// the primary holding one.
func wakeFleet(primary, warm topology.Instance) topology.Fleet {
	primary.Node, primary.GPUs = "gpu-node-1", []int{0}
	warm.Node, warm.Tier, warm.Role = "gpu-node-1", topology.TierWarm, topology.RoleStandby
	fleet := fleetOf(primary, warm)
	fleet.Nodes = []topology.Node{{Name: "gpu-node-1", Zone: "az-1", GPUs: []topology.GPU{
		{Index: 0, MemoryTotalMiB: 81920}, {Index: 1, MemoryTotalMiB: 81920},
	}}}
	return fleet
}

// sleepingPod is the warm instance's running Pod, as a kubelet reports it:
// on its node, at the modelsim's address and port.
func sleepingPod(t *testing.T, client kubernetes.Interface, in topology.Instance) {
	t.Helper()
	labels := kubetopo.DefaultLabels()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: in.Name, Namespace: actuatorNamespace, Labels: map[string]string{
			labels.Model: in.Model, labels.Tier: string(in.Tier), labels.Role: string(in.Role)}},
		Spec: corev1.PodSpec{NodeName: in.Node, Containers: []corev1.Container{{Name: "modelsim", Image: "modelsim:dev",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(in.Port)}}}}},
	}
	created, err := client.CoreV1().Pods(actuatorNamespace).Create(t.Context(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: in.Address}
	if _, err := client.CoreV1().Pods(actuatorNamespace).UpdateStatus(t.Context(), created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitPublished waits until the DR state the leader published holds an
// incident for which match is true, and returns it.
func waitPublished(t *testing.T, client kubernetes.Interface, match func(dr.Incident) bool) dr.Incident {
	t.Helper()
	var found dr.Incident
	err := poll(hangGuard, func() error {
		cm, err := client.CoreV1().ConfigMaps(replicaNamespace).Get(context.Background(), leader.DefaultStateConfigMap, metav1.GetOptions{})
		if err != nil {
			return err
		}
		var st dr.State
		if err := json.Unmarshal([]byte(cm.Data[leader.StateKey]), &st); err != nil {
			return err
		}
		for _, inc := range st.Incidents {
			if match(inc) {
				found = inc
				return nil
			}
		}
		return fmt.Errorf("no such incident published: %s", cm.Data[leader.StateKey])
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// sotwStream opens a state-of-the-world ADS stream to cp asking for every
// cluster as a proxy that holds version, and returns the responses the
// stream gets.
func sotwStream(t *testing.T, cp *controlPlane, version string) <-chan *discoveryv3.DiscoveryResponse {
	t.Helper()
	ads, ctx := dialADS(t, cp)
	stream, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: "proxy-sotw", Locality: &corev3.Locality{Zone: "az-1"}}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ClusterType, VersionInfo: version}); err != nil {
		t.Fatal(err)
	}
	out := make(chan *discoveryv3.DiscoveryResponse, 4)
	go func() {
		defer close(out)
		for {
			resp, err := stream.Recv()
			if err != nil {
				return
			}
			out <- resp
		}
	}()
	return out
}

func sotwResponse(t *testing.T, responses <-chan *discoveryv3.DiscoveryResponse) *discoveryv3.DiscoveryResponse {
	t.Helper()
	select {
	case resp, ok := <-responses:
		if !ok {
			t.Fatal("state-of-the-world stream closed")
		}
		return resp
	case <-time.After(hangGuard):
		t.Fatalf("no state-of-the-world response within %v", hangGuard)
		return nil
	}
}
