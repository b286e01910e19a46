// Package kubetest builds the Pods, Deployments, Nodes and EndpointSlices
// that tests of the Kubernetes fleet source and actuator need, and creates
// them in an API server as a kubelet and the EndpointSlice controller
// would leave them (status included). It is for tests only.
package kubetest

import (
	"context"
	"fmt"
	"maps"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Namespace is where Pod and Slice put their objects.
const Namespace = "inference"

// GPU is the NVIDIA device plugin's resource name.
const GPU corev1.ResourceName = "nvidia.com/gpu"

// PodOption changes a Pod that Pod builds.
type PodOption func(*corev1.Pod)

// Pod is a Running Pod on node with ip, one container with the container
// port http 8000, and (a copy of) labels.
func Pod(name, node, ip string, labels map[string]string, opts ...PodOption) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name, Labels: maps.Clone(labels)},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
			Name: "server", Image: "model-server:test", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8000}},
		}}},
		Status: corev1.PodStatus{PodIP: ip, Phase: corev1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// WithLabels adds labels.
func WithLabels(labels map[string]string) PodOption {
	return func(p *corev1.Pod) {
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		for k, v := range labels {
			p.Labels[k] = v
		}
	}
}

// Annotated adds an annotation.
func Annotated(key, value string) PodOption {
	return func(p *corev1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[key] = value
	}
}

// RequestingGPUs makes the container request (and be limited to) n GPUs.
func RequestingGPUs(n int64) PodOption {
	return func(p *corev1.Pod) {
		q := corev1.ResourceList{GPU: *resource.NewQuantity(n, resource.DecimalSI)}
		p.Spec.Containers[0].Resources = corev1.ResourceRequirements{Requests: q, Limits: q}
	}
}

// Ready sets the Pod's Ready condition.
func Ready(status corev1.ConditionStatus) PodOption {
	return func(p *corev1.Pod) {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
	}
}

// Deleting marks the Pod as being deleted.
func Deleting(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{} }

// NoPorts removes the container's ports.
func NoPorts(p *corev1.Pod) { p.Spec.Containers[0].Ports = nil }

// Node is a Ready node in zone (no zone label when ""), with gpus GPUs and
// extra labels given as key, value pairs.
func Node(name, zone string, gpus int64, labels ...string) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}},
		Status: corev1.NodeStatus{
			Capacity:   corev1.ResourceList{},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	if zone != "" {
		n.Labels[corev1.LabelTopologyZone] = zone
	}
	if gpus > 0 {
		n.Status.Capacity[GPU] = *resource.NewQuantity(gpus, resource.DecimalSI)
	}
	for i := 0; i+1 < len(labels); i += 2 {
		n.Labels[labels[i]] = labels[i+1]
	}
	return n
}

// DeploymentNameLabel is the label a Deployment that Deployment builds
// selects its Pods by.
const DeploymentNameLabel = "app.kubernetes.io/name"

// Deployment is a Deployment of replicas in Namespace with labels on it and
// on its Pod template, selecting its Pods by DeploymentNameLabel=name; its
// template is Pod's container with opts applied.
func Deployment(name string, replicas int32, labels map[string]string, opts ...PodOption) *appsv1.Deployment {
	selector := map[string]string{DeploymentNameLabel: name}
	template := Pod(name, "", "", labels, append([]PodOption{WithLabels(selector)}, opts...)...)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name, Labels: maps.Clone(labels)},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: template.Labels, Annotations: template.Annotations}, Spec: template.Spec},
		},
	}
}

// InZone makes the Pod (template) require a node of zone by nodeSelector.
func InZone(zone string) PodOption {
	return func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{corev1.LabelTopologyZone: zone} }
}

// Endpoint is one Pod's entry in a Slice; nil conditions are left unsaid.
type Endpoint struct {
	Pod                         string
	Ready, Serving, Terminating *bool
}

// ReadyEndpoint is the Pod's endpoint with only its readiness said.
func ReadyEndpoint(pod string, ready bool) Endpoint { return Endpoint{Pod: pod, Ready: &ready} }

// Slice is an IPv4 EndpointSlice listing the Pods' endpoints.
func Slice(name string, ports []discoveryv1.EndpointPort, endpoints ...Endpoint) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: Namespace, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       ports,
	}
	for _, e := range endpoints {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{"10.0.0.1"},
			Conditions: discoveryv1.EndpointConditions{Ready: e.Ready, Serving: e.Serving, Terminating: e.Terminating},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: Namespace, Name: e.Pod},
		})
	}
	return s
}

// Port is a named EndpointSlice port.
func Port(name string, number int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: &name, Port: &number}
}

// Create creates the objects (Nodes, Pods, Deployments, EndpointSlices) in an API
// server, with the Node and Pod status they were built with, creating
// Namespace first if needed.
func Create(ctx context.Context, t testing.TB, client kubernetes.Interface, objs ...any) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", Namespace, err)
	}
	for _, obj := range objs {
		if err := create(ctx, client, obj); err != nil {
			t.Fatalf("create %T: %v", obj, err)
		}
	}
}

func create(ctx context.Context, client kubernetes.Interface, obj any) error {
	switch o := obj.(type) {
	case *corev1.Node:
		created, err := client.CoreV1().Nodes().Create(ctx, o, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		created.Status = o.Status
		_, err = client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
		return err
	case *corev1.Pod:
		created, err := client.CoreV1().Pods(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		created.Status = o.Status
		_, err = client.CoreV1().Pods(o.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{})
		return err
	case *appsv1.Deployment:
		_, err := client.AppsV1().Deployments(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		return err
	case *discoveryv1.EndpointSlice:
		_, err := client.DiscoveryV1().EndpointSlices(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		return err
	}
	return fmt.Errorf("kubetest: cannot create a %T", obj)
}
