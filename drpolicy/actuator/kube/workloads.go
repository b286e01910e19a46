package kube

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/inferxds/inferxds/topology"
	kubetopo "github.com/inferxds/inferxds/topology/kube"
)

type deploymentAC = appsv1ac.DeploymentApplyConfiguration

// deploymentOf is the instance's Deployment: the one named after it or
// labelled with it, else the one its Pod belongs to; nil when there is none.
func (a *Actuator) deploymentOf(ctx context.Context, instance string) (*appsv1.Deployment, error) {
	d, err := a.client.AppsV1().Deployments(a.ns).Get(ctx, instance, metav1.GetOptions{})
	if err == nil {
		return d, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	list, err := a.client.AppsV1().Deployments(a.ns).List(ctx, metav1.ListOptions{LabelSelector: a.selector(instance)})
	switch {
	case err != nil:
		return nil, err
	case len(list.Items) > 1:
		return nil, fmt.Errorf("%d Deployments are labelled %s=%s; an instance has one", len(list.Items), a.labels.Instance, instance)
	case len(list.Items) == 1:
		return &list.Items[0], nil
	}
	pods, err := a.podsOf(ctx, instance)
	if err != nil || len(pods) == 0 {
		return nil, err
	}
	return a.ownerDeployment(ctx, &pods[0])
}

// ownerDeployment is the Deployment whose ReplicaSet controls the Pod, or
// nil. The ReplicaSet is named "<deployment>-<pod-template-hash>"; naming
// the Deployment from it spares reading ReplicaSets, which the control
// plane's role does not allow, and the Deployment must select the Pod.
func (a *Actuator) ownerDeployment(ctx context.Context, pod *corev1.Pod) (*appsv1.Deployment, error) {
	owner := metav1.GetControllerOf(pod)
	if owner == nil || owner.Kind != "ReplicaSet" {
		return nil, nil
	}
	name, ok := strings.CutSuffix(owner.Name, "-"+pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey])
	if !ok {
		return nil, nil
	}
	d, err := a.client.AppsV1().Deployments(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, ignoreNotFound(err)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
		return nil, nil
	}
	return d, nil
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// podsOf are the instance's Pods: labelled with it or named after it, else
// the Pod the Kubernetes source names it after ("<pod>.<namespace>").
func (a *Actuator) podsOf(ctx context.Context, instance string) ([]corev1.Pod, error) {
	list, err := a.client.CoreV1().Pods(a.ns).List(ctx, metav1.ListOptions{LabelSelector: a.selector(instance)})
	if err != nil {
		return nil, err
	}
	pods := list.Items
	if slices.ContainsFunc(pods, func(p corev1.Pod) bool { return p.Name == instance }) {
		return pods, nil
	}
	for _, ref := range podRefs(a.ns, instance) {
		p, err := a.client.CoreV1().Pods(ref.ns).Get(ctx, ref.name, metav1.GetOptions{})
		if err == nil {
			return append(pods, *p), nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
	}
	return pods, nil
}

type podRef struct{ ns, name string }

// podRefs are the Pods an instance name may name: the Pod of that name in
// the actuator's namespace, and the Kubernetes source's "<pod>.<namespace>".
func podRefs(ns, instance string) []podRef {
	refs := []podRef{{ns, instance}}
	if podNS, pod, ok := kubetopo.PodOf(instance); ok {
		refs = append(refs, podRef{podNS, pod})
	}
	return refs
}

func (a *Actuator) selector(instance string) string {
	return labels.Set{a.labels.Instance: instance}.String()
}

// runningPod is the instance's one running Pod.
func (a *Actuator) runningPod(ctx context.Context, instance string) (*corev1.Pod, error) {
	pod, n, err := a.findRunning(ctx, instance, false)
	switch {
	case err != nil:
		return nil, err
	case n > 1:
		return nil, fmt.Errorf("%d Pods of the instance run; an instance has one", n)
	case pod == nil:
		return nil, fmt.Errorf("no running Pod named or labelled %s in namespace %s", instance, a.ns)
	}
	return pod, nil
}

// findRunning returns a running (and ready, with ready) Pod of the
// instance and how many there are.
func (a *Actuator) findRunning(ctx context.Context, instance string, ready bool) (*corev1.Pod, int, error) {
	pods, err := a.podsOf(ctx, instance)
	if err != nil {
		return nil, 0, err
	}
	var found *corev1.Pod
	n := 0
	for i := range pods {
		if p := &pods[i]; isRunning(p) && (!ready || isReady(p)) {
			found = p
			n++
		}
	}
	return found, n, nil
}

// waitRunning waits until a Pod of the instance runs (and is ready, with
// ready), looking every PollInterval: Pods are scheduled and started by
// Kubernetes, after the apply returned.
func (a *Actuator) waitRunning(ctx context.Context, instance string, ready bool) (*corev1.Pod, error) {
	var pod *corev1.Pod
	err := wait.PollUntilContextCancel(ctx, a.poll, true, func(ctx context.Context) (bool, error) {
		p, _, err := a.findRunning(ctx, instance, ready)
		pod = p
		return p != nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for a Pod of %s to run: %w", instance, err)
	}
	return pod, nil
}

// scale applies the Deployment's replica count and tier label, on the
// Deployment and its Pod template. An instance's Deployment runs at most
// one replica.
func (a *Actuator) scale(ctx context.Context, d *appsv1.Deployment, replicas int32, tier topology.Tier) error {
	if d.Spec.Replicas != nil && *d.Spec.Replicas > 1 {
		return fmt.Errorf("deployment %s runs %d replicas; an instance's Deployment runs at most one", d.Name, *d.Spec.Replicas)
	}
	tierLabel := map[string]string{a.labels.Tier: string(tier)}
	return a.applyDeployment(ctx, d, func(ac *deploymentAC) {
		ac.WithLabels(tierLabel)
		if ac.Spec == nil {
			ac.Spec = appsv1ac.DeploymentSpec()
		}
		ac.Spec.WithReplicas(replicas)
		if tier == topology.TierCold {
			return // no Pod runs to label
		}
		if ac.Spec.Template == nil {
			ac.Spec.Template = corev1ac.PodTemplateSpec()
		}
		ac.Spec.Template.WithLabels(tierLabel)
	})
}

// applyDeployment applies what the field manager already owns of d with
// edit's changes: fields it owns and leaves out would be removed.
func (a *Actuator) applyDeployment(ctx context.Context, d *appsv1.Deployment, edit func(*deploymentAC)) error {
	ac, err := appsv1ac.ExtractDeployment(d, FieldManager)
	if err != nil {
		return err
	}
	edit(ac)
	_, err = a.client.AppsV1().Deployments(d.Namespace).Apply(ctx, ac, applyOptions)
	return err
}

// labelPod applies the Pod's tier label.
func (a *Actuator) labelPod(ctx context.Context, pod *corev1.Pod, tier topology.Tier) error {
	ac, err := corev1ac.ExtractPod(pod, FieldManager)
	if err != nil {
		return err
	}
	ac.WithLabels(map[string]string{a.labels.Tier: string(tier)})
	_, err = a.client.CoreV1().Pods(pod.Namespace).Apply(ctx, ac, applyOptions)
	return err
}

// postWakeUp asks the Pod's model server to wake (vLLM sleep mode); the
// answer comes once it is awake.
func (a *Actuator) postWakeUp(ctx context.Context, pod *corev1.Pod) error {
	port := podPort(pod)
	if port == 0 {
		return fmt.Errorf("pod %s declares no container port to wake it on", pod.Name)
	}
	url := "http://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(port))) + "/wake_up"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("waking pod %s: %w", pod.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("waking pod %s: POST %s answered %s", pod.Name, url, resp.Status)
	}
	return nil
}
