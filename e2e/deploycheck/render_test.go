package deploycheck

import (
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/inferxds/inferxds/drpolicy"
)

// kustomizations are what users build with `kubectl kustomize`, and the
// objects of third-party kinds (CRDs the test API server lacks) each
// renders, as Kind/namespace/name.
var kustomizations = []struct {
	dir        string
	thirdParty []string
}{
	{dir: "base"},
	{dir: "overlays/dev"},
	{dir: "overlays/git-sync"},
	{dir: "overlays/volcano", thirdParty: []string{"PodGroup/inference/llama-2-7b", "Queue/inference-queue"}},
	{dir: "overlays/monitoring", thirdParty: []string{"PrometheusRule/inferxds-system/inferxds", "ServiceMonitor/inferxds-system/inferxds"}},
}

// render builds a kustomization as `kubectl kustomize` does.
func render(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(deployDir, dir))
	if err != nil {
		t.Fatalf("kustomize build deploy/%s: %v", dir, err)
	}
	var objects []*unstructured.Unstructured
	for _, r := range resources.Resources() {
		m, err := r.Map()
		if err != nil {
			t.Fatalf("deploy/%s: %s: %v", dir, r.CurId(), err)
		}
		objects = append(objects, &unstructured.Unstructured{Object: m})
	}
	return objects
}

func TestDeployPolicyConfigMapsLoadAndMatchTheWorkloads(t *testing.T) {
	for _, k := range kustomizations {
		t.Run(k.dir, func(t *testing.T) {
			objects := render(t, k.dir)
			policy := loadPolicyConfigMap(t, objects)
			if policy == nil {
				return
			}
			for _, m := range policy.Models {
				got := standbys(t, objects, m.Name)
				if got == [3]int{} {
					continue // the kustomization has no workloads of this model
				}
				if want := [3]int{m.HotStandby, m.WarmStandby, m.ColdStandby}; got != want {
					t.Errorf("model %s: standby Deployments give hot, warm, cold %v; the policy says %v", m.Name, got, want)
				}
			}
		})
	}
}

// loadPolicyConfigMap loads the policy ConfigMap inferxds-policy among
// objects as serve loads the mounted directory; nil when there is none.
func loadPolicyConfigMap(t *testing.T, objects []*unstructured.Unstructured) *drpolicy.Policy {
	t.Helper()
	for _, o := range objects {
		if o.GetKind() != "ConfigMap" || o.GetName() != "inferxds-policy" {
			continue
		}
		var cm corev1.ConfigMap
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &cm); err != nil {
			t.Fatal(err)
		}
		dir := fstest.MapFS{}
		for name, data := range cm.Data {
			dir["policy/"+name] = &fstest.MapFile{Data: []byte(data)}
		}
		policy, err := drpolicy.LoadFS(dir, "policy")
		if err != nil {
			t.Fatalf("ConfigMap inferxds-policy: %v", err)
		}
		return policy
	}
	return nil
}

// standbys counts a model's standbys in its Deployments: the replicas of
// hot and warm standby Deployments, and cold standby Deployments (kept at
// zero replicas until needed).
func standbys(t *testing.T, objects []*unstructured.Unstructured, model string) [3]int {
	t.Helper()
	var n [3]int
	for _, o := range objects {
		labels := o.GetLabels()
		if o.GetKind() != "Deployment" || labels["inferxds.io/model"] != model || labels["inferxds.io/role"] != "standby" {
			continue
		}
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
			t.Fatalf("Deployment %s: %v", o.GetName(), err)
		}
		replicas := ptr.Deref(d.Spec.Replicas, 1)
		switch tier := labels["inferxds.io/tier"]; tier {
		case "hot":
			n[0] += int(replicas)
		case "warm":
			n[1] += int(replicas)
		case "cold":
			n[2]++
		default:
			t.Errorf("Deployment %s: tier %q is not hot, warm or cold", o.GetName(), tier)
		}
	}
	return n
}

// configMapFile is one file of a rendered ConfigMap.
func configMapFile(t *testing.T, objects []*unstructured.Unstructured, configMap, file string) string {
	t.Helper()
	for _, o := range objects {
		if o.GetKind() == "ConfigMap" && strings.HasPrefix(o.GetName(), configMap) {
			data, ok, err := unstructured.NestedString(o.Object, "data", file)
			if err != nil || !ok {
				t.Fatalf("ConfigMap %s has no %s (%v)", o.GetName(), file, err)
			}
			return data
		}
	}
	t.Fatalf("no ConfigMap %s", configMap)
	return ""
}
