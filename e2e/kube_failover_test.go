package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/inferxds/inferxds/e2e/kubeenv"
	"github.com/inferxds/inferxds/topology/kube"
	"github.com/inferxds/inferxds/topology/kube/kubetest"
)

// TestKubePrimaryPodDeletedFailsOverThroughTheAPI: the whole Kubernetes
// loop against a real API server. `serve --source kube --dr --actuator
// kube` follows a primary Pod and a warm standby Pod (each a real modelsim
// on 127.0.0.1); the primary Pod is deleted (no kubelet finishes it, so it
// stays terminating: draining), and the control plane wakes the standby
// (POST /wake_up on its Pod's http port) and patches its Pod's tier label
// to hot in the API.
func TestKubePrimaryPodDeletedFailsOverThroughTheAPI(t *testing.T) {
	env := kubeenv.Start(t)
	client := kubernetes.NewForConfigOrDie(env.Config)
	ctx := context.Background()
	primary := startModelSim(t, "llama-a", "llama-2-7b")
	warm := startModelSim(t, "llama-w", "llama-2-7b", "--start-asleep")
	kubetest.Create(ctx, t, client, kubetest.Node("gpu-1", "az-1", 8, "nvidia.com/gpu.memory", "81920"),
		servingPod("llama-a", primary),
		servingPod("llama-w", warm, kubetest.WithLabels(map[string]string{
			kube.DefaultTierLabel: "warm", kube.DefaultRoleLabel: "standby"})),
	)
	startKubeControlPlane(t, env.Kubeconfig, llamaPolicy(""),
		"--dr", "--probe-interval", "200ms", "--actuator", "kube", "--actuator-namespace", kubetest.Namespace)

	deleted := time.Now()
	if err := client.CoreV1().Pods(kubetest.Namespace).Delete(ctx, "llama-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err := poll(hangGuard, func() error {
		pod, err := client.CoreV1().Pods(kubetest.Namespace).Get(ctx, "llama-w", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if tier := pod.Labels[kube.DefaultTierLabel]; tier != "hot" {
			return fmt.Errorf("standby Pod llama-w has tier %q, want hot", tier)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("after the primary Pod was deleted: %v", err)
	}
	report(t, "kube primary-pod-deleted-to-standby-labelled-hot=%v", time.Since(deleted).Round(time.Millisecond))
	if warm.sleeping(t) {
		t.Error("the standby's Pod is labelled hot but its server still sleeps: the promotion did not wake it")
	}
}

// servingPod is a ready Pod of s's model whose http container port is s's
// HTTP port on 127.0.0.1, as the source reads it and the actuator wakes it.
func servingPod(name string, s *modelSim, opts ...kubetest.PodOption) *corev1.Pod {
	_, port, _ := net.SplitHostPort(s.ready.HTTPAddress)
	n, _ := strconv.Atoi(port)
	http := func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = int32(n) }
	return modelPod(name, "gpu-1", s.model, n, append([]kubetest.PodOption{http}, opts...)...)
}

// sleeping asks s's server whether it sleeps (vLLM's GET /is_sleeping).
func (s *modelSim) sleeping(t *testing.T) bool {
	t.Helper()
	resp, err := http.Get("http://" + s.ready.HTTPAddress + "/is_sleeping")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Sleeping bool `json:"is_sleeping"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("%s /is_sleeping: %v", s.id, err)
	}
	return got.Sleeping
}
