package kube

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/inferxds/inferxds/topology/kube/kubetest"
)

// BenchmarkFleetFrom maps a large cluster: 500 models × 20 ready Pods of
// one GPU on 1,250 eight-GPU Nodes in three zones, one EndpointSlice per
// model. The Source does this once per coalesced burst of API events.
func BenchmarkFleetFrom(b *testing.B) {
	const models, perModel, nodes = 500, 20, 1250
	var pods []*corev1.Pod
	var slices []*discoveryv1.EndpointSlice
	var nodeObjs []*corev1.Node
	for n := range nodes {
		nodeObjs = append(nodeObjs, kubetest.Node(fmt.Sprintf("gpu-%d", n), fmt.Sprintf("az-%d", n%3+1), 8))
	}
	for m := range models {
		var endpoints []kubetest.Endpoint
		for i := range perModel {
			k := m*perModel + i
			name := fmt.Sprintf("model-%d-%d", m, i)
			pods = append(pods, kubetest.Pod(name, fmt.Sprintf("gpu-%d", k%nodes), fmt.Sprintf("10.%d.%d.%d", k>>16, k>>8&255, k&255),
				map[string]string{DefaultModelLabel: fmt.Sprintf("model-%d", m)}, kubetest.RequestingGPUs(1)))
			endpoints = append(endpoints, kubetest.ReadyEndpoint(name, true))
		}
		slices = append(slices, kubetest.Slice(fmt.Sprintf("model-%d", m), nil, endpoints...))
	}
	b.ReportAllocs()
	for b.Loop() {
		f, err := FleetFrom(pods, nil, slices, nodeObjs, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(f.Instances) != models*perModel {
			b.Fatalf("%d instances, want %d", len(f.Instances), models*perModel)
		}
	}
}
