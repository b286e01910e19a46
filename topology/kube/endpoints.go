package kube

import (
	discoveryv1 "k8s.io/api/discovery/v1"
)

// endpoint is what the EndpointSlices say about one Pod.
type endpoint struct {
	conditions discoveryv1.EndpointConditions
	// port is the slice's serving port; 0 when it names none.
	port uint32
}

// indexEndpoints indexes the Pods' endpoints by namespace/name. A Pod that
// several slices list (several Services) takes its entry from the first
// slice by namespace/name, so the result does not depend on list order.
func indexEndpoints(endpointSlices []*discoveryv1.EndpointSlice, portName string) map[string]endpoint {
	index := map[string]endpoint{}
	for _, s := range sortedByKey(endpointSlices) {
		port := slicePort(s.Ports, portName)
		for _, e := range s.Endpoints {
			if e.TargetRef == nil || e.TargetRef.Kind != "Pod" {
				continue
			}
			key := objectKey(s.Namespace, e.TargetRef.Name)
			if _, seen := index[key]; !seen {
				index[key] = endpoint{conditions: e.Conditions, port: port}
			}
		}
	}
	return index
}

// slicePort is the port named portName, else the only port; 0 if neither.
func slicePort(ports []discoveryv1.EndpointPort, portName string) uint32 {
	for _, p := range ports {
		if p.Name != nil && *p.Name == portName && p.Port != nil {
			return uint32(*p.Port)
		}
	}
	if len(ports) == 1 && ports[0].Port != nil {
		return uint32(*ports[0].Port)
	}
	return 0
}
