package kube

import (
	"maps"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/topology"
	kubetopo "github.com/inferxds/inferxds/topology/kube"
)

// TierEnv tells a created instance's containers the tier they start at:
// "warm" starts the model server asleep (vLLM sleep mode, modelsim
// --start-asleep), "hot" serving.
const TierEnv = "INFERXDS_TIER"

// createdRole is the role a created instance has, as the planner counts it.
func createdRole(a dr.Action) topology.Role {
	if a.Emergency {
		return topology.RolePrimary
	}
	return topology.RoleStandby
}

// startTier is the tier a created instance's Pod starts at: a cold
// standby has none until it is loaded, and then starts asleep.
func startTier(t topology.Tier) topology.Tier {
	if t == topology.TierCold {
		return topology.TierWarm
	}
	return t
}

func (l keys) instance(a dr.Action, tier topology.Tier) map[string]string {
	labels := l.For(a.Model, tier, createdRole(a))
	labels[l.Instance] = a.Instance
	return labels
}

// podTemplate makes the model's template the instance's: its labels, the
// tier it starts at, node affinity to the placement, and its GPUs. tmpl is
// modified.
func (l keys) podTemplate(tmpl *corev1ac.PodTemplateSpecApplyConfiguration, a dr.Action) *corev1ac.PodTemplateSpecApplyConfiguration {
	tier := startTier(a.Tier)
	tmpl.WithLabels(l.instance(a, tier))
	if tmpl.Spec == nil {
		tmpl.Spec = corev1ac.PodSpec()
	}
	for i := range tmpl.Spec.Containers {
		setEnv(&tmpl.Spec.Containers[i], TierEnv, string(tier))
	}
	pinPlacement(tmpl.Spec, a)
	if len(a.GPUs) > 0 {
		requestGPUs(&tmpl.Spec.Containers[0], len(a.GPUs))
	}
	return tmpl
}

func setEnv(c *corev1ac.ContainerApplyConfiguration, name, value string) {
	c.Env = slices.DeleteFunc(c.Env, func(e corev1ac.EnvVarApplyConfiguration) bool { return e.Name != nil && *e.Name == name })
	c.WithEnv(corev1ac.EnvVar().WithName(name).WithValue(value))
}

// pinPlacement requires the placement's node (by name), else its zone;
// the template's other affinities stay.
func pinPlacement(spec *corev1ac.PodSpecApplyConfiguration, a dr.Action) {
	var term *corev1ac.NodeSelectorTermApplyConfiguration
	switch {
	case a.Node != "":
		term = corev1ac.NodeSelectorTerm().WithMatchFields(
			corev1ac.NodeSelectorRequirement().WithKey("metadata.name").WithOperator(corev1.NodeSelectorOpIn).WithValues(a.Node))
	case a.Zone != "":
		term = corev1ac.NodeSelectorTerm().WithMatchExpressions(
			corev1ac.NodeSelectorRequirement().WithKey(kubetopo.ZoneLabel).WithOperator(corev1.NodeSelectorOpIn).WithValues(a.Zone))
	default:
		return
	}
	if spec.Affinity == nil {
		spec.Affinity = corev1ac.Affinity()
	}
	spec.Affinity.NodeAffinity = corev1ac.NodeAffinity().WithRequiredDuringSchedulingIgnoredDuringExecution(
		corev1ac.NodeSelector().WithNodeSelectorTerms(term))
}

// requestGPUs sets the container's GPU request and limit (extended
// resources need both, equal).
func requestGPUs(c *corev1ac.ContainerApplyConfiguration, n int) {
	if c.Resources == nil {
		c.Resources = corev1ac.ResourceRequirements()
	}
	q := resource.MustParse(strconv.Itoa(n))
	c.Resources.WithRequests(withResource(c.Resources.Requests, kubetopo.GPUResource, q))
	c.Resources.WithLimits(withResource(c.Resources.Limits, kubetopo.GPUResource, q))
}

func withResource(list *corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) corev1.ResourceList {
	out := corev1.ResourceList{}
	if list != nil {
		maps.Copy(out, *list)
	}
	out[name] = q
	return out
}

// deployment is a created standby's Deployment: one replica, none for a
// cold standby, selected by the instance label.
func (l keys) deployment(namespace string, a dr.Action, tmpl *corev1ac.PodTemplateSpecApplyConfiguration) *appsv1ac.DeploymentApplyConfiguration {
	replicas := int32(1)
	if a.Tier == topology.TierCold {
		replicas = 0
	}
	return appsv1ac.Deployment(a.Instance, namespace).
		WithLabels(l.instance(a, a.Tier)).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(replicas).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{l.Instance: a.Instance})).
			WithTemplate(l.podTemplate(tmpl, a)))
}

// pod is an emergency instance's bare Pod.
func (l keys) pod(namespace string, a dr.Action, tmpl *corev1ac.PodTemplateSpecApplyConfiguration) *corev1ac.PodApplyConfiguration {
	t := l.podTemplate(tmpl, a)
	p := corev1ac.Pod(a.Instance, namespace).WithSpec(t.Spec)
	if t.ObjectMetaApplyConfiguration != nil {
		p.WithLabels(t.Labels).WithAnnotations(t.Annotations)
	}
	return p
}
