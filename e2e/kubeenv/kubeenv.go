// Package kubeenv starts a real Kubernetes API server for tests: etcd and
// kube-apiserver as processes on 127.0.0.1 (controller-runtime's envtest),
// with RBAC on and no kubelet, scheduler or controllers, so a test plays the
// kubelet's part itself (Pod status, EndpointSlices). The binaries come from
// KUBEBUILDER_ASSETS, which `make test-e2e` sets to what `make kube-tools`
// builds; INFERXDS_SKIP_KUBE=1 skips the tests that need them.
//
// It owns starting and stopping that server and nothing about what the
// tests do with it.
package kubeenv

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Environment variables Start reads.
const (
	AssetsEnv = "KUBEBUILDER_ASSETS"
	SkipEnv   = "INFERXDS_SKIP_KUBE"
)

// binaries are what Start needs under AssetsEnv.
var binaries = []string{"etcd", "kube-apiserver"}

// Hang guards: a loaded two-core machine starts the API server in seconds;
// these only stop a test that would otherwise wait forever.
const (
	startTimeout = 2 * time.Minute
	stopTimeout  = time.Minute
)

// skips counts Starts skipped on request, for SkipSummary.
var skips atomic.Int64

// Env is a running API server.
type Env struct {
	// Config reaches the server as a member of system:masters.
	Config *rest.Config
	// Kubeconfig is a kubeconfig file with the same credentials, for
	// processes the test starts.
	Kubeconfig string

	t        testing.TB
	server   *envtest.Environment
	dir      string
	log      *os.File
	stopOnce sync.Once
}

// Start starts etcd and kube-apiserver on free 127.0.0.1 ports and stops
// them when the test ends. It skips the test when INFERXDS_SKIP_KUBE=1 and
// fails it, saying how to build them, when the binaries are missing.
func Start(t testing.TB) *Env {
	t.Helper()
	if os.Getenv(SkipEnv) == "1" {
		skips.Add(1)
		t.Skipf("%s=1: no Kubernetes API server to test against", SkipEnv)
	}
	assets, err := findAssets()
	if err != nil {
		t.Fatalf("kubeenv: %v", err)
	}
	dir, err := os.MkdirTemp("", "inferxds-kubeenv-")
	if err != nil {
		t.Fatalf("kubeenv: %v", err)
	}
	e := &Env{t: t, dir: dir}
	t.Cleanup(e.Stop)
	if e.log, err = os.Create(filepath.Join(dir, logFile)); err != nil {
		t.Fatalf("kubeenv: %v", err)
	}
	e.server = newServer(assets, e.log)
	if e.Config, err = e.server.Start(); err != nil {
		t.Fatalf("kubeenv: starting the API server: %v\n%s", err, e.logTail())
	}
	e.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(e.Kubeconfig, e.server.KubeConfig, 0o600); err != nil {
		t.Fatalf("kubeenv: %v", err)
	}
	return e
}

// findAssets returns the directory AssetsEnv names once it holds the
// binaries.
func findAssets() (string, error) {
	how := fmt.Sprintf("build them with `make kube-tools` and set %s=$(make -s kube-tools), or set %s=1 to skip these tests", AssetsEnv, SkipEnv)
	assets := os.Getenv(AssetsEnv)
	if assets == "" {
		return "", fmt.Errorf("%s is not set: it names the directory with etcd and kube-apiserver; %s", AssetsEnv, how)
	}
	for _, name := range binaries {
		if _, err := os.Stat(filepath.Join(assets, name)); err != nil {
			return "", fmt.Errorf("%s=%s has no %s; %s", AssetsEnv, assets, name, how)
		}
	}
	return assets, nil
}

// logFile, in the Env's directory, has what etcd and kube-apiserver print.
const logFile = "control-plane.log"

// newServer configures envtest for assets, with the processes' output in log.
func newServer(assets string, log io.Writer) *envtest.Environment {
	existing := false
	server := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		UseExistingCluster:       &existing,
		ControlPlaneStartTimeout: startTimeout,
		ControlPlaneStopTimeout:  stopTimeout,
	}
	apiServer := server.ControlPlane.GetAPIServer()
	apiServer.Out, apiServer.Err = log, log
	// Without a kubelet nothing answers on the advertised address, and the
	// default endpoint reconciler would keep rewriting the kubernetes
	// Service's endpoints to it.
	apiServer.Configure().
		Set("advertise-address", "127.0.0.1").
		Set("endpoint-reconciler-type", "none")
	server.ControlPlane.Etcd = &envtest.Etcd{Out: log, Err: log}
	return server
}

// Stop stops the API server and etcd and removes their data. It is safe to
// call more than once; Start already arranges it for the test's end.
func (e *Env) Stop() {
	e.stopOnce.Do(func() {
		if e.server != nil {
			if err := e.server.Stop(); err != nil {
				e.t.Errorf("kubeenv: stopping the API server: %v", err)
			}
		}
		if e.log != nil {
			e.log.Close()
		}
		if err := os.RemoveAll(e.dir); err != nil {
			e.t.Errorf("kubeenv: %v", err)
		}
	})
}

// logTail is the end of the control plane's output, for a failed start.
func (e *Env) logTail() string {
	const max = 4 << 10
	data, err := os.ReadFile(filepath.Join(e.dir, logFile))
	if err != nil {
		return fmt.Sprintf("(no control-plane output: %v)", err)
	}
	if len(data) > max {
		data = data[len(data)-max:]
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	return string(data)
}

// SkipSummary is the line a test binary's TestMain prints after its tests
// when some were skipped by INFERXDS_SKIP_KUBE=1, and "" when none were.
func SkipSummary() string {
	n := skips.Load()
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("SKIPPED %d Kubernetes tests (%s=1): nothing was tested against a real API server", n, SkipEnv)
}
