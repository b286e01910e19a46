package kube

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/inferxds/inferxds/topology"
	"github.com/inferxds/inferxds/topology/kube/kubetest"
)

// hangGuard bounds each wait for a fleet; it only stops a broken test.
const hangGuard = 30 * time.Second

type published struct {
	fleet *topology.Fleet
	err   error
}

// watchClient runs Watch with client and returns what it hands on.
func watchClient(t *testing.T, client kubernetes.Interface, namespaces ...string) <-chan published {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan published, 64)
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, Config{Client: client, Namespaces: namespaces}, func(f *topology.Fleet, err error) {
			out <- published{f, err}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	return out
}

func next(t *testing.T, fleets <-chan published) published {
	t.Helper()
	select {
	case p := <-fleets:
		return p
	case <-time.After(hangGuard):
		t.Fatal("no fleet was handed on")
		return published{}
	}
}

func TestWatchFollowsTheAPI(t *testing.T) {
	ctx := context.Background()
	pod := kubetest.Pod("llama-0", "n1", "10.0.0.1", model("llama"), kubetest.Ready(corev1.ConditionTrue))
	client := fake.NewClientset(kubetest.Node("n1", "az-1", 0), pod,
		kubetest.Slice("llama", nil, kubetest.ReadyEndpoint("llama-0", true)))
	fleets := watchClient(t, client, ns)

	first := next(t, fleets)
	if first.err != nil || len(first.fleet.Instances) != 1 || first.fleet.Instances[0].Health != topology.HealthServing {
		t.Fatalf("first fleet = %+v, %v; want llama-0 serving", first.fleet, first.err)
	}

	pod.Labels[DefaultTierLabel] = "warm"
	if _, err := client.CoreV1().Pods(ns).Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := next(t, fleets); got.fleet.Instances[0].Tier != topology.TierWarm {
		t.Fatalf("after relabelling: instance %+v, want tier warm", got.fleet.Instances[0])
	}

	slice, _ := client.DiscoveryV1().EndpointSlices(ns).Get(ctx, "llama", metav1.GetOptions{})
	slice.Endpoints[0].Conditions.Ready = new(false)
	if _, err := client.DiscoveryV1().EndpointSlices(ns).Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := next(t, fleets); got.fleet.Instances[0].Health != topology.HealthUnhealthy {
		t.Fatalf("after the endpoint turned not ready: instance %+v, want unhealthy", got.fleet.Instances[0])
	}

	// Neither a node heartbeat nor a Pod in an unwatched namespace changes
	// the fleet: the next one handed on is the deletion's.
	node, _ := client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	node.Status.Conditions[0].LastHeartbeatTime = metav1.Now()
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	elsewhere := kubetest.Pod("other-0", "n1", "10.0.0.2", model("llama"))
	elsewhere.Namespace = "elsewhere"
	if _, err := client.CoreV1().Pods("elsewhere").Create(ctx, elsewhere, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Pods(ns).Delete(ctx, "llama-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := next(t, fleets); len(got.fleet.Instances) != 0 {
		t.Fatalf("after the heartbeat, the other namespace's Pod and the deletion: %+v, want no instance", got.fleet.Instances)
	}
}

func TestWatchHandsOnProblemsBesideTheFleet(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset(kubetest.Node("n1", "az-1", 0),
		kubetest.Pod("good", "n1", "10.0.0.1", model("m")))
	fleets := watchClient(t, client)
	if first := next(t, fleets); first.err != nil || len(first.fleet.Instances) != 1 {
		t.Fatalf("first = %+v, %v; want one instance", first.fleet, first.err)
	}
	bad := kubetest.Pod("bad", "n1", "10.0.0.2", model("m"), kubetest.WithLabels(map[string]string{DefaultRoleLabel: "leader"}))
	if _, err := client.CoreV1().Pods(ns).Create(ctx, bad, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := next(t, fleets)
	checkProblems(t, got.err, []string{`pod inference/bad: label inferxds.io/role: must be primary or standby (got "leader")`})
	if got.fleet == nil || len(got.fleet.Instances) != 1 {
		t.Fatalf("fleet beside the problem = %+v, want the good instance", got.fleet)
	}
}

func TestNewSourceRefusesBadLabelKeys(t *testing.T) {
	_, err := NewSource(Config{Client: fake.NewClientset(), Options: Options{Labels: Labels{Model: "a b", Tier: "t", Role: "r"}}})
	if err == nil {
		t.Fatal("NewSource accepted a model label key with a space")
	}
}

func TestSetStandbyZonesHandsOnTheFleetItGives(t *testing.T) {
	client := fake.NewClientset(kubetest.Node("n1", "az-1", 1), kubetest.Node("n3", "az-3", 1))
	src, err := NewSource(Config{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, err := src.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if z, _ := first.Zone("az-3"); z.Role != topology.ZoneActive {
		t.Fatalf("az-3 before: %+v, want active", z)
	}
	fleets := make(chan *topology.Fleet, 4)
	go src.Run(ctx, func(f *topology.Fleet, _ error) { fleets <- f })
	src.SetStandbyZones([]string{"az-3"})
	select {
	case f := <-fleets:
		if z, _ := f.Zone("az-3"); z.Role != topology.ZoneStandby {
			t.Fatalf("az-3 after: %+v, want standby", z)
		}
	case <-time.After(hangGuard):
		t.Fatal("no fleet after SetStandbyZones")
	}
}

func TestPodSelectorNarrowsThePodsWatched(t *testing.T) {
	client := fake.NewClientset(kubetest.Node("n1", "az-1", 0),
		kubetest.Pod("picked", "n1", "10.0.0.1", map[string]string{DefaultModelLabel: "m", "team": "llm"}),
		kubetest.Pod("other", "n1", "10.0.0.2", map[string]string{DefaultModelLabel: "m"}))
	src, err := NewSource(Config{Client: client, PodSelector: "team=llm"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := src.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Instances) != 1 || f.Instances[0].Name != InstanceName(kubetest.Namespace, "picked") {
		t.Fatalf("instances = %+v, want only the selected Pod's", f.Instances)
	}
	if _, err := NewSource(Config{Client: client, PodSelector: "team in (llm"}); err == nil {
		t.Fatal("NewSource accepted a broken selector")
	}
}

func TestWatchFollowsDeploymentsScaledToZero(t *testing.T) {
	d := kubetest.Deployment("llama-cold-0", 1, coldLabels("llama"), kubetest.InZone("az-1"))
	client := fake.NewClientset(kubetest.Node("n1", "az-1", 0), d)
	fleets := watchClient(t, client, ns)
	if first := next(t, fleets); first.err != nil || len(first.fleet.Instances) != 0 {
		t.Fatalf("first fleet = %+v, %v; want no instance while the Deployment's Pod has not run", first.fleet, first.err)
	}

	d.Spec.Replicas = new(int32(0))
	if _, err := client.AppsV1().Deployments(ns).Update(context.Background(), d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []topology.Instance{coldStandby("llama-cold-0", "llama", "az-1")}
	if got := next(t, fleets); got.err != nil || !cmp.Equal(got.fleet.Instances, want) {
		t.Fatalf("after scaling to 0: %+v, %v; want %+v", got.fleet, got.err, want)
	}
}
