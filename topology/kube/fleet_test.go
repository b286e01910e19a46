package kube

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/inferxds/inferxds/topology"
)

const ns = "inference"

type podOption func(*corev1.Pod)

func testPod(name, node, ip string, labels map[string]string, opts ...podOption) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
			Name: "server", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8000}},
		}}},
		Status: corev1.PodStatus{PodIP: ip, Phase: corev1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func model(name string) map[string]string { return map[string]string{DefaultModelLabel: name} }

func withLabels(labels map[string]string) podOption {
	return func(p *corev1.Pod) {
		for k, v := range labels {
			p.Labels[k] = v
		}
	}
}

func annotated(key, value string) podOption {
	return func(p *corev1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[key] = value
	}
}

func requestingGPUs(n int64) podOption {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{GPUResource: *resource.NewQuantity(n, resource.DecimalSI)}
	}
}

func ready(status corev1.ConditionStatus) podOption {
	return func(p *corev1.Pod) {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
	}
}

func deleting(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{} }

func noPorts(p *corev1.Pod) { p.Spec.Containers[0].Ports = nil }

func testNode(name, zone string, gpus int64, labels ...string) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}},
		Status: corev1.NodeStatus{
			Capacity:   corev1.ResourceList{},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	if zone != "" {
		n.Labels[ZoneLabel] = zone
	}
	if gpus > 0 {
		n.Status.Capacity[GPUResource] = *resource.NewQuantity(gpus, resource.DecimalSI)
	}
	for i := 0; i+1 < len(labels); i += 2 {
		n.Labels[labels[i]] = labels[i+1]
	}
	return n
}

type endpointState struct {
	pod                         string
	ready, serving, terminating *bool
}

func ep(pod string, ready bool) endpointState { return endpointState{pod: pod, ready: &ready} }

func testSlice(name string, ports []discoveryv1.EndpointPort, endpoints ...endpointState) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       ports,
	}
	for _, e := range endpoints {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{"10.0.0.1"},
			Conditions: discoveryv1.EndpointConditions{Ready: e.ready, Serving: e.serving, Terminating: e.terminating},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: e.pod},
		})
	}
	return s
}

func port(name string, number int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: &name, Port: &number}
}

func boolp(b bool) *bool { return &b }

func instance(pod, model, node, zone, ip string, port uint32, health topology.Health) topology.Instance {
	return topology.Instance{
		Name: InstanceName(ns, pod), Model: model, Node: node, Zone: zone, Address: ip, Port: port,
		Tier: topology.TierHot, Role: topology.RolePrimary, Health: health,
	}
}

func readyNode(name, zone string, gpus ...topology.GPU) topology.Node {
	return topology.Node{Name: name, Zone: zone, Health: topology.HealthServing, GPUs: gpus}
}

func TestFleetFrom(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pods    []*corev1.Pod
		slices  []*discoveryv1.EndpointSlice
		nodes   []*corev1.Node
		opts    Options
		want    *topology.Fleet
		wantErr []string
	}{{
		name: "primary and standby in an active and a standby zone",
		pods: []*corev1.Pod{
			testPod("llama-0", "n1", "10.0.0.1", model("llama")),
			testPod("llama-1", "n3", "10.0.0.3", model("llama"), withLabels(map[string]string{DefaultRoleLabel: "standby"})),
			testPod("router", "n1", "10.0.0.9", map[string]string{"app": "model-router"}),
		},
		slices: []*discoveryv1.EndpointSlice{testSlice("llama-x", []discoveryv1.EndpointPort{port("http", 8000)}, ep("llama-0", true), ep("llama-1", true))},
		nodes:  []*corev1.Node{testNode("n1", "az-1", 0), testNode("n3", "az-3", 0, ZoneRoleLabel, "standby"), testNode("cpu-only", "az-2", 0)},
		want: &topology.Fleet{
			Zones: []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}, {Name: "az-3", Role: topology.ZoneStandby}},
			Nodes: []topology.Node{readyNode("n1", "az-1"), readyNode("n3", "az-3")},
			Instances: []topology.Instance{
				instance("llama-0", "llama", "n1", "az-1", "10.0.0.1", 8000, topology.HealthServing),
				func() topology.Instance {
					in := instance("llama-1", "llama", "n3", "az-3", "10.0.0.3", 8000, topology.HealthServing)
					in.Role = topology.RoleStandby
					return in
				}(),
			},
		},
	}, {
		name: "health from endpoint conditions, deletion and the Pod's Ready condition",
		pods: []*corev1.Pod{
			testPod("ready", "n1", "10.0.0.1", model("m")),
			testPod("not-ready", "n1", "10.0.0.2", model("m")),
			testPod("terminating", "n1", "10.0.0.3", model("m")),
			testPod("unsaid", "n1", "10.0.0.4", model("m")),
			testPod("deleting", "n1", "10.0.0.5", model("m"), deleting),
			testPod("unlisted-ready", "n1", "10.0.0.6", model("m"), ready(corev1.ConditionTrue)),
			testPod("unlisted-starting", "n1", "10.0.0.7", model("m"), ready(corev1.ConditionFalse)),
			testPod("seed-failed", "n1", "10.0.0.8", model("m"), withLabels(map[string]string{"status": "failed"})),
			testPod("not-yet-running", "n1", "", model("m")),
		},
		slices: []*discoveryv1.EndpointSlice{testSlice("m", nil,
			ep("ready", true), ep("not-ready", false), ep("deleting", true), ep("seed-failed", true),
			endpointState{pod: "terminating", ready: boolp(false), serving: boolp(true), terminating: boolp(true)},
			endpointState{pod: "unsaid"},
		)},
		nodes: []*corev1.Node{testNode("n1", "az-1", 0)},
		want: &topology.Fleet{
			Zones: []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}},
			Nodes: []topology.Node{readyNode("n1", "az-1")},
			Instances: []topology.Instance{
				instance("deleting", "m", "n1", "az-1", "10.0.0.5", 8000, topology.HealthDraining),
				instance("not-ready", "m", "n1", "az-1", "10.0.0.2", 8000, topology.HealthUnhealthy),
				instance("ready", "m", "n1", "az-1", "10.0.0.1", 8000, topology.HealthServing),
				instance("seed-failed", "m", "n1", "az-1", "10.0.0.8", 8000, topology.HealthUnhealthy),
				instance("terminating", "m", "n1", "az-1", "10.0.0.3", 8000, topology.HealthDraining),
				instance("unlisted-ready", "m", "n1", "az-1", "10.0.0.6", 8000, topology.HealthServing),
				instance("unlisted-starting", "m", "n1", "az-1", "10.0.0.7", 8000, topology.HealthLoading),
				instance("unsaid", "m", "n1", "az-1", "10.0.0.4", 8000, topology.HealthServing),
			},
		},
	}, {
		name: "ports: annotation by number and by name, slice port by name, the only container port",
		pods: []*corev1.Pod{
			testPod("by-number", "n1", "10.0.0.1", model("m"), annotated(PortAnnotation, "9000")),
			testPod("by-name", "n1", "10.0.0.2", model("m"), annotated(PortAnnotation, "http")),
			testPod("from-slice", "n1", "10.0.0.3", model("m")),
			testPod("container", "n1", "10.0.0.4", model("m"), func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].Name = "api" }),
		},
		slices: []*discoveryv1.EndpointSlice{testSlice("m", []discoveryv1.EndpointPort{port("metrics", 9100), port("http", 8080)}, ep("from-slice", true))},
		nodes:  []*corev1.Node{testNode("n1", "az-1", 0)},
		want: &topology.Fleet{
			Zones: []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}},
			Nodes: []topology.Node{readyNode("n1", "az-1")},
			Instances: []topology.Instance{
				instance("by-name", "m", "n1", "az-1", "10.0.0.2", 8000, topology.HealthLoading),
				instance("by-number", "m", "n1", "az-1", "10.0.0.1", 9000, topology.HealthLoading),
				instance("container", "m", "n1", "az-1", "10.0.0.4", 8000, topology.HealthLoading),
				instance("from-slice", "m", "n1", "az-1", "10.0.0.3", 8080, topology.HealthServing),
			},
		},
	}, {
		name: "GPUs from node capacity and Pod requests; annotated indexes first; GPU nodes without instances kept",
		pods: []*corev1.Pod{
			testPod("a", "gpu-1", "10.0.0.1", model("m"), requestingGPUs(2), ready(corev1.ConditionTrue)),
			testPod("b", "gpu-1", "10.0.0.2", model("m"), requestingGPUs(1), ready(corev1.ConditionTrue), annotated(GPUsAnnotation, "0")),
		},
		nodes: []*corev1.Node{
			testNode("gpu-1", "az-1", 4, GPUProductLabel, "NVIDIA-A100-SXM4-80GB", GPUMemoryLabel, "81920"),
			testNode("gpu-2", "az-2", 1),
		},
		want: &topology.Fleet{
			Zones: []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}, {Name: "az-2", Role: topology.ZoneActive}},
			Nodes: []topology.Node{
				readyNode("gpu-1", "az-1", a100(0), a100(1), a100(2), a100(3)),
				readyNode("gpu-2", "az-2", topology.GPU{Index: 0}),
			},
			Instances: []topology.Instance{
				withGPUs(instance("a", "m", "gpu-1", "az-1", "10.0.0.1", 8000, topology.HealthServing), 1, 2),
				withGPUs(instance("b", "m", "gpu-1", "az-1", "10.0.0.2", 8000, topology.HealthServing), 0),
			},
		},
	}, {
		name: "the seed's labels",
		pods: []*corev1.Pod{
			testPod("engine", "n1", "10.0.0.1", map[string]string{"app": "inference-engine", "model": "llama"}),
			testPod("standby-0", "n1", "10.0.0.2", map[string]string{"app": "llama", "standby-type": "warm"}),
			testPod("standby-1", "n1", "10.0.0.3", map[string]string{"app": "llama", "standby-type": "promoting"}),
		},
		slices: []*discoveryv1.EndpointSlice{testSlice("llama", nil, ep("engine", true))},
		nodes:  []*corev1.Node{testNode("n1", "az-1", 0)},
		want: &topology.Fleet{
			Zones: []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}},
			Nodes: []topology.Node{readyNode("n1", "az-1")},
			Instances: []topology.Instance{
				instance("engine", "llama", "n1", "az-1", "10.0.0.1", 8000, topology.HealthServing),
				{Name: InstanceName(ns, "standby-0"), Model: "llama", Node: "n1", Zone: "az-1", Address: "10.0.0.2", Port: 8000,
					Tier: topology.TierWarm, Role: topology.RoleStandby, Health: topology.HealthLoading},
				{Name: InstanceName(ns, "standby-1"), Model: "llama", Node: "n1", Zone: "az-1", Address: "10.0.0.3", Port: 8000,
					Tier: topology.TierHot, Role: topology.RoleStandby, Health: topology.HealthLoading},
			},
		},
	}, {
		name: "zone roles: options name the standby zone unless nodes say; node health",
		pods: []*corev1.Pod{testPod("a", "n1", "10.0.0.1", model("m"), ready(corev1.ConditionTrue))},
		nodes: []*corev1.Node{
			testNode("n1", "az-1", 0),
			testNode("n2", "az-2", 1, ZoneRoleLabel, "active"),
			func() *corev1.Node {
				n := testNode("n3", "az-3", 1)
				n.Status.Conditions[0].Status = corev1.ConditionFalse
				return n
			}(),
		},
		opts: Options{StandbyZones: []string{"az-2", "az-3"}},
		want: &topology.Fleet{
			Zones: []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}, {Name: "az-2", Role: topology.ZoneActive}, {Name: "az-3", Role: topology.ZoneStandby}},
			Nodes: []topology.Node{
				readyNode("n1", "az-1"),
				readyNode("n2", "az-2", topology.GPU{Index: 0}),
				{Name: "n3", Zone: "az-3", Health: topology.HealthUnhealthy, GPUs: []topology.GPU{{Index: 0}}},
			},
			Instances: []topology.Instance{instance("a", "m", "n1", "az-1", "10.0.0.1", 8000, topology.HealthServing)},
		},
	}, {
		name: "what cannot be mapped is left out and named; the rest is kept",
		pods: []*corev1.Pod{
			testPod("good", "n1", "10.0.0.1", model("m"), ready(corev1.ConditionTrue)),
			testPod("bad-tier", "n1", "10.0.0.2", model("m"), withLabels(map[string]string{DefaultTierLabel: "lukewarm"})),
			testPod("no-port", "n1", "10.0.0.3", model("m"), noPorts),
			testPod("bad-port", "n1", "10.0.0.4", model("m"), annotated(PortAnnotation, "grpc")),
			testPod("zoneless", "n9", "10.0.0.5", model("m")),
			testPod("lost", "gone", "10.0.0.6", model("m")),
			testPod("too-many-gpus", "n1", "10.0.0.7", model("m"), requestingGPUs(3)),
			testPod("bad-gpus", "n1", "10.0.0.8", model("m"), requestingGPUs(1), annotated(GPUsAnnotation, "7")),
		},
		nodes: []*corev1.Node{testNode("n1", "az-1", 2, ZoneRoleLabel, "sideways"), testNode("n9", "", 0)},
		want: &topology.Fleet{
			Zones: []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}},
			Nodes: []topology.Node{readyNode("n1", "az-1", topology.GPU{Index: 0}, topology.GPU{Index: 1})},
			Instances: []topology.Instance{
				withGPUs(instance("bad-gpus", "m", "n1", "az-1", "10.0.0.8", 8000, topology.HealthLoading), 0),
				instance("good", "m", "n1", "az-1", "10.0.0.1", 8000, topology.HealthServing),
				withGPUs(instance("too-many-gpus", "m", "n1", "az-1", "10.0.0.7", 8000, topology.HealthLoading), 1),
			},
		},
		wantErr: []string{
			`pod inference/bad-tier: label inferxds.io/tier: must be hot, warm or cold (got "lukewarm")`,
			`pod inference/no-port: no serving port`,
			`pod inference/bad-port: annotation inferxds.io/port: "grpc" is neither`,
			`pod inference/zoneless: node n9 has no topology.kubernetes.io/zone label`,
			`pod inference/lost: node gone is not known`,
			`pod inference/too-many-gpus: requests 3 GPUs; node n1 has 1 free`,
			`pod inference/bad-gpus: annotation inferxds.io/gpus: "7" is not a list of distinct GPU indexes below the node's 2`,
			`node n1: label inferxds.io/zone-role: must be active or standby (got "sideways")`,
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FleetFrom(tc.pods, tc.slices, tc.nodes, tc.opts)
			checkProblems(t, err, tc.wantErr)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("fleet (-want +got):\n%s", diff)
			}
			slices.Reverse(tc.pods)
			slices.Reverse(tc.slices)
			slices.Reverse(tc.nodes)
			if again, _ := FleetFrom(tc.pods, tc.slices, tc.nodes, tc.opts); !again.Equal(got) {
				t.Fatalf("the same objects in reverse order map to another fleet:\n%s", cmp.Diff(got, again))
			}
		})
	}
}

func checkProblems(t *testing.T, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error; want %d problems", len(want))
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(lines), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q:\n%v", w, err)
		}
	}
}

func a100(i int) topology.GPU {
	return topology.GPU{Index: i, Model: "NVIDIA-A100-SXM4-80GB", MemoryTotalMiB: 81920}
}

func withGPUs(in topology.Instance, gpus ...int) topology.Instance {
	in.GPUs = gpus
	return in
}

func TestFleetFromConflictingZoneRoles(t *testing.T) {
	nodes := []*corev1.Node{testNode("n1", "az-1", 1, ZoneRoleLabel, "active"), testNode("n2", "az-1", 1, ZoneRoleLabel, "standby")}
	f, err := FleetFrom(nil, nil, nodes, Options{})
	checkProblems(t, err, []string{"node n2: label inferxds.io/zone-role: standby, but another node of zone az-1 says active"})
	if z, _ := f.Zone("az-1"); z.Role != topology.ZoneActive {
		t.Fatalf("zone az-1 role = %q, want the first node's active", z.Role)
	}
}

func TestFleetFromCustomLabelsAndPortName(t *testing.T) {
	labels := Labels{Model: "example.com/model", Tier: "example.com/tier", Role: "example.com/role"}
	pod := testPod("p", "n1", "10.0.0.1", map[string]string{"example.com/model": "m", "example.com/tier": "warm", DefaultModelLabel: "ignored"})
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 1}, {Name: "serve", ContainerPort: 8000}}
	f, err := FleetFrom([]*corev1.Pod{pod}, nil, []*corev1.Node{testNode("n1", "az-1", 0)}, Options{Labels: labels, PortName: "serve"})
	if err != nil {
		t.Fatal(err)
	}
	if in := f.Instances[0]; in.Model != "m" || in.Tier != topology.TierWarm || in.Port != 8000 {
		t.Fatalf("instance = %+v; want model m, tier warm, port 8000", in)
	}
}
