package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/inferxds/inferxds/e2e/kubeenv"
	"github.com/inferxds/inferxds/topology"
	"github.com/inferxds/inferxds/topology/kube"
	"github.com/inferxds/inferxds/topology/kube/kubetest"
)

// kubePolicy is twoModelPolicy with az-3 the standby zone.
var kubePolicy = twoModelPolicy + `az_failover:
  strategy: active-passive
  activeZones: ["az-1", "az-2"]
  standbyZone: "az-3"
  healthCheckInterval: 10s
  failoverThreshold: 3
`

// TestKubeSourceServesTheCluster: `serve --source kube` against a real
// kube-apiserver serves the Pods of the policy's models as endpoints, those
// on the policy's standby zone's Nodes behind the active zones'; a new
// ready Pod reaches a Delta ADS client as a pushed endpoint set, and so
// does relabelling it warm (out of EDS); a mislabelled Pod is reported and
// served once fixed. Pod change → push times are printed.
func TestKubeSourceServesTheCluster(t *testing.T) {
	env := kubeenv.Start(t)
	client := kubernetes.NewForConfigOrDie(env.Config)
	ctx := context.Background()
	kubetest.Create(ctx, t, client,
		kubetest.Node("gpu-1", "az-1", 8), kubetest.Node("gpu-2", "az-2", 8), kubetest.Node("gpu-3", "az-3", 8),
		modelPod("llama-a", "gpu-1", "llama-2-7b", 18001),
		modelPod("llama-c", "gpu-3", "llama-2-7b", 18003),
		modelPod("mistral-a", "gpu-2", "mistral-7b", 18002),
	)
	cp := startKubeControlPlane(t, env.Kubeconfig, kubePolicy)
	d := dialDelta(t, cp, "delta-client", "az-1")
	d.subscribeWildcard(t, resourcev3.ClusterType)
	d.subscribeWildcard(t, resourcev3.EndpointType)
	priorities := d.waitEndpoints(t, "llama-2-7b", 2)
	if priorities["az-1"] != 0 || priorities["az-3"] <= priorities["az-1"] {
		t.Fatalf("llama-2-7b priorities by zone for an az-1 proxy = %v; want az-1 first and the standby zone az-3 after it", priorities)
	}

	changed := time.Now()
	kubetest.Create(ctx, t, client, modelPod("llama-b", "gpu-2", "llama-2-7b", 18004))
	d.waitEndpoints(t, "llama-2-7b", 3)
	report(t, "kube pod-created-to-push=%v", time.Since(changed).Round(time.Millisecond))

	changed = time.Now()
	warm := []byte(`{"metadata":{"labels":{"` + kube.DefaultTierLabel + `":"warm"}}}`)
	if _, err := client.CoreV1().Pods(kubetest.Namespace).Patch(ctx, "llama-b", types.MergePatchType, warm, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	d.waitEndpoints(t, "llama-2-7b", 2)
	report(t, "kube pod-relabelled-to-push=%v", time.Since(changed).Round(time.Millisecond))

	// A Pod with a tier that means nothing is named in the log and /status
	// and left out; relabelled, it is served.
	kubetest.Create(ctx, t, client, modelPod("llama-d", "gpu-1", "llama-2-7b", 18005,
		kubetest.WithLabels(map[string]string{kube.DefaultTierLabel: "lukewarm"})))
	waitErrorReported(t, cp, "pod inference/llama-d", "label inferxds.io/tier: must be hot, warm or cold")
	hot := []byte(`{"metadata":{"labels":{"` + kube.DefaultTierLabel + `":"hot"}}}`)
	if _, err := client.CoreV1().Pods(kubetest.Namespace).Patch(ctx, "llama-d", types.MergePatchType, hot, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	d.waitEndpoints(t, "llama-2-7b", 3)
}

// TestKubeWatchFollowsTheAPIServer: Pods, Nodes and EndpointSlices created
// in a real kube-apiserver become the fleet; a relabelled Pod, an endpoint
// that turns not ready, a Pod being deleted (no kubelet finishes it) and
// one deleted for good each hand on the next fleet.
func TestKubeWatchFollowsTheAPIServer(t *testing.T) {
	env := kubeenv.Start(t)
	client := kubernetes.NewForConfigOrDie(env.Config)
	ctx := context.Background()
	llama := map[string]string{kube.DefaultModelLabel: "llama"}
	kubetest.Create(ctx, t, client,
		kubetest.Node("gpu-1", "az-1", 8, kube.GPUProductLabel, "NVIDIA-H100-80GB-HBM3"),
		kubetest.Node("gpu-3", "az-3", 8, kube.ZoneRoleLabel, "standby"),
		kubetest.Pod("llama-0", "gpu-1", "10.1.0.1", llama, kubetest.RequestingGPUs(2)),
		kubetest.Pod("llama-1", "gpu-3", "10.1.0.2", llama, kubetest.RequestingGPUs(1),
			kubetest.WithLabels(map[string]string{kube.DefaultRoleLabel: "standby"})),
		kubetest.Slice("llama", []discoveryv1.EndpointPort{kubetest.Port("http", 8000)},
			kubetest.ReadyEndpoint("llama-0", true), kubetest.ReadyEndpoint("llama-1", true)),
	)
	fleets := watchKube(t, kube.Config{Client: client, Namespaces: []string{kubetest.Namespace}})

	first := nextFleet(t, fleets)
	if z, _ := first.Zone("az-3"); z.Role != topology.ZoneStandby {
		t.Errorf("zone az-3 = %+v, want standby as its node says", z)
	}
	primary, standby := first.Instances[0], first.Instances[1]
	if primary.Role != topology.RolePrimary || primary.Health != topology.HealthServing || len(primary.GPUs) != 2 ||
		standby.Role != topology.RoleStandby || standby.Zone != "az-3" || len(standby.GPUs) != 1 {
		t.Fatalf("first fleet's instances = %+v; want llama-0 a serving primary on 2 GPUs, llama-1 a standby in az-3 on 1", first.Instances)
	}

	pods := client.CoreV1().Pods(kubetest.Namespace)
	warm := []byte(`{"metadata":{"labels":{"` + kube.DefaultTierLabel + `":"warm"}}}`)
	if _, err := pods.Patch(ctx, "llama-1", types.MergePatchType, warm, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := nextFleet(t, fleets); got.Instances[1].Tier != topology.TierWarm {
		t.Fatalf("after relabelling llama-1 warm: %+v", got.Instances[1])
	}

	endpointSlices := client.DiscoveryV1().EndpointSlices(kubetest.Namespace)
	slice, err := endpointSlices.Get(ctx, "llama", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	slice.Endpoints[0].Conditions.Ready = new(false)
	if _, err := endpointSlices.Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := nextFleet(t, fleets); got.Instances[0].Health != topology.HealthUnhealthy {
		t.Fatalf("after llama-0's endpoint turned not ready: %+v", got.Instances[0])
	}

	if err := pods.Delete(ctx, "llama-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := nextFleet(t, fleets); got.Instances[0].Health != topology.HealthDraining {
		t.Fatalf("while llama-0 is being deleted: %+v, want draining", got.Instances[0])
	}
	if err := pods.Delete(ctx, "llama-0", metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
		t.Fatal(err)
	}
	if got := nextFleet(t, fleets); len(got.Instances) != 1 || got.Instances[0].Name != kube.InstanceName(kubetest.Namespace, "llama-1") {
		t.Fatalf("after llama-0 was deleted: %+v, want only llama-1", got.Instances)
	}
}

// watchKube runs kube.Watch until the test ends and returns the fleets it
// hands on; a fleet with problems fails the test.
func watchKube(t *testing.T, cfg kube.Config) <-chan *topology.Fleet {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	fleets := make(chan *topology.Fleet, 16)
	done := make(chan error, 1)
	go func() {
		done <- kube.Watch(ctx, cfg, func(f *topology.Fleet, err error) {
			if err != nil {
				t.Errorf("fleet problems: %v", err)
			}
			fleets <- f
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("kube.Watch: %v", err)
		}
	})
	return fleets
}

func nextFleet(t *testing.T, fleets <-chan *topology.Fleet) *topology.Fleet {
	t.Helper()
	select {
	case f := <-fleets:
		if f == nil {
			t.Fatal("no fleet could be mapped")
		}
		return f
	case <-time.After(hangGuard):
		t.Fatal("no fleet was handed on")
		return nil
	}
}

// modelPod is a ready, hot, primary Pod of model whose server listens on
// 127.0.0.1:port (no traffic is sent to it).
func modelPod(name, node, model string, port int, opts ...kubetest.PodOption) *corev1.Pod {
	opts = append([]kubetest.PodOption{kubetest.Annotated(kube.PortAnnotation, strconv.Itoa(port)), kubetest.Ready(corev1.ConditionTrue)}, opts...)
	return kubetest.Pod(name, node, "127.0.0.1", map[string]string{kube.DefaultModelLabel: model}, opts...)
}

// startKubeControlPlane starts `serve --source kube` with policy, watching
// the API server kubeconfig names, and waits until it listens.
func startKubeControlPlane(t testing.TB, kubeconfig, policy string, args ...string) *controlPlane {
	t.Helper()
	dir := t.TempDir()
	cp := &controlPlane{policyPath: filepath.Join(dir, "policy", "models.yaml")}
	if err := os.Mkdir(filepath.Dir(cp.policyPath), 0o755); err != nil {
		t.Fatal(err)
	}
	cp.writePolicy(t, policy)
	ready := filepath.Join(dir, "ready.json")
	serveArgs := []string{"serve", "--insecure",
		"--source", "kube", "--kubeconfig", kubeconfig, "--kube-namespaces", kubetest.Namespace,
		"--policy-dir", filepath.Dir(cp.policyPath),
		"--xds-address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0", "--envoy-listen-address", "127.0.0.1:0",
		"--ready-file", ready}
	cp.proc = startProcess(t, "inferxds serve --source kube", binaries.inferxds, append(serveArgs, args...)...)
	cp.proc.readReadyFile(t, ready, cp)
	return cp
}

// waitEndpoints ACKs responses until one carries cluster's endpoint set
// with n endpoints, and returns the priority of each zone's locality in it.
func (d *deltaClient) waitEndpoints(t *testing.T, cluster string, n int) map[string]uint32 {
	t.Helper()
	for {
		resp := d.next(t, hangGuard)
		d.ack(t, resp)
		if cla := endpointSet(t, resp, cluster); cla != nil && endpointTotal(cla) == n {
			priorities := map[string]uint32{}
			for _, l := range cla.GetEndpoints() {
				priorities[l.GetLocality().GetZone()] = l.GetPriority()
			}
			return priorities
		}
	}
}

// endpointSet is cluster's endpoint set in resp; nil when resp does not
// carry it.
func endpointSet(t *testing.T, resp *discoveryv3.DeltaDiscoveryResponse, cluster string) *endpointv3.ClusterLoadAssignment {
	t.Helper()
	for _, r := range resp.GetResources() {
		if resp.GetTypeUrl() != resourcev3.EndpointType || r.GetName() != cluster {
			continue
		}
		var cla endpointv3.ClusterLoadAssignment
		if err := r.GetResource().UnmarshalTo(&cla); err != nil {
			t.Fatalf("endpoint set %s: %v", cluster, err)
		}
		return &cla
	}
	return nil
}

func endpointTotal(cla *endpointv3.ClusterLoadAssignment) int {
	n := 0
	for _, l := range cla.GetEndpoints() {
		n += len(l.GetLbEndpoints())
	}
	return n
}
