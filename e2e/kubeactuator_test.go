package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/inferxds/inferxds/drpolicy/actuator/kube"
	"github.com/inferxds/inferxds/drpolicy/actuator/kube/kubetest"
	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/e2e/kubeenv"
	"github.com/inferxds/inferxds/topology"
	kubetopo "github.com/inferxds/inferxds/topology/kube"
)

const actuatorNamespace = "models"

// TestKubeActuatorAgainstTheAPIServer carries out the DR planner's
// actions on a real API server, which (unlike client-go's fake) versions
// and validates what is applied: each action is accepted, and each
// replayed writes nothing, so no resourceVersion changes. The test plays
// the controller manager, scheduler and kubelet (kubetest), and the woken
// model server is an HTTP server counting POST /wake_up.
func TestKubeActuatorAgainstTheAPIServer(t *testing.T) {
	env := kubeenv.Start(t)
	client := kubernetes.NewForConfigOrDie(env.Config)
	createNamespace(t, client, actuatorNamespace)
	wakeUps, port := wakeUpCounter(t)
	kubetest.StartKubelet(t, client, actuatorNamespace, "gpu-node-1", "127.0.0.1")
	act := newKubeActuator(t, client, port)

	steps := []dr.Action{
		{Kind: dr.ActionCreate, Model: "llama", Instance: "llama-cold-1", Zone: "az-1", Tier: topology.TierCold},
		{Kind: dr.ActionLoad, Model: "llama", Instance: "llama-cold-1", Zone: "az-1", Tier: topology.TierWarm},
		{Kind: dr.ActionWake, Model: "llama", Instance: "llama-cold-1", Zone: "az-1", Node: "gpu-node-1", GPUs: []int{0}, Tier: topology.TierHot},
		{Kind: dr.ActionCreate, Model: "llama", Instance: "llama-emergency-1", Zone: "az-2", Node: "gpu-node-7", GPUs: []int{0, 1},
			Tier: topology.TierHot, Emergency: true},
		{Kind: dr.ActionStop, Model: "llama", Instance: "llama-emergency-1", Tier: topology.TierCold},
		{Kind: dr.ActionStop, Model: "llama", Instance: "llama-cold-1", Tier: topology.TierCold},
	}
	for _, a := range steps {
		first := doAction(t, act, a)
		if a.Kind == dr.ActionStop {
			kubetest.WaitNoPod(t, client, actuatorNamespace, kubetopo.DefaultInstanceLabel+"="+a.Instance)
		}
		kubetest.Unchanged(t, client, actuatorNamespace, "replayed "+string(a.Kind), func() {
			if again := doAction(t, act, a); !cmp.Equal(again, first) {
				t.Errorf("replayed %s answered differently (-first +replay):\n%s", a.Kind, cmp.Diff(first, again))
			}
		})
	}
	if n := wakeUps.Load(); n != 1 {
		t.Errorf("%d POST /wake_up, want 1", n)
	}
	d, err := client.AppsV1().Deployments(actuatorNamespace).Get(context.Background(), "llama-cold-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 0 || d.Labels[kubetopo.DefaultLabels().Tier] != "cold" {
		t.Errorf("Deployment after stop: %d replicas, labels %v; want 0, tier cold", *d.Spec.Replicas, d.Labels)
	}
	for _, f := range d.ManagedFields {
		if f.Operation == metav1.ManagedFieldsOperationApply && f.Manager != kube.FieldManager {
			t.Errorf("applied by field manager %q, want %q", f.Manager, kube.FieldManager)
		}
	}
}

// createNamespace makes a namespace with the default ServiceAccount Pods
// need, which a controller manager would make.
func createNamespace(t *testing.T, client kubernetes.Interface, name string) {
	t.Helper()
	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: name}}
	if _, err := client.CoreV1().ServiceAccounts(name).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// wakeUpCounter is a model server's sleep-mode endpoint on 127.0.0.1: it
// counts POST /wake_up.
func wakeUpCounter(t *testing.T) (*atomic.Int32, int) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/wake_up" {
			n.Add(1)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	_, portText, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portText)
	return &n, port
}

// newKubeActuator is an actuator whose default Pod template serves on port.
func newKubeActuator(t *testing.T, client kubernetes.Interface, port int) *kube.Actuator {
	t.Helper()
	dir := t.TempDir()
	template := fmt.Sprintf("spec:\n  containers:\n  - name: server\n    image: modelsim:dev\n    ports:\n    - name: http\n      containerPort: %d\n", port)
	if err := os.WriteFile(filepath.Join(dir, kube.DefaultTemplate), []byte(template), 0o644); err != nil {
		t.Fatal(err)
	}
	act, err := kube.New(kube.Config{Client: client, Namespace: actuatorNamespace, Templates: kube.Templates{Dir: dir}, PollInterval: pollInterval})
	if err != nil {
		t.Fatal(err)
	}
	return act
}

func doAction(t *testing.T, act dr.Actuator, a dr.Action) topology.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // hang guard
	defer cancel()
	in, err := act.Do(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return in
}
