// Package kubetest plays, for tests of what writes to Kubernetes, the
// parts a test API server runs without: the Deployment controller, the
// scheduler and the kubelet. It works against client-go's fake clientset
// and a real API server alike, and owns nothing else.
package kubetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// StartKubelet plays the parts a test API server lacks: the Deployment
// controller (a Deployment's replica gets a Pod, a Deployment scaled to 0
// loses it), the scheduler and the kubelet (a Pod runs on the node its
// affinity names, else node, at ip; a deleted Pod goes at once). It reacts
// to watch events in namespace ns only, until the test ends.
func StartKubelet(t testing.TB, client kubernetes.Interface, ns, node, ip string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	deps, err := client.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k := kubelet{client: client, ns: ns, node: node, ip: ip}
	go func() {
		defer close(done)
		defer deps.Stop()
		defer pods.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-deps.ResultChan():
			case <-pods.ResultChan():
			}
			// A conflict is a Pod changed since it was listed: the event of
			// that change comes next.
			if err := k.reconcile(ctx); err != nil && ctx.Err() == nil && !apierrors.IsConflict(err) {
				t.Errorf("kubetest kubelet: %v", err)
			}
		}
	}()
}

type kubelet struct {
	client   kubernetes.Interface
	ns       string
	node, ip string
}

func (k kubelet) reconcile(ctx context.Context) error {
	deps, err := k.client.AppsV1().Deployments(k.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, d := range deps.Items {
		sel := labels.Set(d.Spec.Selector.MatchLabels).String()
		pods, err := k.client.CoreV1().Pods(k.ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return err
		}
		want := 0
		if d.Spec.Replicas != nil {
			want = int(*d.Spec.Replicas)
		}
		for i := want; i < len(pods.Items); i++ {
			if err := k.delete(ctx, pods.Items[i].Name); err != nil {
				return err
			}
		}
		for i := len(pods.Items); i < want; i++ {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: d.Name + "-pod", Namespace: k.ns, Labels: d.Spec.Template.Labels},
				Spec:       d.Spec.Template.Spec,
			}
			if _, err := k.client.CoreV1().Pods(k.ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return err
			}
		}
	}
	return k.run(ctx)
}

// run starts every Pod not running yet: bound to its node, running, ready.
func (k kubelet) run(ctx context.Context) error {
	pods, err := k.client.CoreV1().Pods(k.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, p := range pods.Items {
		switch {
		case p.DeletionTimestamp != nil:
			if err := k.delete(ctx, p.Name); err != nil {
				return err
			}
			continue
		case p.Status.Phase == corev1.PodRunning:
			continue
		}
		bound, err := k.bind(ctx, &p)
		if err != nil {
			return err
		}
		bound.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: k.ip,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
		if _, err := k.client.CoreV1().Pods(k.ns).UpdateStatus(ctx, bound, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// delete removes a Pod at once, as a kubelet confirms a Pod stopped.
func (k kubelet) delete(ctx context.Context, name string) error {
	zero := int64(0)
	err := k.client.CoreV1().Pods(k.ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// bind schedules the Pod onto its node, as the scheduler does.
func (k kubelet) bind(ctx context.Context, p *corev1.Pod) (*corev1.Pod, error) {
	if p.Spec.NodeName != "" {
		return p, nil
	}
	node := k.nodeFor(p)
	binding := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: k.ns}, Target: corev1.ObjectReference{Kind: "Node", Name: node}}
	if err := k.client.CoreV1().Pods(k.ns).Bind(ctx, binding, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	bound, err := k.client.CoreV1().Pods(k.ns).Get(ctx, p.Name, metav1.GetOptions{})
	if err != nil || bound.Spec.NodeName != "" {
		return bound, err
	}
	// The fake clientset records a binding without binding the Pod.
	bound.Spec.NodeName = node
	return k.client.CoreV1().Pods(k.ns).Update(ctx, bound, metav1.UpdateOptions{})
}

func (k kubelet) nodeFor(p *corev1.Pod) string {
	if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			for _, f := range term.MatchFields {
				if f.Key == "metadata.name" && len(f.Values) > 0 {
					return f.Values[0]
				}
			}
		}
	}
	return k.node
}

// Workloads lists the Deployments and Pods of ns.
func Workloads(t testing.TB, client kubernetes.Interface, ns string) ([]appsv1.Deployment, []corev1.Pod) {
	t.Helper()
	d, err := client.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d.Items, p.Items
}

// Unchanged fails the test when do changes a Deployment or Pod of ns: any
// field, its resourceVersion included.
func Unchanged(t testing.TB, client kubernetes.Interface, ns, what string, do func()) {
	t.Helper()
	deps, pods := Workloads(t, client, ns)
	do()
	deps2, pods2 := Workloads(t, client, ns)
	if d := cmp.Diff(deps, deps2); d != "" {
		t.Errorf("%s changed Deployments (-before +after):\n%s", what, d)
	}
	if d := cmp.Diff(pods, pods2); d != "" {
		t.Errorf("%s changed Pods (-before +after):\n%s", what, d)
	}
}

// WaitNoPod waits until no Pod of ns matches selector.
func WaitNoPod(t testing.TB, client kubernetes.Interface, ns, selector string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		return err == nil && len(pods.Items) == 0, err
	})
	if err != nil {
		t.Fatalf("pods %s still there: %v", selector, err)
	}
}
