package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferxds/inferxds/internal/testpki"
	"github.com/inferxds/inferxds/xds"
)

// TestServeNeedsTLSOrInsecure: without TLS files serve refuses to start
// unless --insecure asks for plaintext, and the two cannot be mixed.
func TestServeNeedsTLSOrInsecure(t *testing.T) {
	base := []string{"serve", "--xds-address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0"}
	for _, tc := range []struct {
		extra []string
		want  string
	}{
		{nil, "serve needs --tls-cert, --tls-key and --client-ca"},
		{[]string{"--tls-cert", "c.pem"}, "serve needs --tls-cert, --tls-key and --client-ca"},
		{[]string{"--insecure", "--tls-cert", "c.pem"}, "--insecure cannot be combined"},
		{[]string{"--tls-cert", "missing.pem", "--tls-key", "k.pem", "--client-ca", "ca.pem"}, "missing.pem"},
	} {
		res := runCLI(t, append(base, tc.extra...)...)
		if res.code != 1 || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("serve %v: exit %d, stderr %q; want exit 1 naming %q", tc.extra, res.code, res.stderr, tc.want)
		}
	}
}

// TestServeOverMutualTLS: a node whose certificate names it receives what
// plan prints for its zone; the same certificate used for another node is
// refused with the mismatch named, and the refusal is counted.
func TestServeOverMutualTLS(t *testing.T) {
	ca := testpki.NewCA(t, "inferxds-test")
	server := ca.Server("server")
	s := startServe(t, "--tls-cert", server.CertFile, "--tls-key", server.KeyFile, "--client-ca", ca.CertFile, "--trust-domain", "test.inferxds")
	edge := ca.Client("edge-1", xds.NodeURI("test.inferxds", "az-1", "edge-1"))
	dump := func(nodeID string) (string, error) {
		var out strings.Builder
		o := dumpOptions{xdsAddress: s.XDSAddress, nodeID: nodeID, zone: "az-1", timeout: 5 * time.Second,
			tls: clientTLSFiles{cert: edge.CertFile, key: edge.KeyFile, ca: ca.CertFile}}
		err := runDump(context.Background(), &out, o)
		return out.String(), err
	}

	got, err := dump("edge-1")
	if err != nil {
		t.Fatalf("dump as the certificate's node: %v", err)
	}
	if plan := runCLI(t, "plan", "--zone", "az-1").stdout; got != plan {
		t.Errorf("dump over mTLS differs from plan:\n--- dump\n%s\n--- plan\n%s", got, plan)
	}
	if _, err := dump("edge-2"); err == nil || !strings.Contains(err.Error(), "PermissionDenied") || !strings.Contains(err.Error(), `request names node "edge-2"`) {
		t.Errorf("dump as another node: %v; want PermissionDenied naming the node", err)
	}
	if m := s.get(t, "/metrics"); !strings.Contains(m, `inferxds_xds_refused_streams_total{reason="node_mismatch"} 1`) {
		t.Errorf("/metrics does not count the refusal:\n%s", m)
	}

	status := statusOptions{xdsAddress: s.XDSAddress, output: outputTable}
	if err := runProxyStatus(t.Context(), io.Discard, status, time.Now()); err == nil {
		t.Error("status in plaintext against an mTLS xDS port succeeded")
	}
	status.tls = clientTLSFiles{cert: edge.CertFile, key: edge.KeyFile, ca: ca.CertFile}
	if err := runProxyStatus(t.Context(), io.Discard, status, time.Now()); err != nil {
		t.Errorf("status with the client certificate: %v", err)
	}
}

// TestMetricsTokenGuardsMetricsAndStatus: with a token configured,
// /metrics and /status answer 401 without it, while the health probe
// stays open.
func TestMetricsTokenGuardsMetricsAndStatus(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, "--metrics-token-file", tokenFile)
	for _, tc := range []struct {
		path, auth string
		want       int
	}{
		{"/status", "", http.StatusUnauthorized},
		{"/status", "Bearer wrong", http.StatusUnauthorized},
		{"/metrics", "", http.StatusUnauthorized},
		{"/status", "Bearer s3cret", http.StatusOK},
		{"/metrics", "Bearer s3cret", http.StatusOK},
		{"/healthz", "", http.StatusOK},
	} {
		if got := httpStatus(t, "http://"+s.MetricsAddress+tc.path, tc.auth); got != tc.want {
			t.Errorf("GET %s with Authorization %q: %d, want %d", tc.path, tc.auth, got, tc.want)
		}
	}

	status := statusOptions{metricsAddress: s.MetricsAddress, output: outputTable}
	if err := runModelStatus(t.Context(), io.Discard, status, "llama-2-7b"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("status MODEL without the token: %v; want a 401", err)
	}
	status.tokenFile = tokenFile
	if err := runModelStatus(t.Context(), io.Discard, status, "llama-2-7b"); err != nil {
		t.Errorf("status MODEL with --metrics-token-file: %v", err)
	}
}

func httpStatus(t *testing.T, url, auth string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
