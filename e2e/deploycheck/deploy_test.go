package deploycheck

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/e2e/kubeenv"
	"github.com/inferxds/inferxds/internal/testpki"
)

var update = flag.Bool("update", false, "rewrite the generated files under deploy/ instead of comparing them")

// deployDir is the repository's deploy directory, seen from this package.
const deployDir = "../../deploy"

// inferxds is the control plane binary, built by TestMain.
var inferxds string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "inferxds-deploycheck-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploycheck:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	inferxds = filepath.Join(dir, "inferxds")
	if out, err := exec.Command("go", "build", "-o", inferxds, "github.com/inferxds/inferxds/cmd/inferxds").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "deploycheck: go build: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if summary := kubeenv.SkipSummary(); summary != "" {
		fmt.Println("deploycheck:", summary)
	}
	return code
}

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

// generatedFiles are the files under deploy/ made by a program, each with
// how to make it.
var generatedFiles = []struct {
	path     string
	generate func(t *testing.T) []byte
}{
	{"base/envoy/bootstrap.yaml", envoyBootstrap("--tls-cert", "/etc/envoy/tls/tls.crt", "--tls-key", "/etc/envoy/tls/tls.key", "--ca", "/etc/envoy/tls/ca.crt")},
	{"overlays/dev/bootstrap.yaml", envoyBootstrap()},
	{"overlays/monitoring/prometheusrule.yaml", prometheusRule},
}

func TestDeployGeneratedFilesAreCurrent(t *testing.T) {
	for _, f := range generatedFiles {
		t.Run(f.path, func(t *testing.T) {
			path := filepath.Join(deployDir, f.path)
			want := f.generate(t)
			if *update {
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s is not what its generator makes now; regenerate it: go test ./e2e/deploycheck -run TestDeployGeneratedFilesAreCurrent -update", path)
			}
		})
	}
}

// envoyBootstrap generates the bootstrap of the Envoy Deployment envoy-az-1
// with `inferxds bootstrap`.
func envoyBootstrap(tlsArgs ...string) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		args := append([]string{"bootstrap", "--node-id=envoy-az-1", "--zone=az-1",
			"--xds-address=inferxds.inferxds-system.svc:18000"}, tlsArgs...)
		out, err := exec.Command(inferxds, args...).Output()
		if err != nil {
			t.Fatalf("inferxds %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
}

// prometheusRule wraps deploy/monitoring/alerts.yaml's rule groups in a
// Prometheus Operator PrometheusRule.
func prometheusRule(t *testing.T) []byte {
	data, err := os.ReadFile(filepath.Join(deployDir, "monitoring/alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules map[string]any
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(map[string]any{
		"apiVersion": "monitoring.coreos.com/v1",
		"kind":       "PrometheusRule",
		"metadata": map[string]any{
			"name": "inferxds", "namespace": "inferxds-system",
			"labels": map[string]any{"app.kubernetes.io/name": "inferxds"},
		},
		"spec": rules,
	})
	if err != nil {
		t.Fatal(err)
	}
	header := "# Generated from deploy/monitoring/alerts.yaml by e2e/deploycheck's TestDeployGeneratedFilesAreCurrent;\n" +
		"# edit the rules there and regenerate: go test ./e2e/deploycheck -run TestDeployGeneratedFilesAreCurrent -update\n"
	return append([]byte(header), out...)
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

func TestDeployDryRunsOnTheAPIServer(t *testing.T) {
	env := kubeenv.Start(t)
	server := newServer(t, env.Config, true)
	for _, k := range kustomizations {
		t.Run(k.dir, func(t *testing.T) {
			objects := render(t, k.dir)
			server.createNamespaces(t, objects)
			var skipped []string
			for _, o := range objects {
				if !server.apply(t, o) {
					skipped = append(skipped, objectName(o))
				}
			}
			slices.Sort(skipped)
			if !slices.Equal(skipped, k.thirdParty) {
				t.Errorf("objects of kinds the API server does not know: %v, want %v", skipped, k.thirdParty)
			}
			if len(skipped) > 0 {
				t.Logf("not checked by the API server (third-party CRDs): %s", strings.Join(skipped, ", "))
			}
		})
	}
}

// server applies objects with server-side apply, with dry-run or for real,
// and reports the API server's warnings (PodSecurity, deprecations) as
// failures.
type server struct {
	client   *dynamic.DynamicClient
	mapper   meta.RESTMapper
	warnings *warningRecorder
	dryRun   []string
}

func newServer(t *testing.T, cfg *rest.Config, dryRun bool) *server {
	cfg = rest.CopyConfig(cfg)
	warnings := &warningRecorder{}
	cfg.WarningHandler = warnings
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco))
	s := &server{client: client, mapper: mapper, warnings: warnings}
	if dryRun {
		s.dryRun = []string{metav1.DryRunAll}
	}
	return s
}

// createNamespaces creates, for real, every namespace the objects are in or
// define, with the labels they define (Pod Security levels).
func (s *server) createNamespaces(t *testing.T, objects []*unstructured.Unstructured) {
	t.Helper()
	labels := map[string]map[string]string{}
	for _, o := range objects {
		if o.GetKind() == "Namespace" {
			labels[o.GetName()] = o.GetLabels()
		} else if ns := o.GetNamespace(); ns != "" {
			if _, ok := labels[ns]; !ok {
				labels[ns] = nil
			}
		}
	}
	namespaces := s.client.Resource(corev1.SchemeGroupVersion.WithResource("namespaces"))
	for name, l := range labels {
		ns := &unstructured.Unstructured{}
		ns.SetAPIVersion("v1")
		ns.SetKind("Namespace")
		ns.SetName(name)
		ns.SetLabels(l)
		if _, err := namespaces.Create(t.Context(), ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating namespace %s: %v", name, err)
		}
	}
}

// apply applies o with strict field validation, as `kubectl apply
// --server-side [--dry-run=server]` does, and fails the test on an error or
// a warning. It returns false, without applying, for a
// kind the server does not serve.
func (s *server) apply(t *testing.T, o *unstructured.Unstructured) bool {
	t.Helper()
	gvk := o.GroupVersionKind()
	mapping, err := s.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		return false
	}
	if err != nil {
		t.Fatalf("%s: %v", objectName(o), err)
	}
	resource := s.client.Resource(mapping.Resource)
	var target dynamic.ResourceInterface = resource
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		target = resource.Namespace(o.GetNamespace())
	}
	data, err := o.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	force := true
	s.warnings.reset()
	_, err = target.Patch(t.Context(), o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{
		DryRun: s.dryRun, FieldManager: "inferxds-deploy-test", Force: &force, FieldValidation: "Strict",
	})
	if err != nil {
		t.Errorf("%s: server-side apply (dry-run %v): %v", objectName(o), s.dryRun != nil, err)
	}
	for _, w := range s.warnings.reset() {
		t.Errorf("%s: API server warning: %s", objectName(o), w)
	}
	return true
}

// objectName is Kind/namespace/name, or Kind/name when cluster-scoped.
func objectName(o *unstructured.Unstructured) string {
	if ns := o.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s/%s/%s", o.GetKind(), ns, o.GetName())
	}
	return fmt.Sprintf("%s/%s", o.GetKind(), o.GetName())
}

// warningRecorder keeps the API server's warning headers.
type warningRecorder struct {
	mu       sync.Mutex
	warnings []string
}

func (r *warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.warnings = append(r.warnings, text)
}

// reset returns the warnings since the last reset and forgets them.
func (r *warningRecorder) reset() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.warnings
	r.warnings = nil
	return w
}

// serviceAccount is serve's ServiceAccount in deploy/base, as a user.
var serviceAccount = struct {
	user   string
	groups []string
}{"system:serviceaccount:inferxds-system:inferxds", []string{"system:serviceaccounts", "system:serviceaccounts:inferxds-system", "system:authenticated"}}

// applyBaseRBAC creates base's namespaces, ServiceAccount, roles and
// bindings on the API server.
func applyBaseRBAC(t *testing.T, cfg *rest.Config) {
	t.Helper()
	objects := render(t, "base")
	s := newServer(t, cfg, false)
	s.createNamespaces(t, objects)
	for _, o := range objects {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			s.apply(t, o)
		}
	}
}

func TestDeployServiceAccountMayDoItsJobAndNoMore(t *testing.T) {
	env := kubeenv.Start(t)
	applyBaseRBAC(t, env.Config)
	type request struct {
		verb, group, resource, namespace, name string
	}
	allowed := []request{
		{"watch", "", "nodes", "", ""},
		{"list", "", "pods", "inference", ""},
		{"watch", "", "pods", "inference", ""},
		{"patch", "", "pods", "inference", "llama-2-7b-hot-x"},
		{"create", "", "pods", "inference", ""},
		{"delete", "", "pods", "inference", "llama-2-7b-hot-x"},
		{"watch", "discovery.k8s.io", "endpointslices", "inference", ""},
		{"get", "apps", "deployments", "inference", "llama-2-7b-cold"},
		{"patch", "apps", "deployments", "inference", "llama-2-7b-cold"},
		{"create", "apps", "deployments", "inference", ""},
		{"create", "coordination.k8s.io", "leases", "inferxds-system", ""},
		{"update", "coordination.k8s.io", "leases", "inferxds-system", "inferxds-leader"},
		{"create", "", "configmaps", "inferxds-system", ""},
		{"update", "", "configmaps", "inferxds-system", "inferxds-dr-state"},
		{"watch", "", "configmaps", "inferxds-system", "inferxds-dr-state"},
	}
	refused := []request{
		{"get", "", "secrets", "inferxds-system", "inferxds-xds-tls"},
		{"list", "", "secrets", "inference", ""},
		{"patch", "", "nodes", "", "gpu-node-1"},
		{"list", "", "pods", "", ""},
		{"list", "", "pods", "default", ""},
		{"patch", "", "pods", "inferxds-system", "inferxds-x"},
		{"delete", "apps", "deployments", "inference", "llama-2-7b-primary"},
		{"patch", "discovery.k8s.io", "endpointslices", "inference", "llama-2-7b-x"},
		{"update", "coordination.k8s.io", "leases", "inferxds-system", "another-lease"},
		{"delete", "coordination.k8s.io", "leases", "inferxds-system", "inferxds-leader"},
		{"update", "", "configmaps", "inferxds-system", "inferxds-policy"},
		{"create", "rbac.authorization.k8s.io", "rolebindings", "inference", ""},
	}
	client := kubernetes.NewForConfigOrDie(env.Config)
	for _, c := range []struct {
		want     bool
		requests []request
	}{{true, allowed}, {false, refused}} {
		for _, r := range c.requests {
			review, err := client.AuthorizationV1().SubjectAccessReviews().Create(t.Context(), &authorizationv1.SubjectAccessReview{
				Spec: authorizationv1.SubjectAccessReviewSpec{
					User:   serviceAccount.user,
					Groups: serviceAccount.groups,
					ResourceAttributes: &authorizationv1.ResourceAttributes{
						Verb: r.verb, Group: r.group, Resource: r.resource, Namespace: r.namespace, Name: r.name,
					},
				},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if review.Status.Allowed != c.want {
				t.Errorf("serve's ServiceAccount %s %s (group %q) in namespace %q named %q: allowed %v, want %v",
					r.verb, r.resource, r.group, r.namespace, r.name, review.Status.Allowed, c.want)
			}
		}
	}
}

func TestDeploySettingsRunServeAsItsServiceAccount(t *testing.T) {
	env := kubeenv.Start(t)
	applyBaseRBAC(t, env.Config)
	kubeconfig := impersonating(t, env.Kubeconfig)
	for _, k := range kustomizations {
		t.Run(k.dir, func(t *testing.T) {
			settings := configMapFile(t, render(t, k.dir), "inferxds-settings", "settings.yaml")
			dir := t.TempDir()
			file := filepath.Join(dir, "settings.yaml")
			if err := os.WriteFile(file, []byte(settings), 0o600); err != nil {
				t.Fatal(err)
			}
			// The settings' paths are the Pod's; these flags point them at
			// the test's files, ports and API server, and keep the rest:
			// the Kubernetes source lists what the settings name, as the
			// ServiceAccount.
			readyFile := filepath.Join(dir, "ready.json")
			args := []string{"serve", "--config", file, "--kubeconfig", kubeconfig,
				"--policy-dir", filepath.Join(deployDir, "base/policy"),
				"--xds-address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0", "--ready-file", readyFile,
				"--kube-sync-timeout", "20s"}
			if strings.Contains(settings, "tlsCert:") {
				ca := testpki.NewCA(t, "deploycheck")
				cert := ca.Server("inferxds")
				args = append(args, "--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile, "--client-ca", ca.CertFile)
			}
			startServe(t, args, readyFile)
		})
	}
}

// impersonating writes a copy of kubeconfig whose user acts as serve's
// ServiceAccount, and returns its path.
func impersonating(t *testing.T, kubeconfig string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range cfg.AuthInfos {
		user.Impersonate = serviceAccount.user
		user.ImpersonateGroups = serviceAccount.groups
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
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

// startServe runs inferxds with args until it writes readyFile, failing the
// test with its output if it exits first. It is stopped when the test ends.
func startServe(t *testing.T, args []string, readyFile string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(inferxds, args...)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "INFERXDS_") })
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	const hangGuard = time.Minute
	deadline := time.After(hangGuard)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("inferxds %s exited before it was ready: %v\n%s", strings.Join(args, " "), err, out.String())
		case <-deadline:
			_ = cmd.Process.Kill()
			exited <- <-exited
			t.Fatalf("inferxds %s not ready after %v:\n%s", strings.Join(args, " "), hangGuard, out.String())
		case <-tick.C:
			if _, err := os.Stat(readyFile); err == nil {
				return
			}
		}
	}
}
