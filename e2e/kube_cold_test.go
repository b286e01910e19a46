package e2e

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/kubernetes"

	"github.com/inferxds/inferxds/drpolicy/actuator/kube"
	actuatortest "github.com/inferxds/inferxds/drpolicy/actuator/kube/kubetest"
	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/e2e/kubeenv"
	"github.com/inferxds/inferxds/topology"
	kubetopo "github.com/inferxds/inferxds/topology/kube"
	"github.com/inferxds/inferxds/topology/kube/kubetest"
)

// TestKubeColdStandbyDeploymentIsLoadedAndWoken: a user's Deployment of a
// model at 0 replicas is a cold standby in the fleet the Kubernetes source
// maps from a real API server; the actuator's load on that instance scales
// the Deployment to one replica and, once its Pod runs (kubetest plays the
// kubelet), the fleet shows the same instance warm at the Pod's address,
// then hot once woken; never twice.
func TestKubeColdStandbyDeploymentIsLoadedAndWoken(t *testing.T) {
	env := kubeenv.Start(t)
	client := kubernetes.NewForConfigOrDie(env.Config)
	ns := kubetest.Namespace
	createNamespace(t, client, ns)
	wakeUps, port := wakeUpCounter(t)
	cold := map[string]string{
		kubetopo.DefaultModelLabel: "llama", kubetopo.DefaultTierLabel: "cold", kubetopo.DefaultRoleLabel: "standby",
		kubetopo.DefaultInstanceLabel: "llama-cold-0",
	}
	deployment := kubetest.Deployment("llama-cold-0", 0, cold, kubetest.InZone("az-1"))
	deployment.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort = int32(port)
	kubetest.Create(t.Context(), t, client, kubetest.Node("gpu-1", "az-1", 8), deployment)
	fleets := watchKube(t, kubetopo.Config{Client: client, Namespaces: []string{ns}})

	want := topology.Instance{Name: "llama-cold-0", Model: "llama", Zone: "az-1", Tier: topology.TierCold, Role: topology.RoleStandby, Health: topology.HealthServing}
	if got := nextFleet(t, fleets).Instances; !cmp.Equal(got, []topology.Instance{want}) {
		t.Fatalf("first fleet's instances (-want +got):\n%s", cmp.Diff([]topology.Instance{want}, got))
	}

	actuatortest.StartKubelet(t, client, ns, "gpu-1", "127.0.0.1")
	act, err := kube.New(kube.Config{Client: client, Namespace: ns, PollInterval: pollInterval})
	if err != nil {
		t.Fatal(err)
	}
	doAction(t, act, dr.Action{Kind: dr.ActionLoad, Model: "llama", Instance: "llama-cold-0", Zone: "az-1", Tier: topology.TierWarm})
	want.Node, want.Address, want.Port, want.Tier = "gpu-1", "127.0.0.1", uint32(port), topology.TierWarm
	waitInstance(t, fleets, want)

	doAction(t, act, dr.Action{Kind: dr.ActionWake, Model: "llama", Instance: "llama-cold-0", Zone: "az-1", Node: "gpu-1", Tier: topology.TierHot})
	want.Tier = topology.TierHot
	waitInstance(t, fleets, want)
	if n := wakeUps.Load(); n != 1 {
		t.Errorf("%d POST /wake_up, want 1", n)
	}
}

// waitInstance waits for a fleet whose one instance is want: a fleet of
// none (the Deployment scaled up, its Pod not yet running) or of another
// state comes before it; one of two instances, the Deployment's and its
// Pod's, fails the test.
func waitInstance(t *testing.T, fleets <-chan *topology.Fleet, want topology.Instance) {
	t.Helper()
	for {
		got := nextFleet(t, fleets).Instances
		if len(got) > 1 {
			t.Fatalf("instances %+v; want one, %s", got, want.Name)
		}
		if len(got) == 1 && cmp.Equal(got[0], want) {
			return
		}
	}
}
