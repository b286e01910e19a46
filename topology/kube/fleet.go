package kube

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/inferxds/inferxds/topology"
)

// DefaultPortName is the port picked when an EndpointSlice or a Pod has
// several.
const DefaultPortName = "http"

// Options say how Kubernetes objects map into the fleet.
type Options struct {
	// Labels are the Pod label keys (each empty one: its default).
	Labels Labels
	// PortName picks the serving port among several (default "http").
	PortName string
	// StandbyZones are standby zones unless their Nodes' ZoneRoleLabel
	// says otherwise; every other zone is active.
	StandbyZones []string
}

func (o Options) withDefaults() Options {
	o.Labels = o.Labels.withDefaults()
	if o.PortName == "" {
		o.PortName = DefaultPortName
	}
	return o
}

// FleetFrom maps Pods, Deployments, EndpointSlices and Nodes into a fleet:
// one instance per Pod that runs a model (see Labels.Read) and has an IP
// on a known node, or per instance label (the best serving of its Pods);
// a cold standby per Deployment of a model scaled to 0 with no running
// Pod; the nodes that host an instance or have GPUs; their zones. The
// mapping is pure and its output sorted, so the same objects in any order
// give an equal fleet.
//
// A Pod, Deployment or Node that cannot be mapped (a label value that
// means nothing, no serving port, no zone) is left out and named in the
// error, which comes
// beside the fleet of everything else: one mislabelled Pod does not stop
// the others from being followed. The fleet is nil only when what was
// mapped does not validate.
func FleetFrom(pods []*corev1.Pod, deployments []*appsv1.Deployment, endpointSlices []*discoveryv1.EndpointSlice, nodes []*corev1.Node, opts Options) (*topology.Fleet, error) {
	opts = opts.withDefaults()
	m := mapping{
		opts: opts, endpoints: indexEndpoints(endpointSlices, opts.PortName), nodes: indexNodes(nodes),
		used: map[string]bool{}, addresses: map[string]string{},
	}
	cands := make([]candidate, 0, len(pods))
	for _, pod := range sortedByKey(pods) {
		if c, ok := m.candidate(pod); ok {
			cands = append(cands, c)
		}
	}
	cands = onePerInstance(cands)
	m.instances = make([]topology.Instance, 0, len(cands))
	m.pods = make([]podGPUs, 0, len(cands))
	for _, c := range cands {
		m.add(c)
	}
	m.addColdStandbys(deployments, pods)
	m.addNodesAndZones()
	f := &topology.Fleet{Zones: m.zones, Nodes: m.fleetNodes, Instances: m.instances}
	f.ApplyDefaults()
	if err := f.Validate(); err != nil {
		return nil, errors.Join(append(m.problems, err)...)
	}
	return f, errors.Join(m.problems...)
}

// mapping is one FleetFrom's working state.
type mapping struct {
	opts      Options
	endpoints map[string]endpoint
	nodes     map[string]*corev1.Node
	// used are the nodes instances run on, by name.
	used map[string]bool
	// addresses holds each instance address:port taken, with its holder.
	addresses  map[string]string
	pods       []podGPUs
	instances  []topology.Instance
	fleetNodes []topology.Node
	zones      []topology.Zone
	problems   []error
}

func (m *mapping) problem(kind, namespace, name string, err error) {
	if namespace != "" {
		name = namespace + "/" + name
	}
	m.problems = append(m.problems, fmt.Errorf("%s %s: %w", kind, name, err))
}

// candidate is a Pod's instance before the Pods that claim the same
// instance name are settled.
type candidate struct {
	in  topology.Instance
	pod *corev1.Pod
}

// candidate maps a Pod to its instance; ok is false for a Pod that runs
// none, or one with a problem (recorded).
func (m *mapping) candidate(pod *corev1.Pod) (c candidate, ok bool) {
	id, ok, err := m.opts.Labels.Read(pod.Labels)
	if !ok || !running(pod) {
		return candidate{}, false
	}
	ep, listed := m.endpoints[objectKey(pod.Namespace, pod.Name)]
	in := topology.Instance{
		Name: m.opts.Labels.instanceName(pod), Model: id.Model, Node: pod.Spec.NodeName,
		Address: pod.Status.PodIP, Tier: id.Tier, Role: id.Role, Health: podHealth(pod, id, ep, listed),
	}
	if err == nil {
		err = m.checkPlacement(in)
	}
	if err == nil {
		in.Port, err = servingPort(pod, ep.port, m.opts.PortName)
	}
	if err == nil {
		in.MetricsURL, err = metricsURL(pod)
	}
	if err != nil {
		m.problem("pod", pod.Namespace, pod.Name, err)
		return candidate{}, false
	}
	return candidate{in: in, pod: pod}, true
}

// add adds a candidate's instance unless its address is taken.
func (m *mapping) add(c candidate) {
	if err := m.claimAddress(c.in, objectKey(c.pod.Namespace, c.pod.Name)); err != nil {
		m.problem("pod", c.pod.Namespace, c.pod.Name, err)
		return
	}
	m.instances = append(m.instances, c.in)
	m.pods = append(m.pods, podGPUs{instance: len(m.instances) - 1, pod: c.pod})
	m.used[c.in.Node] = true
}

// onePerInstance keeps, of the Pods that claim one instance name (an old
// and a new Pod of a Deployment while it rolls), the one that serves best,
// the first by namespace/name among equals; order is kept.
func onePerInstance(cands []candidate) []candidate {
	best := map[string]int{}
	for i, c := range cands {
		if j, seen := best[c.in.Name]; !seen || healthRank(c.in.Health) > healthRank(cands[j].in.Health) {
			best[c.in.Name] = i
		}
	}
	kept := make([]candidate, 0, len(best))
	for i, c := range cands {
		if best[c.in.Name] == i {
			kept = append(kept, c)
		}
	}
	return kept
}

// healthRank orders health from most to least able to serve.
func healthRank(h topology.Health) int {
	switch h {
	case topology.HealthServing:
		return 4
	case topology.HealthUnknown:
		return 3
	case topology.HealthLoading:
		return 2
	case topology.HealthUnhealthy:
		return 1
	}
	return 0
}

// running reports whether a Pod is placed, has an IP, and has not ended:
// a Pod that Failed or Succeeded keeps its IP in its status after another
// Pod may have been given it.
func running(pod *corev1.Pod) bool {
	return pod.Status.PodIP != "" && pod.Spec.NodeName != "" &&
		pod.Status.Phase != corev1.PodFailed && pod.Status.Phase != corev1.PodSucceeded
}

// claimAddress refuses an instance whose address and port an earlier Pod
// (by namespace/name) holds, as two host-network Pods can both claim.
func (m *mapping) claimAddress(in topology.Instance, podKey string) error {
	addr := net.JoinHostPort(in.Address, strconv.Itoa(int(in.Port)))
	if holder, taken := m.addresses[addr]; taken {
		return fmt.Errorf("address %s is also Pod %s's", addr, holder)
	}
	m.addresses[addr] = podKey
	return nil
}

// checkPlacement refuses an instance whose name or node cannot be used.
func (m *mapping) checkPlacement(in topology.Instance) error {
	if err := topology.ValidateName(in.Name); err != nil {
		return fmt.Errorf("instance name %w", err)
	}
	node, ok := m.nodes[in.Node]
	if !ok {
		return fmt.Errorf("node %s is not known", in.Node)
	}
	_, err := nodeZone(node)
	return err
}

// addNodesAndZones adds the nodes instances run on and those with GPUs,
// their zones, and the GPUs each instance holds.
func (m *mapping) addNodesAndZones() {
	var kept []*corev1.Node
	for _, n := range sortedByKey(mapValues(m.nodes)) {
		if !m.used[n.Name] && gpuCapacity(n) == 0 {
			continue
		}
		zone, err := nodeZone(n)
		if err != nil {
			m.problem("node", "", n.Name, err)
			continue
		}
		m.fleetNodes = append(m.fleetNodes, topology.Node{Name: n.Name, Zone: zone, Health: nodeHealth(n), GPUs: nodeGPUs(n)})
		kept = append(kept, n)
	}
	m.zones = m.zoneRoles(kept)
	m.assignGPUs()
}

func objectKey(namespace, name string) string { return namespace + "/" + name }

type keyed interface {
	GetNamespace() string
	GetName() string
}

// sortedByKey orders objects by namespace/name, dropping nils.
func sortedByKey[T any, P interface {
	*T
	keyed
}](objs []P) []P {
	out := slices.DeleteFunc(slices.Clone(objs), func(o P) bool { return o == nil })
	slices.SortFunc(out, func(a, b P) int {
		return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
	})
	return out
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
