package kube

import kubetopo "github.com/inferxds/inferxds/topology/kube"

// DefaultInstanceLabel is the label tying a Pod to the instance the
// actuator made it for, which the Kubernetes fleet source names it by.
const DefaultInstanceLabel = kubetopo.DefaultInstanceLabel

// Labels are the label keys the actuator writes: the Kubernetes fleet
// source's model, tier and role keys, which it reads, and the instance key.
type Labels struct {
	kubetopo.Labels
	Instance string
}

// DefaultLabels are the inferxds.io/ keys.
func DefaultLabels() Labels {
	return Labels{Labels: kubetopo.DefaultLabels(), Instance: DefaultInstanceLabel}
}

// orDefault fills each empty key with its default.
func (l Labels) orDefault() Labels {
	d := DefaultLabels()
	return Labels{
		Labels:   kubetopo.Labels{Model: or(l.Model, d.Model), Tier: or(l.Tier, d.Tier), Role: or(l.Role, d.Role)},
		Instance: or(l.Instance, d.Instance),
	}
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
