package topology

import "slices"

// Equal reports whether two fleets hold the same values in the same order.
// Sources sort fleets (ApplyDefaults), so equal content compares equal; a nil
// slice equals an empty one. A nil fleet equals only a nil fleet.
func (f *Fleet) Equal(o *Fleet) bool {
	if f == nil || o == nil {
		return f == o
	}
	return slices.Equal(f.Zones, o.Zones) &&
		slices.EqualFunc(f.Nodes, o.Nodes, Node.equal) &&
		slices.EqualFunc(f.Instances, o.Instances, Instance.equal)
}

func (n Node) equal(o Node) bool {
	return n.Name == o.Name && n.Zone == o.Zone && n.Health == o.Health &&
		n.TelemetryURL == o.TelemetryURL && n.TelemetryAge == o.TelemetryAge && slices.Equal(n.GPUs, o.GPUs)
}

func (i Instance) equal(o Instance) bool {
	return i.Name == o.Name && i.Model == o.Model && i.Node == o.Node && i.Zone == o.Zone &&
		slices.Equal(i.GPUs, o.GPUs) && i.Address == o.Address && i.Port == o.Port &&
		i.Tier == o.Tier && i.Role == o.Role && i.Health == o.Health && i.Weight == o.Weight &&
		i.Load == o.Load && i.MetricsURL == o.MetricsURL
}
