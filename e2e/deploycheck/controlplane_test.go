package deploycheck

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/inferxds/inferxds/drpolicy/actuator/kube"
	"github.com/inferxds/inferxds/drpolicy/actuator/kube/kubetest"
	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/e2e/kubeenv"
	"github.com/inferxds/inferxds/internal/hub"
	"github.com/inferxds/inferxds/internal/leader"
	"github.com/inferxds/inferxds/topology"
)

// Namespaces of base: the model Pods', and the control plane's own.
const (
	modelNamespace        = "inference"
	controlPlaneNamespace = "inferxds-system"
)

// TestServeServiceAccountLeadsAndActuates runs the Kubernetes actuator and
// the leader election as serve's ServiceAccount, with base's RBAC: every
// DR action on the model namespace succeeds, the Lease is taken and the DR
// state published; what the control plane does not need is refused.
func TestServeServiceAccountLeadsAndActuates(t *testing.T) {
	env := kubeenv.Start(t)
	applyBaseRBAC(t, env.Config)
	admin := kubernetes.NewForConfigOrDie(env.Config)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: modelNamespace}}
	if _, err := admin.CoreV1().ServiceAccounts(modelNamespace).Create(t.Context(), sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	rest, err := clientcmd.BuildConfigFromFlags("", impersonating(t, env.Kubeconfig))
	if err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(rest)

	port := wakeUpServer(t)
	kubetest.StartKubelet(t, admin, modelNamespace, "gpu-node-1", "127.0.0.1")
	act := actuatorOn(t, client, port)
	for _, a := range []dr.Action{
		{Kind: dr.ActionCreate, Model: "llama-2-7b", Instance: "llama-2-7b-cold-1", Zone: "az-1", Tier: topology.TierCold},
		{Kind: dr.ActionLoad, Model: "llama-2-7b", Instance: "llama-2-7b-cold-1", Zone: "az-1", Tier: topology.TierWarm},
		{Kind: dr.ActionWake, Model: "llama-2-7b", Instance: "llama-2-7b-cold-1", Node: "gpu-node-1", GPUs: []int{0}, Tier: topology.TierHot},
		{Kind: dr.ActionCreate, Model: "llama-2-7b", Instance: "llama-2-7b-emergency-1", Node: "gpu-node-1", GPUs: []int{1},
			Tier: topology.TierHot, Emergency: true},
		{Kind: dr.ActionStop, Model: "llama-2-7b", Instance: "llama-2-7b-emergency-1", Tier: topology.TierCold},
		{Kind: dr.ActionStop, Model: "llama-2-7b", Instance: "llama-2-7b-cold-1", Tier: topology.TierCold},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // hang guard
		_, err := act.Do(ctx, a)
		cancel()
		if err != nil {
			t.Fatalf("as serve's ServiceAccount: %v", err)
		}
	}

	h := hub.New(nil)
	elector, err := leader.New(leader.Config{Client: client, Namespace: controlPlaneNamespace, LeaseDuration: 2 * time.Second, Hub: h})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- elector.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })
	h.DR.Publish(&dr.State{Incidents: []dr.Incident{{ID: "llama-2-7b/llama-2-7b-a/1", Model: "llama-2-7b", Failure: dr.FailureProcessCrash}}})
	waitForState(t, admin)

	forbidden := map[string]error{
		"delete a model Deployment": client.AppsV1().Deployments(modelNamespace).Delete(t.Context(), "llama-2-7b-cold-1", metav1.DeleteOptions{}),
		"list Secrets":              listErr(client.CoreV1().Secrets(controlPlaneNamespace).List(t.Context(), metav1.ListOptions{})),
		"list ReplicaSets":          listErr(client.AppsV1().ReplicaSets(modelNamespace).List(t.Context(), metav1.ListOptions{})),
	}
	for what, err := range forbidden {
		if !apierrors.IsForbidden(err) {
			t.Errorf("serve's ServiceAccount may %s: %v, want forbidden", what, err)
		}
	}
}

func listErr(_ any, err error) error { return err }

// waitForState waits until the DR state ConfigMap holds a state.
func waitForState(t *testing.T, client kubernetes.Interface) {
	t.Helper()
	deadline := time.After(time.Minute) // hang guard
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		cm, err := client.CoreV1().ConfigMaps(controlPlaneNamespace).Get(t.Context(), leader.DefaultStateConfigMap, metav1.GetOptions{})
		if err == nil && cm.Data[leader.StateKey] != "" {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("no DR state published as serve's ServiceAccount: %v", err)
		case <-tick.C:
		}
	}
}

// wakeUpServer answers POST /wake_up on 127.0.0.1 and returns its port.
func wakeUpServer(t *testing.T) int {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	n, _ := strconv.Atoi(port)
	return n
}

func actuatorOn(t *testing.T, client kubernetes.Interface, port int) *kube.Actuator {
	t.Helper()
	dir := t.TempDir()
	template := "spec:\n  containers:\n  - name: server\n    image: modelsim:dev\n    ports:\n    - name: http\n      containerPort: " + strconv.Itoa(port) + "\n"
	if err := os.WriteFile(filepath.Join(dir, kube.DefaultTemplate), []byte(template), 0o644); err != nil {
		t.Fatal(err)
	}
	act, err := kube.New(kube.Config{Client: client, Namespace: modelNamespace, Templates: kube.Templates{Dir: dir}, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return act
}
