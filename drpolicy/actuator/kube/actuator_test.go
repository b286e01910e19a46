package kube

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
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/inferxds/inferxds/drpolicy/actuator/kube/kubetest"
	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/topology"
	kubetopo "github.com/inferxds/inferxds/topology/kube"
)

const ns = "models"

// modelServer is a model server's sleep-mode endpoint: it counts wake-ups.
type modelServer struct {
	port   int
	wakeUp atomic.Int32
}

func newModelServer(t *testing.T) *modelServer {
	m := &modelServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/wake_up" {
			m.wakeUp.Add(1)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	m.port, _ = strconv.Atoi(port)
	return m
}

// setup returns an actuator on a fake API server where a fake kubelet
// runs Pods on gpu-node-1 at 127.0.0.1, with a default template whose
// model server listens on port.
func setup(t *testing.T, port int) (*Actuator, kubernetes.Interface) {
	t.Helper()
	client := fake.NewClientset()
	return newActuator(t, client, port), client
}

// newActuator is an actuator on client, as setup describes.
func newActuator(t *testing.T, client kubernetes.Interface, port int) *Actuator {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, DefaultTemplate), fmt.Sprintf(`metadata:
  labels:
    app: model-server
spec:
  containers:
  - name: server
    image: modelsim:dev
    ports:
    - name: http
      containerPort: %d
`, port))
	kubetest.StartKubelet(t, client, ns, "gpu-node-1", "127.0.0.1")
	act, err := New(Config{Client: client, Namespace: ns, Templates: Templates{Dir: dir}, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return act
}

func writeFile(t *testing.T, file, text string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func do(t *testing.T, act *Actuator, a dr.Action) topology.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // hang guard
	defer cancel()
	in, err := act.Do(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func getDeployment(t *testing.T, c kubernetes.Interface, name string) *appsv1.Deployment {
	t.Helper()
	d, err := c.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func podOf(t *testing.T, c kubernetes.Interface, instance string) *corev1.Pod {
	t.Helper()
	pods, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: kubetopo.DefaultInstanceLabel + "=" + instance})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("pods of %s: %v, %d found", instance, err, len(pods.Items))
	}
	return &pods.Items[0]
}

func replayChangesNothing(t *testing.T, act *Actuator, c kubernetes.Interface, a dr.Action, first topology.Instance) {
	t.Helper()
	kubetest.Unchanged(t, c, ns, "replayed "+string(a.Kind), func() {
		if again := do(t, act, a); !cmp.Equal(again, first) {
			t.Errorf("replayed %s answered differently (-first +replay):\n%s", a.Kind, cmp.Diff(first, again))
		}
	})
}

func waitNoPod(t *testing.T, c kubernetes.Interface, instance string) {
	t.Helper()
	kubetest.WaitNoPod(t, c, ns, kubetopo.DefaultInstanceLabel+"="+instance)
}

var coldCreate = dr.Action{Kind: dr.ActionCreate, Model: "llama", Instance: "llama-cold-1", Zone: "az-1", Tier: topology.TierCold}

func TestCreateColdStandbyIsADeploymentAtZeroReplicasInItsZone(t *testing.T) {
	act, c := setup(t, 8000)
	got := do(t, act, coldCreate)
	want := topology.Instance{Name: "llama-cold-1", Model: "llama", Zone: "az-1", Tier: topology.TierCold, Role: topology.RoleStandby}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("instance (-want +got):\n%s", d)
	}
	d := getDeployment(t, c, "llama-cold-1")
	if *d.Spec.Replicas != 0 {
		t.Errorf("replicas %d, want 0", *d.Spec.Replicas)
	}
	wantLabels := map[string]string{"inferxds.io/model": "llama", "inferxds.io/tier": "cold", "inferxds.io/role": "standby", "inferxds.io/instance": "llama-cold-1"}
	if diff := cmp.Diff(wantLabels, d.Labels); diff != "" {
		t.Errorf("Deployment labels (-want +got):\n%s", diff)
	}
	tmpl := d.Spec.Template
	if tmpl.Labels["app"] != "model-server" || tmpl.Labels["inferxds.io/tier"] != "warm" {
		t.Errorf("template labels %v: want the template's app label and tier warm (a loaded cold standby starts asleep)", tmpl.Labels)
	}
	if env := tmpl.Spec.Containers[0].Env; len(env) != 1 || env[0] != (corev1.EnvVar{Name: TierEnv, Value: "warm"}) {
		t.Errorf("container env %v, want %s=warm", env, TierEnv)
	}
	term := tmpl.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0]
	if e := term.MatchExpressions[0]; e.Key != kubetopo.ZoneLabel || e.Values[0] != "az-1" {
		t.Errorf("node affinity %+v, want zone az-1", e)
	}
	replayChangesNothing(t, act, c, coldCreate, got)
}

func TestLoadScalesTheColdDeploymentToOneAndAnswersWithItsPod(t *testing.T) {
	act, c := setup(t, 8000)
	do(t, act, coldCreate)
	load := dr.Action{Kind: dr.ActionLoad, Model: "llama", Instance: "llama-cold-1", Zone: "az-1", Tier: topology.TierWarm}
	got := do(t, act, load)
	want := topology.Instance{Name: "llama-cold-1", Model: "llama", Zone: "az-1", Node: "gpu-node-1", Address: "127.0.0.1", Port: 8000,
		Tier: topology.TierWarm, Role: topology.RoleStandby}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("instance (-want +got):\n%s", d)
	}
	d := getDeployment(t, c, "llama-cold-1")
	if *d.Spec.Replicas != 1 || d.Labels["inferxds.io/tier"] != "warm" {
		t.Errorf("Deployment replicas %d, tier %q; want 1, warm", *d.Spec.Replicas, d.Labels["inferxds.io/tier"])
	}
	replayChangesNothing(t, act, c, load, got)
}

// A Deployment the user declared keeps what the user wrote: the actuator
// applies only the replica count and the tier label.
func TestLoadOfAUserDeclaredDeploymentKeepsItsSpec(t *testing.T) {
	act, c := setup(t, 8000)
	one := int32(0)
	user := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "llama-standby-0", Namespace: ns, Labels: map[string]string{"app": "llama", "standby-type": "cold"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"inferxds.io/instance": "llama-standby-0"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"inferxds.io/instance": "llama-standby-0"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "vllm", Image: "vllm:0.11", Ports: []corev1.ContainerPort{{ContainerPort: 9000}}}}},
			},
		},
	}
	if _, err := c.AppsV1().Deployments(ns).Create(context.Background(), user, metav1.CreateOptions{FieldManager: "kubectl"}); err != nil {
		t.Fatal(err)
	}
	got := do(t, act, dr.Action{Kind: dr.ActionLoad, Model: "llama", Instance: "llama-standby-0", Tier: topology.TierWarm})
	if got.Port != 9000 || got.Address != "127.0.0.1" {
		t.Errorf("loaded instance at %s:%d, want 127.0.0.1:9000", got.Address, got.Port)
	}
	d := getDeployment(t, c, "llama-standby-0")
	if c := d.Spec.Template.Spec.Containers; len(c) != 1 || c[0].Image != "vllm:0.11" {
		t.Errorf("containers %+v: the user's template changed", c)
	}
	if d.Labels["app"] != "llama" || d.Labels["inferxds.io/tier"] != "warm" || *d.Spec.Replicas != 1 {
		t.Errorf("labels %v replicas %d: want the user's labels, tier warm, 1 replica", d.Labels, *d.Spec.Replicas)
	}
}

func TestWakePostsWakeUpToThePodAndLabelsItHot(t *testing.T) {
	server := newModelServer(t)
	act, c := setup(t, server.port)
	do(t, act, coldCreate)
	do(t, act, dr.Action{Kind: dr.ActionLoad, Model: "llama", Instance: "llama-cold-1", Zone: "az-1", Tier: topology.TierWarm})
	wake := dr.Action{Kind: dr.ActionWake, Model: "llama", Instance: "llama-cold-1", Zone: "az-1", Node: "gpu-node-1", GPUs: []int{3}, Tier: topology.TierHot}
	got := do(t, act, wake)
	if server.wakeUp.Load() != 1 {
		t.Errorf("%d POST /wake_up, want 1", server.wakeUp.Load())
	}
	want := topology.Instance{Name: "llama-cold-1", Model: "llama", Zone: "az-1", Node: "gpu-node-1", GPUs: []int{3}, Address: "127.0.0.1",
		Port: uint32(server.port), Tier: topology.TierHot, Role: topology.RoleStandby, Health: topology.HealthServing}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("instance (-want +got):\n%s", d)
	}
	if tier := podOf(t, c, "llama-cold-1").Labels["inferxds.io/tier"]; tier != "hot" {
		t.Errorf("pod tier label %q, want hot", tier)
	}
	d := getDeployment(t, c, "llama-cold-1")
	if d.Labels["inferxds.io/tier"] != "hot" || d.Spec.Template.Labels["inferxds.io/tier"] != "warm" {
		t.Errorf("Deployment tier %q, template tier %q: want hot, and the template unchanged (warm) so the Pod is not restarted",
			d.Labels["inferxds.io/tier"], d.Spec.Template.Labels["inferxds.io/tier"])
	}
	replayChangesNothing(t, act, c, wake, got)
	if server.wakeUp.Load() != 1 {
		t.Errorf("a replayed wake posted /wake_up again (%d in all)", server.wakeUp.Load())
	}
}

func TestWakeOnAnotherNodeThanThePodSleepsOnFails(t *testing.T) {
	server := newModelServer(t)
	act, _ := setup(t, server.port)
	do(t, act, coldCreate)
	do(t, act, dr.Action{Kind: dr.ActionLoad, Model: "llama", Instance: "llama-cold-1", Tier: topology.TierWarm})
	_, err := act.Do(context.Background(), dr.Action{Kind: dr.ActionWake, Model: "llama", Instance: "llama-cold-1", Node: "gpu-node-9", Tier: topology.TierHot})
	if err == nil || server.wakeUp.Load() != 0 {
		t.Fatalf("wake on gpu-node-9 of a Pod on gpu-node-1: err %v, %d wake-ups; want an error and none", err, server.wakeUp.Load())
	}
	t.Log(err)
}

var emergency = dr.Action{Kind: dr.ActionCreate, Model: "llama", Instance: "llama-emergency-1", Zone: "az-2", Node: "gpu-node-7",
	GPUs: []int{0, 1}, Tier: topology.TierHot, Emergency: true}

func TestEmergencyInstanceIsAPodOnThePlacedNodeWithItsGPUs(t *testing.T) {
	act, c := setup(t, 8000)
	got := do(t, act, emergency)
	want := topology.Instance{Name: "llama-emergency-1", Model: "llama", Zone: "az-2", Node: "gpu-node-7", GPUs: []int{0, 1},
		Address: "127.0.0.1", Port: 8000, Tier: topology.TierHot, Role: topology.RolePrimary, Health: topology.HealthServing}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("instance (-want +got):\n%s", d)
	}
	pod, err := c.CoreV1().Pods(ns).Get(context.Background(), "llama-emergency-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pod.OwnerReferences) != 0 || pod.Labels["inferxds.io/role"] != "primary" || pod.Labels["inferxds.io/tier"] != "hot" {
		t.Errorf("owners %v labels %v: want a bare Pod labelled primary, hot", pod.OwnerReferences, pod.Labels)
	}
	term := pod.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0]
	if f := term.MatchFields[0]; f.Key != "metadata.name" || f.Values[0] != "gpu-node-7" {
		t.Errorf("node affinity %+v, want metadata.name in gpu-node-7", f)
	}
	res := pod.Spec.Containers[0].Resources
	two := resource.MustParse("2")
	if !res.Requests[kubetopo.GPUResource].Equal(two) || !res.Limits[kubetopo.GPUResource].Equal(two) {
		t.Errorf("resources %+v, want 2 %s requested and limited", res, kubetopo.GPUResource)
	}
	replayChangesNothing(t, act, c, emergency, got)
}

func TestStopScalesADeploymentToZeroAndDeletesAnEmergencyPod(t *testing.T) {
	act, c := setup(t, 8000)
	do(t, act, coldCreate)
	do(t, act, dr.Action{Kind: dr.ActionLoad, Model: "llama", Instance: "llama-cold-1", Tier: topology.TierWarm})
	do(t, act, emergency)

	stopDeployment := dr.Action{Kind: dr.ActionStop, Model: "llama", Instance: "llama-cold-1", Zone: "az-1", Tier: topology.TierCold}
	got := do(t, act, stopDeployment)
	if got.Tier != topology.TierCold {
		t.Errorf("stopped instance tier %q, want cold", got.Tier)
	}
	d := getDeployment(t, c, "llama-cold-1")
	if *d.Spec.Replicas != 0 || d.Labels["inferxds.io/tier"] != "cold" {
		t.Errorf("Deployment replicas %d tier %q, want 0, cold", *d.Spec.Replicas, d.Labels["inferxds.io/tier"])
	}
	waitNoPod(t, c, "llama-cold-1")
	stopPod := dr.Action{Kind: dr.ActionStop, Model: "llama", Instance: "llama-emergency-1", Tier: topology.TierCold}
	got = do(t, act, stopPod)
	if _, err := c.CoreV1().Pods(ns).Get(context.Background(), "llama-emergency-1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("emergency Pod after stop: %v, want not found", err)
	}
	replayChangesNothing(t, act, c, stopPod, got)
}

func TestAnInstanceDeploymentOfSeveralReplicasIsRefused(t *testing.T) {
	act, c := setup(t, 8000)
	do(t, act, coldCreate)
	d := getDeployment(t, c, "llama-cold-1")
	three := int32(3)
	d.Spec.Replicas = &three
	if _, err := c.AppsV1().Deployments(ns).Update(context.Background(), d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := act.Do(context.Background(), dr.Action{Kind: dr.ActionStop, Model: "llama", Instance: "llama-cold-1", Tier: topology.TierCold})
	if err == nil {
		t.Fatal("stop of a 3-replica Deployment succeeded; it would stop three instances")
	}
	t.Log(err)
}

func TestStateOnlyActionsAreRefused(t *testing.T) {
	act, _ := setup(t, 8000)
	if _, err := act.Do(context.Background(), dr.Action{Kind: dr.ActionPromote, Instance: "x"}); err == nil {
		t.Fatal("promote reached the actuator and succeeded")
	}
}

// userStandby declares what a user's manifests make: a Deployment
// "vllm-standby", its ReplicaSet's running warm Pod listening on port,
// and returns the instance name the Kubernetes source gives the Pod.
func userStandby(t *testing.T, c kubernetes.Interface, port int) string {
	t.Helper()
	ctx := context.Background()
	sel := map[string]string{"app": "vllm-standby"}
	one := int32(1)
	_, err := c.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "vllm-standby", Namespace: ns},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "vllm", Image: "vllm:0.11"}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	controller := func(kind, name string, uid types.UID) []metav1.OwnerReference {
		yes := true
		return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: uid, Controller: &yes}}
	}
	pod, err := c.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "vllm-standby-5d4f-x7k2p", Namespace: ns, OwnerReferences: controller("ReplicaSet", "vllm-standby-5d4f", "rs-uid"),
			Labels: map[string]string{"app": "vllm-standby", appsv1.DefaultDeploymentUniqueLabelKey: "5d4f",
				"inferxds.io/model": "llama", "inferxds.io/tier": "warm", "inferxds.io/role": "standby"}},
		Spec: corev1.PodSpec{NodeName: "gpu-node-1", Containers: []corev1.Container{{Name: "vllm", Image: "vllm:0.11",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1"}
	if _, err := c.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return pod.Name + "." + ns
}

// Instances the Kubernetes source lists are named "<pod>.<namespace>";
// their Pod is woken and their Deployment, named by the Pod's ReplicaSet,
// scaled.
func TestInstancesTheSourceNamesAreFoundThroughTheirPod(t *testing.T) {
	server := newModelServer(t)
	act, c := setup(t, 8000)
	instance := userStandby(t, c, server.port)

	do(t, act, dr.Action{Kind: dr.ActionWake, Model: "llama", Instance: instance, Node: "gpu-node-1", Tier: topology.TierHot})
	if server.wakeUp.Load() != 1 {
		t.Errorf("%d POST /wake_up, want 1", server.wakeUp.Load())
	}
	pod, err := c.CoreV1().Pods(ns).Get(context.Background(), "vllm-standby-5d4f-x7k2p", metav1.GetOptions{})
	if err != nil || pod.Labels["inferxds.io/tier"] != "hot" {
		t.Fatalf("pod after wake: %v, labels %v; want tier hot", err, pod.Labels)
	}
	if d := getDeployment(t, c, "vllm-standby"); d.Labels["inferxds.io/tier"] != "hot" {
		t.Errorf("Deployment labels %v, want tier hot", d.Labels)
	}

	do(t, act, dr.Action{Kind: dr.ActionStop, Model: "llama", Instance: instance, Tier: topology.TierCold})
	if d := getDeployment(t, c, "vllm-standby"); *d.Spec.Replicas != 0 || d.Spec.Template.Spec.Containers[0].Image != "vllm:0.11" {
		t.Errorf("Deployment after stop: %d replicas, template %+v; want 0 and the user's template", *d.Spec.Replicas, d.Spec.Template.Spec)
	}
}
