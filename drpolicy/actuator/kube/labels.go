package kube

// Labels are the label keys the actuator writes on the workloads it
// manages; the Kubernetes fleet source reads the same keys.
type Labels struct {
	Model    string
	Tier     string
	Role     string
	Instance string
}

// DefaultLabels are the inferxds.io/ keys.
func DefaultLabels() Labels {
	return Labels{
		Model:    "inferxds.io/model",
		Tier:     "inferxds.io/tier",
		Role:     "inferxds.io/role",
		Instance: "inferxds.io/instance",
	}
}

// orDefault fills each empty key with its default.
func (l Labels) orDefault() Labels {
	d := DefaultLabels()
	return Labels{Model: or(l.Model, d.Model), Tier: or(l.Tier, d.Tier), Role: or(l.Role, d.Role), Instance: or(l.Instance, d.Instance)}
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
