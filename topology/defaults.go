package topology

// ApplyDefaults fills what a source left out, in place, then sorts: tier
// hot, role primary, health serving, an instance's zone from its node.
func (f *Fleet) ApplyDefaults() {
	f.fillDefaults()
	f.Sort()
}

// fillDefaults is ApplyDefaults without the sort, so that a file's values
// can be validated in file order (and errors point at the right line).
func (f *Fleet) fillDefaults() {
	nodeZones := make(map[string]string, len(f.Nodes))
	for _, n := range f.Nodes {
		if _, dup := nodeZones[n.Name]; !dup {
			nodeZones[n.Name] = n.Zone
		}
	}
	for i := range f.Instances {
		in := &f.Instances[i]
		if in.Tier == "" {
			in.Tier = TierHot
		}
		if in.Role == "" {
			in.Role = RolePrimary
		}
		if in.Health == "" {
			in.Health = HealthServing
		}
		if zone, ok := nodeZones[in.Node]; ok && in.Zone == "" {
			in.Zone = zone
		}
	}
}
