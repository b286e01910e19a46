package kube

import (
	"fmt"
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/inferxds/inferxds/topology"
)

// podHealth says whether an instance serves. A Pod being deleted drains;
// one the seed's labels say failed is unhealthy; one the seed promotes is
// loading. Otherwise its EndpointSlice conditions decide (terminating →
// draining, ready — or not said, which the API means as ready — → serving,
// not ready → unhealthy); a Pod no slice lists serves once it is Ready and
// is loading until then.
func podHealth(pod *corev1.Pod, id Identity, ep endpoint, listed bool) topology.Health {
	switch {
	case pod.DeletionTimestamp != nil:
		return topology.HealthDraining
	case id.Failed:
		return topology.HealthUnhealthy
	case id.Loading:
		return topology.HealthLoading
	case listed:
		return endpointHealth(ep.conditions)
	case podReady(pod):
		return topology.HealthServing
	}
	return topology.HealthLoading
}

func endpointHealth(c discoveryv1.EndpointConditions) topology.Health {
	switch {
	case c.Terminating != nil && *c.Terminating:
		return topology.HealthDraining
	case c.Ready == nil || *c.Ready:
		return topology.HealthServing
	}
	return topology.HealthUnhealthy
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// servingPort is the port the PortAnnotation names (a number or a
// container port name), else the EndpointSlice's, else the Pod's container
// port named portName or its only one.
func servingPort(pod *corev1.Pod, slicePort uint32, portName string) (uint32, error) {
	if v, ok := pod.Annotations[PortAnnotation]; ok {
		return annotatedPort(pod, PortAnnotation, v)
	}
	if slicePort != 0 {
		return slicePort, nil
	}
	ports := containerPorts(pod)
	if p, ok := ports[portName]; ok {
		return p, nil
	}
	if len(ports) == 1 {
		for _, p := range ports {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no serving port: annotate %s, or give the Pod one container port or one named %q", PortAnnotation, portName)
}

// annotatedPort reads the port annotation key holds: a number or the name
// of one of the Pod's container ports.
func annotatedPort(pod *corev1.Pod, key, v string) (uint32, error) {
	if n, err := strconv.ParseUint(v, 10, 16); err == nil && n > 0 {
		return uint32(n), nil
	}
	if p, ok := containerPorts(pod)[v]; ok {
		return p, nil
	}
	return 0, fmt.Errorf("annotation %s: %q is neither a port number (1-65535) nor a container port name", key, v)
}

// metricsURL is the model server's Prometheus endpoint on the port the
// MetricsPortAnnotation names; "" without it.
func metricsURL(pod *corev1.Pod) (string, error) {
	v, ok := pod.Annotations[MetricsPortAnnotation]
	if !ok {
		return "", nil
	}
	port, err := annotatedPort(pod, MetricsPortAnnotation, v)
	if err != nil {
		return "", err
	}
	return "http://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(port))) + "/metrics", nil
}

// containerPorts are the Pod's TCP container ports by name (unnamed ones
// under their number).
func containerPorts(pod *corev1.Pod) map[string]uint32 {
	ports := map[string]uint32{}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
				continue
			}
			name := p.Name
			if name == "" {
				name = strconv.Itoa(int(p.ContainerPort))
			}
			ports[name] = uint32(p.ContainerPort)
		}
	}
	return ports
}
