package kube

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/inferxds/inferxds/topology"
)

// ZoneAnnotation on a Deployment names the zone of the cold standby it is
// when its Pod template does not pin one.
const ZoneAnnotation = "inferxds.io/zone"

// nodeNameField is the node field a node affinity pins a Pod to a node by.
const nodeNameField = "metadata.name"

// addColdStandbys adds a cold standby per Deployment that runs a model
// (its own labels, see Labels.Read), is scaled to 0 and has no running
// Pod: a Deployment that runs its Pod is that Pod's instance.
func (m *mapping) addColdStandbys(deployments []*appsv1.Deployment, pods []*corev1.Pod) {
	for _, d := range sortedByKey(deployments) {
		if !parked(d) || runsPod(d, pods) {
			continue
		}
		in, ok, err := m.coldStandby(d)
		if err != nil {
			m.problem("deployment", d.Namespace, d.Name, err)
		}
		if ok {
			m.instances = append(m.instances, in)
		}
	}
}

// coldStandby maps a parked Deployment to its cold standby; ok is false
// for one that runs no model, one whose instance a Pod runs, or one with a
// problem (returned).
func (m *mapping) coldStandby(d *appsv1.Deployment) (in topology.Instance, ok bool, err error) {
	id, ok, err := m.opts.Labels.Read(d.Labels)
	if !ok || err != nil {
		return topology.Instance{}, false, err
	}
	name := m.opts.Labels.deploymentInstanceName(d)
	if err := topology.ValidateName(name); err != nil {
		return topology.Instance{}, false, fmt.Errorf("instance name %w", err)
	}
	if m.listed(name) {
		return topology.Instance{}, false, nil
	}
	zone, err := m.deploymentZone(d)
	if err != nil {
		return topology.Instance{}, false, err
	}
	return topology.Instance{Name: name, Model: id.Model, Zone: zone, Tier: topology.TierCold, Role: topology.RoleStandby}, true, nil
}

// listed reports whether an instance of that name was mapped already: a
// Pod of the instance runs, or another Deployment took the name first.
func (m *mapping) listed(name string) bool {
	for _, in := range m.instances {
		if in.Name == name {
			return true
		}
	}
	return false
}

// parked reports a Deployment scaled to 0 and not being deleted.
func parked(d *appsv1.Deployment) bool {
	return d.DeletionTimestamp == nil && d.Spec.Replicas != nil && *d.Spec.Replicas == 0
}

// runsPod reports whether a running Pod of the Deployment's namespace
// matches its selector (one that is still stopping, say).
func runsPod(d *appsv1.Deployment, pods []*corev1.Pod) bool {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() {
		return false
	}
	for _, p := range pods {
		if p != nil && p.Namespace == d.Namespace && running(p) && sel.Matches(labels.Set(p.Labels)) {
			return true
		}
	}
	return false
}

// deploymentInstanceName is the name the Kubernetes actuator finds the
// Deployment by: its Instance label, else its own name.
func (l Labels) deploymentInstanceName(d *appsv1.Deployment) string {
	if name, ok := d.Labels[l.Instance]; ok {
		return name
	}
	return d.Name
}

// deploymentZone is the zone the Deployment's Pod would run in: the Pod
// template's nodeSelector on ZoneLabel, else its required node affinity
// to one zone (or to one node, that node's zone), else the Deployment's
// ZoneAnnotation.
func (m *mapping) deploymentZone(d *appsv1.Deployment) (string, error) {
	spec := d.Spec.Template.Spec
	zone, ok := spec.NodeSelector[ZoneLabel]
	if !ok {
		zone, ok = m.affinityZone(spec.Affinity)
	}
	if !ok {
		zone, ok = d.Annotations[ZoneAnnotation]
	}
	if !ok {
		return "", fmt.Errorf("no zone: set the Pod template's nodeSelector %s, its required node affinity to one zone or node, or the annotation %s", ZoneLabel, ZoneAnnotation)
	}
	if err := topology.ValidateName(zone); err != nil {
		return "", fmt.Errorf("zone name %w", err)
	}
	return zone, nil
}

// affinityZone reads a required node affinity of one term that pins one
// zone (ZoneLabel In one value) or one known node (metadata.name In one
// value), as the Kubernetes actuator writes them.
func (m *mapping) affinityZone(a *corev1.Affinity) (string, bool) {
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return "", false
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 1 {
		return "", false
	}
	if zone, ok := onlyValue(terms[0].MatchExpressions, ZoneLabel); ok {
		return zone, true
	}
	if node, ok := onlyValue(terms[0].MatchFields, nodeNameField); ok && m.nodes[node] != nil {
		zone, err := nodeZone(m.nodes[node])
		return zone, err == nil
	}
	return "", false
}

// onlyValue is the one value a requirement "key In (value)" allows.
func onlyValue(reqs []corev1.NodeSelectorRequirement, key string) (string, bool) {
	for _, r := range reqs {
		if r.Key == key && r.Operator == corev1.NodeSelectorOpIn && len(r.Values) == 1 {
			return r.Values[0], true
		}
	}
	return "", false
}
