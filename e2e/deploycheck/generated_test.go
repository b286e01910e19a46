package deploycheck

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the generated files under deploy/ instead of comparing them")

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
