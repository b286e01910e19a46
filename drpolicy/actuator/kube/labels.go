package kube

import (
	"cmp"

	kubetopo "github.com/inferxds/inferxds/topology/kube"
)

// keys are the label keys the actuator writes: the Kubernetes fleet
// source's, which it reads, each empty one the default.
type keys struct{ kubetopo.Labels }

func newKeys(l kubetopo.Labels) keys {
	d := kubetopo.DefaultLabels()
	return keys{kubetopo.Labels{
		Model: cmp.Or(l.Model, d.Model), Tier: cmp.Or(l.Tier, d.Tier), Role: cmp.Or(l.Role, d.Role), Instance: cmp.Or(l.Instance, d.Instance),
	}}
}
