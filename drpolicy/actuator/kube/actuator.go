package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/topology"
	kubetopo "github.com/inferxds/inferxds/topology/kube"
)

// FieldManager is the server-side apply field manager of every write.
const FieldManager = "inferxds"

// Config is what an Actuator needs.
type Config struct {
	Client kubernetes.Interface
	// Namespace is where instances are found and created.
	Namespace string
	// Templates are the Pod templates of created instances.
	Templates Templates
	// Labels are the label keys written (the Kubernetes source's); empty
	// keys are the defaults.
	Labels kubetopo.Labels
	// HTTP wakes Pods (POST /wake_up); nil is a client without timeout,
	// the action's context bounding it.
	HTTP *http.Client
	// PollInterval is how often a starting Pod is looked at; 0 is 500 ms.
	PollInterval time.Duration
	Logger       *slog.Logger
}

// Actuator carries out the DR planner's actions on Kubernetes workloads.
type Actuator struct {
	client    kubernetes.Interface
	ns        string
	templates Templates
	labels    keys
	http      *http.Client
	poll      time.Duration
	log       *slog.Logger
}

var _ dr.Actuator = (*Actuator)(nil)

// New checks cfg and returns an Actuator.
func New(cfg Config) (*Actuator, error) {
	if cfg.Client == nil {
		return nil, errors.New("kube actuator: no Kubernetes client")
	}
	if cfg.Namespace == "" {
		return nil, errors.New("kube actuator: no namespace")
	}
	a := &Actuator{
		client: cfg.Client, ns: cfg.Namespace, templates: cfg.Templates, labels: newKeys(cfg.Labels),
		http: cfg.HTTP, poll: cfg.PollInterval, log: cfg.Logger,
	}
	if a.http == nil {
		a.http = &http.Client{}
	}
	if a.poll <= 0 {
		a.poll = 500 * time.Millisecond
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a, nil
}

// Do carries out a wake, load, create or stop and returns the instance as
// it then is.
func (a *Actuator) Do(ctx context.Context, act dr.Action) (topology.Instance, error) {
	var (
		in  topology.Instance
		err error
	)
	switch act.Kind {
	case dr.ActionWake:
		in, err = a.wake(ctx, act)
	case dr.ActionLoad:
		in, err = a.load(ctx, act)
	case dr.ActionCreate:
		in, err = a.create(ctx, act)
	case dr.ActionStop:
		in, err = a.stop(ctx, act)
	default:
		return topology.Instance{}, fmt.Errorf("kube actuator: %s is not an action for an actuator", act.Kind)
	}
	if err != nil {
		return topology.Instance{}, fmt.Errorf("%s %s: %w", act.Kind, act.Instance, err)
	}
	a.log.Info("action done", "action", act.Kind, "instance", act.Instance, "model", act.Model, "node", in.Node, "address", in.Address)
	return in, nil
}

var applyOptions = metav1.ApplyOptions{FieldManager: FieldManager, Force: true}

// load scales the cold instance's Deployment to one replica, labelled
// warm, and waits for its Pod to run.
func (a *Actuator) load(ctx context.Context, act dr.Action) (topology.Instance, error) {
	d, err := a.deploymentOf(ctx, act.Instance)
	if err != nil {
		return topology.Instance{}, err
	}
	if d == nil {
		return topology.Instance{}, fmt.Errorf("no Deployment named or labelled %s in namespace %s", act.Instance, a.ns)
	}
	if err := a.scale(ctx, d, 1, topology.TierWarm); err != nil {
		return topology.Instance{}, err
	}
	pod, err := a.waitRunning(ctx, act.Instance, false)
	if err != nil {
		return topology.Instance{}, err
	}
	return a.instance(act, pod, topology.TierWarm), nil
}

// wake wakes the instance's sleeping Pod where it sleeps and labels it
// (and its Deployment) hot. A Pod already labelled hot is awake.
func (a *Actuator) wake(ctx context.Context, act dr.Action) (topology.Instance, error) {
	pod, err := a.runningPod(ctx, act.Instance)
	if err != nil {
		return topology.Instance{}, err
	}
	if act.Node != "" && pod.Spec.NodeName != "" && pod.Spec.NodeName != act.Node {
		return topology.Instance{}, fmt.Errorf("placed on node %s, but Pod %s sleeps on node %s", act.Node, pod.Name, pod.Spec.NodeName)
	}
	if pod.Labels[a.labels.Tier] != string(topology.TierHot) {
		if err := a.postWakeUp(ctx, pod); err != nil {
			return topology.Instance{}, err
		}
	}
	if err := a.labelPod(ctx, pod, topology.TierHot); err != nil {
		return topology.Instance{}, err
	}
	d, err := a.deploymentOf(ctx, act.Instance)
	if err != nil {
		return topology.Instance{}, err
	}
	if d != nil {
		// Only the Deployment's own labels: a changed Pod template would
		// restart the Pod that was just woken.
		if err := a.applyDeployment(ctx, d, func(ac *deploymentAC) { ac.WithLabels(map[string]string{a.labels.Tier: string(topology.TierHot)}) }); err != nil {
			return topology.Instance{}, err
		}
	}
	return a.instance(act, pod, topology.TierHot), nil
}

// create makes the instance from its model's template: a bare Pod for an
// emergency instance, a Deployment otherwise, and waits until it runs at
// its tier (a cold one has nothing running).
func (a *Actuator) create(ctx context.Context, act dr.Action) (topology.Instance, error) {
	tmpl, err := a.templates.For(act.Model)
	if err != nil {
		return topology.Instance{}, err
	}
	if act.Emergency {
		_, err = a.client.CoreV1().Pods(a.ns).Apply(ctx, a.labels.pod(a.ns, act, tmpl), applyOptions)
	} else {
		_, err = a.client.AppsV1().Deployments(a.ns).Apply(ctx, a.labels.deployment(a.ns, act, tmpl), applyOptions)
	}
	if err != nil {
		return topology.Instance{}, err
	}
	if act.Tier == topology.TierCold {
		return topology.Instance{Name: act.Instance, Model: act.Model, Zone: act.Zone, Tier: topology.TierCold, Role: createdRole(act)}, nil
	}
	pod, err := a.waitRunning(ctx, act.Instance, act.Tier == topology.TierHot)
	if err != nil {
		return topology.Instance{}, err
	}
	return a.instance(act, pod, act.Tier), nil
}

// stop scales the instance's Deployment to 0, labelled cold, or deletes
// its bare Pod; an instance with nothing running is stopped already.
func (a *Actuator) stop(ctx context.Context, act dr.Action) (topology.Instance, error) {
	stopped := topology.Instance{Name: act.Instance, Model: act.Model, Zone: act.Zone, Node: act.Node, Tier: topology.TierCold}
	d, err := a.deploymentOf(ctx, act.Instance)
	if err != nil {
		return topology.Instance{}, err
	}
	if d != nil {
		return stopped, a.scale(ctx, d, 0, topology.TierCold)
	}
	pods, err := a.podsOf(ctx, act.Instance)
	if err != nil {
		return topology.Instance{}, err
	}
	for _, p := range pods {
		if owner := metav1.GetControllerOf(&p); owner != nil {
			return topology.Instance{}, fmt.Errorf("pod %s is controlled by %s %s, not by a Deployment", p.Name, owner.Kind, owner.Name)
		}
		if p.DeletionTimestamp != nil {
			continue
		}
		err := a.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return topology.Instance{}, err
		}
	}
	return stopped, nil
}

// instance is the instance a Pod runs.
func (a *Actuator) instance(act dr.Action, pod *corev1.Pod, tier topology.Tier) topology.Instance {
	in := topology.Instance{
		Name: act.Instance, Model: act.Model, Node: pod.Spec.NodeName, Zone: act.Zone, GPUs: act.GPUs,
		Address: pod.Status.PodIP, Port: podPort(pod), Tier: tier, Role: topology.Role(pod.Labels[a.labels.Role]),
	}
	if tier == topology.TierHot {
		in.Health = topology.HealthServing
	}
	return in
}

// podPort is the model server's port: the container port named http,
// else the first one declared.
func podPort(pod *corev1.Pod) uint32 {
	var first int32
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == "http" {
				return uint32(p.ContainerPort)
			}
			if first == 0 {
				first = p.ContainerPort
			}
		}
	}
	return uint32(first)
}

func isRunning(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && p.Status.PodIP != ""
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
