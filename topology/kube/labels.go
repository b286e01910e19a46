package kube

import (
	"cmp"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/inferxds/inferxds/topology"
)

// Default label keys that tie a Pod to its model, tier, role and instance.
const (
	DefaultModelLabel    = "inferxds.io/model"
	DefaultTierLabel     = "inferxds.io/tier"
	DefaultRoleLabel     = "inferxds.io/role"
	DefaultInstanceLabel = "inferxds.io/instance"
)

// Keys read beside the configurable ones.
const (
	// ZoneRoleLabel on a Node says whether its zone is active or standby.
	ZoneRoleLabel = "inferxds.io/zone-role"
	// PortAnnotation on a Pod names the serving port, by number or by
	// container port name.
	PortAnnotation = "inferxds.io/port"
	// MetricsPortAnnotation on a Pod names its model server's Prometheus
	// port (a number or a container port name), scraped at /metrics.
	MetricsPortAnnotation = "inferxds.io/metrics-port"
	// GPUsAnnotation on a Pod lists the GPU indexes it holds ("0,1").
	GPUsAnnotation = "inferxds.io/gpus"

	// ZoneLabel is the well-known label of a Node's zone.
	ZoneLabel = corev1.LabelTopologyZone
	// GPUResource is the NVIDIA device plugin's resource name.
	GPUResource corev1.ResourceName = "nvidia.com/gpu"
	// GPUProductLabel and GPUMemoryLabel (MiB) are set on Nodes by NVIDIA's
	// GPU feature discovery.
	GPUProductLabel = "nvidia.com/gpu.product"
	GPUMemoryLabel  = "nvidia.com/gpu.memory"
)

// The seed's labels: its standby manager labels a standby's workload with
// app=<model> and standby-type=cold|warm|hot|promoting; its failover
// controller reads model=<model> and marks a failed Pod status=failed.
const (
	SeedAppLabel         = "app"
	SeedModelLabel       = "model"
	SeedStandbyTypeLabel = "standby-type"
	SeedStatusLabel      = "status"

	seedPromoting = "promoting"
	seedFailed    = "failed"
)

// Labels are the Pod label keys for an instance's model, tier, role and
// name. The Kubernetes source reads them and the Kubernetes actuator
// writes them.
type Labels struct {
	Model string
	Tier  string
	Role  string
	// Instance names the instance a Pod runs, for Pods whose own names
	// are not the instance's (those a Deployment makes); without it the
	// instance is named InstanceName(namespace, pod).
	Instance string
}

// DefaultLabels are the inferxds.io/ keys.
func DefaultLabels() Labels {
	return Labels{Model: DefaultModelLabel, Tier: DefaultTierLabel, Role: DefaultRoleLabel, Instance: DefaultInstanceLabel}
}

// withDefaults fills each empty key with its default.
func (l Labels) withDefaults() Labels {
	d := DefaultLabels()
	return Labels{Model: cmp.Or(l.Model, d.Model), Tier: cmp.Or(l.Tier, d.Tier), Role: cmp.Or(l.Role, d.Role), Instance: cmp.Or(l.Instance, d.Instance)}
}

// instanceName is the Instance label's value, else InstanceName.
func (l Labels) instanceName(pod *corev1.Pod) string {
	if name, ok := pod.Labels[l.Instance]; ok {
		return name
	}
	return InstanceName(pod.Namespace, pod.Name)
}

// Validate says which key is not a valid, distinct label key.
func (l Labels) Validate() error {
	var errs []error
	seen := map[string]string{}
	for _, k := range []struct{ what, key string }{{"model", l.Model}, {"tier", l.Tier}, {"role", l.Role}, {"instance", l.Instance}} {
		if msgs := validation.IsQualifiedName(k.key); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("%s label key %q: %s", k.what, k.key, strings.Join(msgs, "; ")))
		} else if other, dup := seen[k.key]; dup {
			errs = append(errs, fmt.Errorf("%s label key %q is also the %s label key", k.what, k.key, other))
		}
		seen[k.key] = k.what
	}
	return errors.Join(errs...)
}

// Identity is what a Pod's labels say about the instance it runs.
type Identity struct {
	Model string
	Tier  topology.Tier
	Role  topology.Role
	// Loading is set while the seed's standby manager promotes the Pod
	// (standby-type=promoting); Failed when its failover controller marked
	// it status=failed.
	Loading bool
	Failed  bool
}

// Read maps a Pod's labels to the instance's identity. ok is false for a
// Pod that runs no model: one with neither the model key, the seed's model
// label, nor the seed's app label beside standby-type (app alone names
// every kind of workload). Labels with values that mean nothing are an
// error naming the label.
func (l Labels) Read(podLabels map[string]string) (id Identity, ok bool, err error) {
	id.Model, ok = l.model(podLabels)
	if !ok {
		return Identity{}, false, nil
	}
	if err := topology.ValidateName(id.Model); err != nil {
		return Identity{}, true, fmt.Errorf("label %s: model name %w", l.modelKey(podLabels), err)
	}
	standbyType, seedStandby := podLabels[SeedStandbyTypeLabel]
	tierErr := id.readTier(podLabels, l.Tier, standbyType, seedStandby)
	roleErr := id.readRole(podLabels, l.Role, seedStandby)
	id.Failed = podLabels[SeedStatusLabel] == seedFailed
	return id, true, errors.Join(tierErr, roleErr)
}

func (l Labels) model(podLabels map[string]string) (string, bool) {
	key := l.modelKey(podLabels)
	model, ok := podLabels[key]
	return model, ok && key != ""
}

// modelKey is the label the model name is read from; "" when none.
func (l Labels) modelKey(podLabels map[string]string) string {
	for _, key := range []string{l.Model, SeedModelLabel} {
		if _, ok := podLabels[key]; ok {
			return key
		}
	}
	if _, standby := podLabels[SeedStandbyTypeLabel]; standby {
		if _, ok := podLabels[SeedAppLabel]; ok {
			return SeedAppLabel
		}
	}
	return ""
}

// readTier reads the tier key, else the seed's standby-type, else hot.
func (id *Identity) readTier(podLabels map[string]string, key, standbyType string, seedStandby bool) error {
	if v, ok := podLabels[key]; ok {
		id.Tier = topology.Tier(v)
		return checkTier(key, id.Tier, "hot, warm or cold")
	}
	id.Tier = topology.TierHot
	if !seedStandby {
		return nil
	}
	if standbyType == seedPromoting {
		id.Loading = true
		return nil
	}
	id.Tier = topology.Tier(standbyType)
	return checkTier(SeedStandbyTypeLabel, id.Tier, "hot, warm, cold or "+seedPromoting)
}

func checkTier(key string, t topology.Tier, allowed string) error {
	switch t {
	case topology.TierHot, topology.TierWarm, topology.TierCold:
		return nil
	}
	return fmt.Errorf("label %s: must be %s (got %q)", key, allowed, t)
}

// readRole reads the role key; without it a Pod the seed labels as a
// standby is a standby and any other a primary.
func (id *Identity) readRole(podLabels map[string]string, key string, seedStandby bool) error {
	v, ok := podLabels[key]
	switch {
	case !ok && seedStandby:
		id.Role = topology.RoleStandby
	case !ok:
		id.Role = topology.RolePrimary
	case v == string(topology.RolePrimary) || v == string(topology.RoleStandby):
		id.Role = topology.Role(v)
	default:
		return fmt.Errorf("label %s: must be primary or standby (got %q)", key, v)
	}
	return nil
}

// For returns the labels that give a Pod the model, tier and role, as the
// actuator applies them; they take precedence over the seed's labels.
func (l Labels) For(model string, tier topology.Tier, role topology.Role) map[string]string {
	return map[string]string{l.Model: model, l.Tier: string(tier), l.Role: string(role)}
}

// InstanceName names the instance a Pod runs: "<pod>.<namespace>", unique
// across the watched namespaces and a valid fleet name.
func InstanceName(namespace, pod string) string { return pod + "." + namespace }

// PodOf is InstanceName's inverse; ok is false for a name it did not make.
func PodOf(instance string) (namespace, pod string, ok bool) {
	i := strings.LastIndexByte(instance, '.')
	if i <= 0 || i == len(instance)-1 {
		return "", "", false
	}
	return instance[i+1:], instance[:i], true
}
