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
	actuatorkube "github.com/inferxds/inferxds/drpolicy/actuator/kube"
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
			data, ok := configMapData(t, objects, "inferxds-policy")
			if !ok {
				return
			}
			policy := loadPolicy(t, data)
			templates, hasTemplates := configMapData(t, objects, "inferxds-pod-templates")
			for file, text := range templates {
				if _, err := actuatorkube.ParseTemplate(file, []byte(text)); err != nil {
					t.Errorf("ConfigMap inferxds-pod-templates: %v", err)
				}
			}
			for _, m := range policy.Models {
				if got, want := standbys(t, objects, m.Name), [3]int{m.HotStandby, m.WarmStandby, m.ColdStandby}; got != [3]int{} && got != want {
					t.Errorf("model %s: standby Deployments give hot, warm, cold %v; the policy says %v", m.Name, got, want)
				}
				_, own := templates[m.Name+".yaml"]
				_, fallback := templates[actuatorkube.DefaultTemplate]
				if hasTemplates && !own && !fallback {
					t.Errorf("model %s: no Pod template (%s.yaml or %s) to create its standbys from", m.Name, m.Name, actuatorkube.DefaultTemplate)
				}
			}
		})
	}
}

// configMapData is the data of the ConfigMap named name among objects, and
// whether there is one.
func configMapData(t *testing.T, objects []*unstructured.Unstructured, name string) (map[string]string, bool) {
	t.Helper()
	for _, o := range objects {
		if o.GetKind() != "ConfigMap" || o.GetName() != name {
			continue
		}
		var cm corev1.ConfigMap
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &cm); err != nil {
			t.Fatal(err)
		}
		return cm.Data, true
	}
	return nil, false
}

// loadPolicy loads a policy ConfigMap's files as serve loads the mounted
// directory.
func loadPolicy(t *testing.T, files map[string]string) *drpolicy.Policy {
	t.Helper()
	dir := fstest.MapFS{}
	for name, data := range files {
		dir["policy/"+name] = &fstest.MapFile{Data: []byte(data)}
	}
	policy, err := drpolicy.LoadFS(dir, "policy")
	if err != nil {
		t.Fatalf("ConfigMap inferxds-policy: %v", err)
	}
	return policy
}

// standbys counts a model's standbys in its Deployments: the replicas of
// its hot and of its warm standby Deployments, and its cold standby
// Deployments, which run none.
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
		replicas := int(ptr.Deref(d.Spec.Replicas, 1))
		switch tier := labels["inferxds.io/tier"]; tier {
		case "hot":
			n[0] += replicas
		case "warm":
			n[1] += replicas
		case "cold":
			if replicas != 0 {
				t.Errorf("cold Deployment %s runs %d replicas, want 0", o.GetName(), replicas)
			}
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
