package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/klog/v2"

	"github.com/inferxds/inferxds/internal/testlog"
)

func TestOneSourceWithoutTheOtherIsAnError(t *testing.T) {
	policyDir, fleetFile := copyExamples(t)
	for _, args := range [][]string{
		{"serve", "--xds-address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0", "--policy-dir", policyDir},
		{"serve", "--xds-address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0", "--fleet", fleetFile},
		{"plan", "--zone", "az-1", "--fleet", fleetFile},
	} {
		r := runCLI(t, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "give both, or neither to use the embedded example") {
			t.Errorf("%v: exit %d, stderr %q; want 1 and the missing source named", args, r.code, r.stderr)
		}
	}
}

func TestServeSaysItServesTheEmbeddedExample(t *testing.T) {
	s := startServe(t)
	if !strings.Contains(s.logs.String(), "serving the embedded example") {
		t.Errorf("serve without sources does not say it serves the embedded example:\n%s", s.logs)
	}
}

func TestUnknownZonesAreErrors(t *testing.T) {
	_, fleetFile := copyExamples(t)
	for _, args := range [][]string{
		{"plan", "--zone", "nosuchzone"},
		{"bootstrap", "--node-id", "envoy-1", "--zone", "nosuchzone", "--xds-address", "127.0.0.1:18000", "--fleet", fleetFile},
	} {
		r := runCLI(t, args...)
		if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, `zone "nosuchzone" is not in the fleet (zones: az-1, az-2, az-3)`) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 1, nothing printed, the zone refused", args, r.code, r.stdout, r.stderr)
		}
	}
	if r := runCLI(t, "bootstrap", "--node-id", "envoy-1", "--zone", "az-3", "--xds-address", "127.0.0.1:18000", "--fleet", fleetFile); r.code != 0 {
		t.Errorf("bootstrap for a zone of the fleet: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestValidateWarnsWhereFleetAndPolicyDisagree(t *testing.T) {
	policyDir, fleetFile := copyExamples(t)
	editFile(t, fleetFile, "model: gpt-4-8b, node: gpu-az1-a", "model: gpt-5, node: gpu-az1-a")
	editFile(t, fleetFile, "instances:\n", "instances:\n  - {name: phi-1, model: phi-3, zone: az-1, address: 127.0.0.1, port: 18200}\n")
	r := runCLI(t, "validate", policyDir, "--fleet", fleetFile)
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q; warnings must not fail validation", r.code, r.stdout)
	}
	for _, want := range []string{
		`warning: fleet instance gpt-4-8b-az1-primary runs model "gpt-5", which the policy does not define: it gets no route`,
		`warning: fleet instance phi-1 runs model "phi-3", which the policy does not define: it gets no route`,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	writeFile(t, fleetFile, dropInstances(t, fleetFile, "gpt-4-8b"))
	r = runCLI(t, "validate", policyDir, "--fleet", fleetFile)
	if want := `warning: policy model "gpt-4-8b" has no instance in the fleet: its route has no endpoints`; r.code != 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("exit %d, stderr lacks %q:\n%s", r.code, want, r.stderr)
	}
}

func TestKubeSourceSettingsAreChecked(t *testing.T) {
	policyDir, fleetFile := copyExamples(t)
	serve := []string{"serve", "--xds-address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--source", "kube"}, "--source kube needs --policy-dir"},
		{[]string{"--source", "kube", "--policy-dir", policyDir, "--fleet", fleetFile}, "--fleet is for --source file"},
		{[]string{"--source", "cluster"}, `--source (INFERXDS_SOURCE) "cluster": must be file or kube`},
		{[]string{"--source", "kube", "--policy-dir", policyDir, "--kubeconfig", filepath.Join(t.TempDir(), "missing")}, "kubeconfig"},
		{[]string{"--source", "kube", "--policy-dir", policyDir, "--kubeconfig", writeKubeconfig(t, "https://127.0.0.1:1"), "--kube-model-label", "bad key"}, `model label key "bad key"`},
	} {
		r := runCLI(t, append(slices.Clone(serve), tc.args...)...)
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

func TestKubeSourceGivesUpWhenTheAPIServerDoesNotAnswer(t *testing.T) {
	policyDir, _ := copyExamples(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	closed.Close()
	r := runCLI(t, "serve", "--xds-address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0", "--source", "kube",
		"--policy-dir", policyDir, "--kubeconfig", writeKubeconfig(t, "https://"+addr), "--kube-sync-timeout", "1s")
	if want := "could not be listed: no answer within 1s"; r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "connection refused") {
		t.Errorf("exit %d, stderr %q; want 1, %q and why", r.code, r.stderr, want)
	}
	waitFor(t, 30*time.Second, func() error {
		if n := strings.Count(goroutineStacks(), "client-go/tools/cache.(*Reflector).Run"); n != 0 {
			return fmt.Errorf("%d informers still run after serve gave up", n)
		}
		return nil
	})
}

func goroutineStacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// TestClientGoLogsGoToTheLatestServe: client-go's lines (klog's
// process-wide logger) reach the logger of the serve that started last,
// with their own attributes, and no earlier one's.
func TestClientGoLogsGoToTheLatestServe(t *testing.T) {
	var earlier, latest testlog.Buffer
	logClientGoTo(slog.New(slog.NewTextHandler(&earlier, nil)))
	logClientGoTo(slog.New(slog.NewTextHandler(&latest, nil)))
	klog.Background().WithValues("resource", "pods").WithName("reflector").Info("watch ended")
	if earlier.String() != "" || !lineHas(latest.String(), `msg="watch ended"`, "component=client-go", "resource=pods") {
		t.Errorf("earlier serve's log:\n%s\nlatest serve's log:\n%s\nwant the line only in the latest, with component=client-go and resource=pods", &earlier, &latest)
	}
}

// writeKubeconfig writes a kubeconfig for the API server at server.
func writeKubeconfig(t *testing.T, server string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`, server)
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
