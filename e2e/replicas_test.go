package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/inferxds/inferxds/e2e/kubeenv"
	"github.com/inferxds/inferxds/internal/leader"
)

const (
	replicaNamespace = "inferxds-system"
	replicaLease     = 3 * time.Second
)

// TestReplicasServeTheSameVersionsAndHandOverTheLease runs two control
// planes against a real API server with --leader-elect. A proxy that
// moves from one replica to the other, naming the versions it has, is
// sent exactly those versions again (versions are content hashes), so it
// has nothing new to apply. (go-control-plane's Delta server answers a new
// wildcard stream in full even when it names its versions.) One replica
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
	moved := deltaVersions(t, dialDelta(t, b, "proxy-1", "az-1"), versions)
	if d := cmp.Diff(versions, moved); d != "" {
		t.Errorf("a proxy moved from one replica to the other was sent other versions (-first replica +second):\n%s", d)
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
