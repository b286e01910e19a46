package deploycheck

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/inferxds/inferxds/e2e/kubeenv"
	"github.com/inferxds/inferxds/internal/testpki"
)

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
		{"list", "apps", "deployments", "inference", ""},
		{"watch", "apps", "deployments", "inference", ""},
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
	client := kubernetes.NewForConfigOrDie(env.Config)
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
				"--policy-dir", filepath.Join(deployDir, "base/policy"), "--pod-templates", filepath.Join(deployDir, "base/templates"),
				"--lease-namespace", leaseNamespace,
				"--xds-address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0", "--ready-file", readyFile,
				"--kube-sync-timeout", "20s"}
			if strings.Contains(settings, "tlsCert:") {
				ca := testpki.NewCA(t, "deploycheck")
				cert := ca.Server("inferxds")
				args = append(args, "--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile, "--client-ca", ca.CertFile)
			}
			leaderElect := strings.Contains(settings, "leaderElect: true")
			if leaderElect {
				deleteLease(t, client) // the last subtest's serve may still hold it
			}
			startServe(t, args, readyFile)
			if leaderElect {
				waitForLeader(t, client)
			}
		})
	}
}

// leaseName and leaseNamespace are base's leader Lease.
const leaseName, leaseNamespace = "inferxds-leader", "inferxds-system"

func deleteLease(t *testing.T, client kubernetes.Interface) {
	t.Helper()
	err := client.CoordinationV1().Leases(leaseNamespace).Delete(t.Context(), leaseName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

// waitForLeader waits until a replica holds base's Lease: taking it is
// what the ServiceAccount's Lease rules are for.
func waitForLeader(t *testing.T, client kubernetes.Interface) {
	t.Helper()
	watch, err := client.CoordinationV1().Leases(leaseNamespace).Watch(t.Context(), metav1.ListOptions{FieldSelector: "metadata.name=" + leaseName})
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Stop()
	deadline := time.After(hangGuard)
	for {
		select {
		case e := <-watch.ResultChan():
			if lease, ok := e.Object.(*coordinationv1.Lease); ok && ptr.Deref(lease.Spec.HolderIdentity, "") != "" {
				return
			}
		case <-deadline:
			t.Fatalf("no replica took the Lease %s/%s within %v", leaseNamespace, leaseName, hangGuard)
		}
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

// hangGuard bounds each wait on serve and the API server; none should
// come near it.
const hangGuard = time.Minute

// startServe runs inferxds with args until it writes readyFile, failing the
// test with its output if it exits first. It is stopped (SIGTERM, so that
// it shuts down as in a Pod) when the test ends.
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
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(hangGuard):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
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
