package deploycheck

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/inferxds/inferxds/e2e/kubeenv"
)

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
