package kubeenv_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/inferxds/inferxds/e2e/kubeenv"
)

// kubeVersion is the release the tests run against (the Makefile's
// KUBE_VERSION).
const kubeVersion = "v1.37.2"

func TestStartServesTheAPI(t *testing.T) {
	env := kubeenv.Start(t)

	t.Run("config creates and lists a namespace", func(t *testing.T) {
		client := kubernetes.NewForConfigOrDie(env.Config)
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kubeenv-smoke"}}
		if _, err := client.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := namespaces(t, client); !slices.Contains(got, "kubeenv-smoke") {
			t.Fatalf("namespaces = %v, want kubeenv-smoke among them", got)
		}
	})

	t.Run("kubeconfig file reaches the same server", func(t *testing.T) {
		cfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		if got := namespaces(t, kubernetes.NewForConfigOrDie(cfg)); !slices.Contains(got, "kubeenv-smoke") {
			t.Fatalf("namespaces through %s = %v, want kubeenv-smoke among them", env.Kubeconfig, got)
		}
	})

	t.Run("kubectl version parses the server's version", func(t *testing.T) {
		kubectl := filepath.Join(os.Getenv(kubeenv.AssetsEnv), "kubectl")
		out, err := exec.Command(kubectl, "--kubeconfig", env.Kubeconfig, "version", "--output=json").CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl version: %v\n%s", err, out)
		}
		var got struct {
			Client version.Info `json:"clientVersion"`
			Server version.Info `json:"serverVersion"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("kubectl version: %v\n%s", err, out)
		}
		for who, v := range map[string]version.Info{"client": got.Client, "server": got.Server} {
			if v.GitVersion != kubeVersion || v.Major != "1" || v.Minor != "37" {
				t.Errorf("%s version = %s (major %q, minor %q), want %s", who, v.GitVersion, v.Major, v.Minor, kubeVersion)
			}
		}
	})
}

func namespaces(t *testing.T, client kubernetes.Interface) []string {
	t.Helper()
	list, err := client.CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ns := range list.Items {
		names = append(names, ns.Name)
	}
	return names
}

func TestStartWithoutBinariesSaysHowToBuildThem(t *testing.T) {
	t.Setenv(kubeenv.SkipEnv, "")
	t.Setenv(kubeenv.AssetsEnv, t.TempDir())
	msg := fatalMessage(t, func(tb testing.TB) { kubeenv.Start(tb) })
	for _, want := range []string{"has no etcd", "make kube-tools", kubeenv.SkipEnv + "=1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Start's failure %q does not say %q", msg, want)
		}
	}
}

// fatalMessage runs f and returns what it failed the test with.
func fatalMessage(t *testing.T, f func(testing.TB)) string {
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(rec)
	}()
	<-done
	if rec.msg == "" {
		t.Fatal("the test was not failed")
	}
	return rec.msg
}

// fatalRecorder records Fatalf instead of failing the real test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
