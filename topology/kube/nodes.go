package kube

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/inferxds/inferxds/topology"
)

func indexNodes(nodes []*corev1.Node) map[string]*corev1.Node {
	index := make(map[string]*corev1.Node, len(nodes))
	for _, n := range nodes {
		if n != nil {
			index[n.Name] = n
		}
	}
	return index
}

func nodeZone(n *corev1.Node) (string, error) {
	zone, ok := n.Labels[ZoneLabel]
	if !ok {
		return "", fmt.Errorf("node %s has no %s label", n.Name, ZoneLabel)
	}
	if err := topology.ValidateName(zone); err != nil {
		return "", fmt.Errorf("node %s: label %s: zone name %w", n.Name, ZoneLabel, err)
	}
	return zone, nil
}

// nodeHealth is the Node's Ready condition: serving, unhealthy, or unknown
// when the node controller lost touch or never said.
func nodeHealth(n *corev1.Node) topology.Health {
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		switch c.Status {
		case corev1.ConditionTrue:
			return topology.HealthServing
		case corev1.ConditionFalse:
			return topology.HealthUnhealthy
		}
	}
	return topology.HealthUnknown
}

func gpuCapacity(n *corev1.Node) int {
	q, ok := n.Status.Capacity[GPUResource]
	if !ok {
		return 0
	}
	return int(q.Value())
}

// nodeGPUs are the Node's nvidia.com/gpu devices, indexed from 0, with the
// product and memory GPU feature discovery labels when present.
func nodeGPUs(n *corev1.Node) []topology.GPU {
	count := gpuCapacity(n)
	if count == 0 {
		return nil
	}
	memory, _ := strconv.ParseInt(n.Labels[GPUMemoryLabel], 10, 64)
	gpus := make([]topology.GPU, count)
	for i := range gpus {
		gpus[i] = topology.GPU{Index: i, Model: n.Labels[GPUProductLabel], MemoryTotalMiB: max(memory, 0)}
	}
	return gpus
}

// zoneRoles gives each zone of the kept nodes and of the instances with
// no node (cold standbys) its role: the ZoneRoleLabel its nodes carry
// (they must agree), else standby when Options name it, else active.
func (m *mapping) zoneRoles(nodes []*corev1.Node) []topology.Zone {
	labelled := map[string]topology.ZoneRole{}
	var zones []topology.Zone
	addZone := func(zone string) {
		if !slices.ContainsFunc(zones, func(z topology.Zone) bool { return z.Name == zone }) {
			zones = append(zones, topology.Zone{Name: zone})
		}
	}
	for _, n := range nodes {
		zone, _ := nodeZone(n)
		addZone(zone)
		if err := readZoneRole(n, zone, labelled); err != nil {
			m.problem("node", "", n.Name, err)
		}
	}
	for _, in := range m.instances {
		if in.Node == "" {
			addZone(in.Zone)
		}
	}
	for i := range zones {
		zones[i].Role = m.zoneRole(zones[i].Name, labelled)
	}
	return zones
}

func (m *mapping) zoneRole(zone string, labelled map[string]topology.ZoneRole) topology.ZoneRole {
	if role, ok := labelled[zone]; ok {
		return role
	}
	if slices.Contains(m.opts.StandbyZones, zone) {
		return topology.ZoneStandby
	}
	return topology.ZoneActive
}

// readZoneRole records the node's ZoneRoleLabel for its zone.
func readZoneRole(n *corev1.Node, zone string, labelled map[string]topology.ZoneRole) error {
	v, ok := n.Labels[ZoneRoleLabel]
	if !ok {
		return nil
	}
	role := topology.ZoneRole(v)
	if role != topology.ZoneActive && role != topology.ZoneStandby {
		return fmt.Errorf("label %s: must be active or standby (got %q)", ZoneRoleLabel, v)
	}
	if other, seen := labelled[zone]; seen && other != role {
		return fmt.Errorf("label %s: %s, but another node of zone %s says %s", ZoneRoleLabel, role, zone, other)
	}
	labelled[zone] = role
	return nil
}

// podGPUs ties an instance to the Pod it came from, for GPU assignment.
type podGPUs struct {
	instance int
	pod      *corev1.Pod
}

// assignGPUs gives each instance the GPU indexes its Pod holds: those its
// GPUsAnnotation names, then, for the others, the lowest free ones on its
// node, in Pod order. Kubernetes does not say which device a Pod got, only
// how many; the count is what placement and quotas need.
func (m *mapping) assignGPUs() {
	taken := map[string][]int{}
	var unnamed []podGPUs
	for _, p := range m.pods {
		indexes, named, err := annotatedGPUs(p.pod, gpuCapacity(m.nodes[p.pod.Spec.NodeName]))
		if err != nil {
			m.problem("pod", p.pod.Namespace, p.pod.Name, err)
		}
		if !named {
			unnamed = append(unnamed, p)
			continue
		}
		in := &m.instances[p.instance]
		in.GPUs = indexes
		taken[in.Node] = append(taken[in.Node], indexes...)
	}
	for _, p := range unnamed {
		in := &m.instances[p.instance]
		in.GPUs = m.freeGPUs(in.Node, podGPURequest(p.pod), taken[in.Node])
		taken[in.Node] = append(taken[in.Node], in.GPUs...)
		if got, want := len(in.GPUs), podGPURequest(p.pod); got < want {
			m.problem("pod", p.pod.Namespace, p.pod.Name, fmt.Errorf("requests %d GPUs; node %s has %d free", want, in.Node, got))
		}
	}
}

func (m *mapping) freeGPUs(node string, want int, taken []int) []int {
	var free []int
	for i := 0; i < gpuCapacity(m.nodes[node]) && len(free) < want; i++ {
		if !slices.Contains(taken, i) {
			free = append(free, i)
		}
	}
	return free
}

// annotatedGPUs reads GPUsAnnotation ("0,1"), indexes below capacity;
// named is false without it.
func annotatedGPUs(pod *corev1.Pod, capacity int) (indexes []int, named bool, err error) {
	v, ok := pod.Annotations[GPUsAnnotation]
	if !ok {
		return nil, false, nil
	}
	for field := range strings.SplitSeq(v, ",") {
		i, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || i < 0 || i >= capacity || slices.Contains(indexes, i) {
			return nil, false, fmt.Errorf("annotation %s: %q is not a list of distinct GPU indexes below the node's %d (like \"0,1\")", GPUsAnnotation, v, capacity)
		}
		indexes = append(indexes, i)
	}
	return indexes, true, nil
}

// podGPURequest is the GPUs the Pod's containers request (their limit
// when they set only that, as the API allows for extended resources).
func podGPURequest(pod *corev1.Pod) int {
	total := 0
	for _, c := range pod.Spec.Containers {
		q, ok := c.Resources.Requests[GPUResource]
		if !ok {
			q = c.Resources.Limits[GPUResource]
		}
		total += int(q.Value())
	}
	return total
}
