package kube

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/inferxds/inferxds/topology"
	"github.com/inferxds/inferxds/topology/kube/kubetest"
)

const ns = kubetest.Namespace

func model(name string) map[string]string { return map[string]string{DefaultModelLabel: name} }

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
		name        string
		pods        []*corev1.Pod
		deployments []*appsv1.Deployment
		slices      []*discoveryv1.EndpointSlice
		nodes       []*corev1.Node
		opts        Options
		want        *topology.Fleet
		wantErr     []string
	}{{
		name: "primary and standby in an active and a standby zone",
		pods: []*corev1.Pod{
			kubetest.Pod("llama-0", "n1", "10.0.0.1", model("llama")),
			kubetest.Pod("llama-1", "n3", "10.0.0.3", model("llama"), kubetest.WithLabels(map[string]string{DefaultRoleLabel: "standby"})),
			kubetest.Pod("router", "n1", "10.0.0.9", map[string]string{"app": "model-router"}),
		},
		slices: []*discoveryv1.EndpointSlice{kubetest.Slice("llama-x", []discoveryv1.EndpointPort{kubetest.Port("http", 8000)}, kubetest.ReadyEndpoint("llama-0", true), kubetest.ReadyEndpoint("llama-1", true))},
		nodes:  []*corev1.Node{kubetest.Node("n1", "az-1", 0), kubetest.Node("n3", "az-3", 0, ZoneRoleLabel, "standby"), kubetest.Node("cpu-only", "az-2", 0)},
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
		name: "cold standbys: Deployments of a model at 0 replicas with no running Pod",
		pods: []*corev1.Pod{
			kubetest.Pod("llama-0", "n1", "10.0.0.1", model("llama")),
			// Its Deployment was scaled to 0; the Pod still stops.
			kubetest.Pod("llama-stopping-7c9f-a", "n1", "10.0.0.2", model("llama"), kubetest.WithLabels(map[string]string{kubetest.DeploymentNameLabel: "llama-stopping"})),
			kubetest.Pod("llama-shared-7c9f-a", "n1", "10.0.0.3", model("llama"), kubetest.WithLabels(map[string]string{DefaultInstanceLabel: "llama-shared"})),
		},
		deployments: []*appsv1.Deployment{
			kubetest.Deployment("llama-cold", 0, coldLabels("llama"), kubetest.InZone("az-3")),
			kubetest.Deployment("llama-cold-labelled", 0, withLabel(coldLabels("llama"), DefaultInstanceLabel, "llama-cold-b"), requireNode(corev1.NodeSelectorRequirement{
				Key: ZoneLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{"az-1"}}, false)),
			kubetest.Deployment("llama-cold-pinned", 0, coldLabels("llama"), requireNode(corev1.NodeSelectorRequirement{
				Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}, true)),
			func() *appsv1.Deployment {
				d := kubetest.Deployment("llama-cold-annotated", 0, model("llama"))
				d.Annotations = map[string]string{ZoneAnnotation: "az-2"}
				return d
			}(),
			kubetest.Deployment("llama-stopping", 0, model("llama"), kubetest.InZone("az-1")),
			kubetest.Deployment("llama-shared", 0, withLabel(coldLabels("llama"), DefaultInstanceLabel, "llama-shared"), kubetest.InZone("az-1")),
			kubetest.Deployment("llama-starting", 1, model("llama"), kubetest.InZone("az-1")),
			kubetest.Deployment("router", 0, map[string]string{"app": "model-router"}),
		},
		nodes: []*corev1.Node{kubetest.Node("n1", "az-1", 0)},
		opts:  Options{StandbyZones: []string{"az-3"}},
		want: &topology.Fleet{
			Zones: []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}, {Name: "az-2", Role: topology.ZoneActive}, {Name: "az-3", Role: topology.ZoneStandby}},
			Nodes: []topology.Node{readyNode("n1", "az-1")},
			Instances: []topology.Instance{
				instance("llama-0", "llama", "n1", "az-1", "10.0.0.1", 8000, topology.HealthLoading),
				coldStandby("llama-cold", "llama", "az-3"),
				coldStandby("llama-cold-annotated", "llama", "az-2"),
				coldStandby("llama-cold-b", "llama", "az-1"),
				coldStandby("llama-cold-pinned", "llama", "az-1"),
				{Name: "llama-shared", Model: "llama", Node: "n1", Zone: "az-1", Address: "10.0.0.3", Port: 8000,
					Tier: topology.TierHot, Role: topology.RolePrimary, Health: topology.HealthLoading},
				instance("llama-stopping-7c9f-a", "llama", "n1", "az-1", "10.0.0.2", 8000, topology.HealthLoading),
			},
		},
	}, {
		name: "cold Deployments that cannot be mapped are left out and named",
		deployments: []*appsv1.Deployment{
			kubetest.Deployment("good", 0, coldLabels("m"), kubetest.InZone("az-1")),
			kubetest.Deployment("zoneless", 0, coldLabels("m")),
			kubetest.Deployment("bad-tier", 0, withLabel(coldLabels("m"), DefaultTierLabel, "tepid"), kubetest.InZone("az-1")),
			kubetest.Deployment("bad-name", 0, withLabel(coldLabels("m"), DefaultInstanceLabel, "Not_A_Name"), kubetest.InZone("az-1")),
			kubetest.Deployment("bad-zone", 0, coldLabels("m"), kubetest.InZone("AZ 1")),
		},
		want: &topology.Fleet{
			Zones:     []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}},
			Instances: []topology.Instance{coldStandby("good", "m", "az-1")},
		},
		wantErr: []string{
			`deployment inference/zoneless: no zone: set the Pod template's nodeSelector topology.kubernetes.io/zone`,
			`deployment inference/bad-tier: label inferxds.io/tier: must be hot, warm or cold (got "tepid")`,
			`deployment inference/bad-name: instance name "Not_A_Name" is not a valid name`,
			`deployment inference/bad-zone: zone name "AZ 1" is not a valid name`,
		},
	}, {
		name: "health from endpoint conditions, deletion and the Pod's Ready condition; ended Pods are gone",
		pods: []*corev1.Pod{
			kubetest.Pod("ready", "n1", "10.0.0.1", model("m")),
			kubetest.Pod("not-ready", "n1", "10.0.0.2", model("m")),
			kubetest.Pod("terminating", "n1", "10.0.0.3", model("m")),
			kubetest.Pod("unsaid", "n1", "10.0.0.4", model("m")),
			kubetest.Pod("deleting", "n1", "10.0.0.5", model("m"), kubetest.Deleting),
			kubetest.Pod("unlisted-ready", "n1", "10.0.0.6", model("m"), kubetest.Ready(corev1.ConditionTrue)),
			kubetest.Pod("unlisted-starting", "n1", "10.0.0.7", model("m"), kubetest.Ready(corev1.ConditionFalse)),
			kubetest.Pod("seed-failed", "n1", "10.0.0.8", model("m"), kubetest.WithLabels(map[string]string{"status": "failed"})),
			kubetest.Pod("not-yet-running", "n1", "", model("m")),
			kubetest.Pod("evicted", "n1", "10.0.0.1", model("m"), func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }),
			kubetest.Pod("completed", "n1", "10.0.0.9", model("m"), func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
		},
		slices: []*discoveryv1.EndpointSlice{kubetest.Slice("m", nil,
			kubetest.ReadyEndpoint("ready", true), kubetest.ReadyEndpoint("not-ready", false), kubetest.ReadyEndpoint("deleting", true), kubetest.ReadyEndpoint("seed-failed", true),
			kubetest.Endpoint{Pod: "terminating", Ready: boolp(false), Serving: boolp(true), Terminating: boolp(true)},
			kubetest.Endpoint{Pod: "unsaid"},
		)},
		nodes: []*corev1.Node{kubetest.Node("n1", "az-1", 0)},
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
		name: "ports: annotation by number and by name, slice port by name, the only container port; metrics port",
		pods: []*corev1.Pod{
			kubetest.Pod("by-number", "n1", "10.0.0.1", model("m"), kubetest.Annotated(PortAnnotation, "9000")),
			kubetest.Pod("by-name", "n1", "10.0.0.2", model("m"), kubetest.Annotated(PortAnnotation, "http")),
			kubetest.Pod("from-slice", "n1", "10.0.0.3", model("m")),
			kubetest.Pod("container", "n1", "10.0.0.4", model("m"), func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].Name = "api" }),
			kubetest.Pod("metrics", "n1", "10.0.0.5", model("m"), kubetest.Annotated(MetricsPortAnnotation, "9100")),
		},
		slices: []*discoveryv1.EndpointSlice{kubetest.Slice("m", []discoveryv1.EndpointPort{kubetest.Port("metrics", 9100), kubetest.Port("http", 8080)}, kubetest.ReadyEndpoint("from-slice", true))},
		nodes:  []*corev1.Node{kubetest.Node("n1", "az-1", 0)},
		want: &topology.Fleet{
			Zones: []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}},
			Nodes: []topology.Node{readyNode("n1", "az-1")},
			Instances: []topology.Instance{
				instance("by-name", "m", "n1", "az-1", "10.0.0.2", 8000, topology.HealthLoading),
				instance("by-number", "m", "n1", "az-1", "10.0.0.1", 9000, topology.HealthLoading),
				instance("container", "m", "n1", "az-1", "10.0.0.4", 8000, topology.HealthLoading),
				instance("from-slice", "m", "n1", "az-1", "10.0.0.3", 8080, topology.HealthServing),
				func() topology.Instance {
					in := instance("metrics", "m", "n1", "az-1", "10.0.0.5", 8000, topology.HealthLoading)
					in.MetricsURL = "http://10.0.0.5:9100/metrics"
					return in
				}(),
			},
		},
	}, {
		name: "GPUs from node capacity and Pod requests; annotated indexes first; GPU nodes without instances kept",
		pods: []*corev1.Pod{
			kubetest.Pod("a", "gpu-1", "10.0.0.1", model("m"), kubetest.RequestingGPUs(2), kubetest.Ready(corev1.ConditionTrue)),
			kubetest.Pod("b", "gpu-1", "10.0.0.2", model("m"), kubetest.RequestingGPUs(1), kubetest.Ready(corev1.ConditionTrue), kubetest.Annotated(GPUsAnnotation, "0")),
		},
		nodes: []*corev1.Node{
			kubetest.Node("gpu-1", "az-1", 4, GPUProductLabel, "NVIDIA-A100-SXM4-80GB", GPUMemoryLabel, "81920"),
			kubetest.Node("gpu-2", "az-2", 1),
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
			kubetest.Pod("engine", "n1", "10.0.0.1", map[string]string{"app": "inference-engine", "model": "llama"}),
			kubetest.Pod("standby-0", "n1", "10.0.0.2", map[string]string{"app": "llama", "standby-type": "warm"}),
			kubetest.Pod("standby-1", "n1", "10.0.0.3", map[string]string{"app": "llama", "standby-type": "promoting"}),
		},
		slices: []*discoveryv1.EndpointSlice{kubetest.Slice("llama", nil, kubetest.ReadyEndpoint("engine", true))},
		nodes:  []*corev1.Node{kubetest.Node("n1", "az-1", 0)},
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
		pods: []*corev1.Pod{kubetest.Pod("a", "n1", "10.0.0.1", model("m"), kubetest.Ready(corev1.ConditionTrue))},
		nodes: []*corev1.Node{
			kubetest.Node("n1", "az-1", 0),
			kubetest.Node("n2", "az-2", 1, ZoneRoleLabel, "active"),
			func() *corev1.Node {
				n := kubetest.Node("n3", "az-3", 1)
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
			kubetest.Pod("good", "n1", "10.0.0.1", model("m"), kubetest.Ready(corev1.ConditionTrue)),
			kubetest.Pod("bad-tier", "n1", "10.0.0.2", model("m"), kubetest.WithLabels(map[string]string{DefaultTierLabel: "lukewarm"})),
			kubetest.Pod("no-port", "n1", "10.0.0.3", model("m"), kubetest.NoPorts),
			kubetest.Pod("bad-port", "n1", "10.0.0.4", model("m"), kubetest.Annotated(PortAnnotation, "grpc")),
			kubetest.Pod("zoneless", "n9", "10.0.0.5", model("m")),
			kubetest.Pod("lost", "gone", "10.0.0.6", model("m")),
			kubetest.Pod("too-many-gpus", "n1", "10.0.0.7", model("m"), kubetest.RequestingGPUs(3)),
			kubetest.Pod("bad-gpus", "n1", "10.0.0.8", model("m"), kubetest.RequestingGPUs(1), kubetest.Annotated(GPUsAnnotation, "7")),
			kubetest.Pod("bad-metrics", "n1", "10.0.0.9", model("m"), kubetest.Annotated(MetricsPortAnnotation, "prom")),
			kubetest.Pod("same-address", "n1", "10.0.0.1", model("m"), kubetest.Ready(corev1.ConditionTrue)),
		},
		nodes: []*corev1.Node{kubetest.Node("n1", "az-1", 2, ZoneRoleLabel, "sideways"), kubetest.Node("n9", "", 0)},
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
			`pod inference/bad-metrics: annotation inferxds.io/metrics-port: "prom" is neither`,
			`pod inference/same-address: address 10.0.0.1:8000 is also Pod inference/good's`,
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FleetFrom(tc.pods, tc.deployments, tc.slices, tc.nodes, tc.opts)
			checkProblems(t, err, tc.wantErr)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("fleet (-want +got):\n%s", diff)
			}
			slices.Reverse(tc.pods)
			slices.Reverse(tc.deployments)
			slices.Reverse(tc.slices)
			slices.Reverse(tc.nodes)
			if again, _ := FleetFrom(tc.pods, tc.deployments, tc.slices, tc.nodes, tc.opts); !again.Equal(got) {
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

func coldLabels(model string) map[string]string {
	return map[string]string{DefaultModelLabel: model, DefaultTierLabel: "cold", DefaultRoleLabel: "standby"}
}

func withLabel(labels map[string]string, key, value string) map[string]string {
	labels[key] = value
	return labels
}

func coldStandby(name, model, zone string) topology.Instance {
	return topology.Instance{Name: name, Model: model, Zone: zone, Tier: topology.TierCold, Role: topology.RoleStandby, Health: topology.HealthServing}
}

// requireNode gives the Pod (template) a required node affinity of one
// term: the requirement as a field (the node's name) or a label.
func requireNode(req corev1.NodeSelectorRequirement, field bool) kubetest.PodOption {
	return func(p *corev1.Pod) {
		term := corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{req}}
		if field {
			term = corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{req}}
		}
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{term}},
		}}
	}
}

func TestFleetFromConflictingZoneRoles(t *testing.T) {
	nodes := []*corev1.Node{kubetest.Node("n1", "az-1", 1, ZoneRoleLabel, "active"), kubetest.Node("n2", "az-1", 1, ZoneRoleLabel, "standby")}
	f, err := FleetFrom(nil, nil, nil, nodes, Options{})
	checkProblems(t, err, []string{"node n2: label inferxds.io/zone-role: standby, but another node of zone az-1 says active"})
	if z, _ := f.Zone("az-1"); z.Role != topology.ZoneActive {
		t.Fatalf("zone az-1 role = %q, want the first node's active", z.Role)
	}
}

func TestFleetFromCustomLabelsAndPortName(t *testing.T) {
	labels := Labels{Model: "example.com/model", Tier: "example.com/tier", Role: "example.com/role"}
	pod := kubetest.Pod("p", "n1", "10.0.0.1", map[string]string{"example.com/model": "m", "example.com/tier": "warm", DefaultModelLabel: "ignored"})
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 1}, {Name: "serve", ContainerPort: 8000}}
	f, err := FleetFrom([]*corev1.Pod{pod}, nil, nil, []*corev1.Node{kubetest.Node("n1", "az-1", 0)}, Options{Labels: labels, PortName: "serve"})
	if err != nil {
		t.Fatal(err)
	}
	if in := f.Instances[0]; in.Model != "m" || in.Tier != topology.TierWarm || in.Port != 8000 {
		t.Fatalf("instance = %+v; want model m, tier warm, port 8000", in)
	}
}

func TestFleetFromNamesInstancesByTheInstanceLabel(t *testing.T) {
	instance := func(name string) kubetest.PodOption {
		return kubetest.WithLabels(map[string]string{DefaultInstanceLabel: name})
	}
	pods := []*corev1.Pod{
		// A Deployment rolling: the old Pod is going, the new one serves.
		kubetest.Pod("llama-cold-0-5d8f-a", "n1", "10.0.0.1", model("m"), instance("llama-cold-0"), kubetest.Deleting),
		kubetest.Pod("llama-cold-0-5d8f-b", "n1", "10.0.0.2", model("m"), instance("llama-cold-0"), kubetest.Ready(corev1.ConditionTrue)),
		kubetest.Pod("plain", "n1", "10.0.0.3", model("m"), kubetest.Ready(corev1.ConditionTrue)),
		kubetest.Pod("bad", "n1", "10.0.0.4", model("m"), instance("Not_A_Name")),
	}
	f, err := FleetFrom(pods, nil, nil, []*corev1.Node{kubetest.Node("n1", "az-1", 0)}, Options{Labels: Labels{Model: DefaultModelLabel}})
	checkProblems(t, err, []string{`pod inference/bad: instance name "Not_A_Name" is not a valid name`})
	want := []topology.Instance{
		servingInstance("llama-cold-0", "10.0.0.2"),
		servingInstance(InstanceName(ns, "plain"), "10.0.0.3"),
	}
	if diff := cmp.Diff(want, f.Instances); diff != "" {
		t.Fatalf("instances (-want +got):\n%s", diff)
	}
}

// instance0 is a serving hot primary of model m on n1 in az-1, port 8000.
func servingInstance(name, ip string) topology.Instance {
	return topology.Instance{Name: name, Model: "m", Node: "n1", Zone: "az-1", Address: ip, Port: 8000,
		Tier: topology.TierHot, Role: topology.RolePrimary, Health: topology.HealthServing}
}
