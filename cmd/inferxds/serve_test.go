package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inferxds/inferxds/internal/testlog"
)

// served is a running in-process `inferxds serve`.
type served struct {
	XDSAddress     string `json:"xdsAddress"`
	MetricsAddress string `json:"metricsAddress"`
	logs           *testlog.Buffer
}

// startServe runs serve with args on ephemeral 127.0.0.1 ports (plaintext
// xDS unless args name TLS files), waits for its ready file, and on cleanup stops it as SIGTERM would, requiring a
// clean exit.
func startServe(t *testing.T, args ...string) *served {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready.json")
	args = append([]string{"serve", "--xds-address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0", "--ready-file", ready}, args...)
	if !slices.Contains(args, "--tls-cert") {
		args = append(args, "--insecure")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{logs: &testlog.Buffer{}}
	exited := make(chan int, 1)
	go func() { exited <- execute(ctx, args, io.Discard, s.logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-exited:
			if code != 0 {
				t.Errorf("serve exited %d after cancel:\n%s", code, s.logs)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("serve did not stop within 10s of cancel")
		}
	})
	waitFor(t, 30*time.Second, func() error {
		select {
		case code := <-exited:
			t.Fatalf("serve exited %d:\n%s", code, s.logs)
		default:
		}
		data, err := os.ReadFile(ready)
		if err != nil {
			return err
		}
		return json.Unmarshal(data, s)
	})
	return s
}

func waitFor(t *testing.T, limit time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *served) dump(t *testing.T, zone string, delta bool) (string, error) {
	t.Helper()
	var out bytes.Buffer
	o := dumpOptions{xdsAddress: s.XDSAddress, nodeID: "test-" + zone, zone: zone, delta: delta, timeout: 5 * time.Second}
	err := runDump(context.Background(), &out, o)
	return out.String(), err
}

func (s *served) get(t *testing.T, path string) string {
	t.Helper()
	client := http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get("http://" + s.MetricsAddress + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v\n%s", path, resp.StatusCode, err, body)
	}
	return string(body)
}

// TestServeAnswersDumpWithThePlan: with no sources given, serve serves the
// embedded example; what a proxy receives over either protocol is exactly
// what plan prints for its zone.
func TestServeAnswersDumpWithThePlan(t *testing.T) {
	s := startServe(t)
	if !lineHas(s.logs.String(), `msg="serving xDS"`, "address="+s.XDSAddress) ||
		!lineHas(s.logs.String(), `msg="serving metrics"`, "address="+s.MetricsAddress) {
		t.Errorf("serve did not log its addresses:\n%s", s.logs)
	}
	for _, zone := range []string{"az-1", "az-2"} {
		plan := runCLI(t, "plan", "--zone", zone)
		for _, delta := range []bool{false, true} {
			got, err := s.dump(t, zone, delta)
			if err != nil {
				t.Fatalf("dump %s (delta %v): %v", zone, delta, err)
			}
			if got != plan.stdout {
				t.Errorf("dump %s (delta %v) differs from plan:\n--- dump\n%s\n--- plan\n%s", zone, delta, got, plan.stdout)
			}
		}
	}
	var status statusDocument
	if err := json.Unmarshal([]byte(s.get(t, "/status")), &status); err != nil {
		t.Fatal(err)
	}
	planned := parseDump(t, []byte(runCLI(t, "plan", "--zone", "az-1").stdout))
	if got := status.Views["az-1/all"].Endpoints; got == "" || got != planned["endpoints"].Version {
		t.Errorf("/status az-1 endpoints version %q, want the planned %q", got, planned["endpoints"].Version)
	}
	if s.get(t, "/healthz") == "" {
		t.Error("/healthz is empty")
	}
	if m := s.get(t, "/metrics"); !strings.Contains(m, "inferxds_") || !strings.Contains(m, "go_goroutines") {
		t.Errorf("/metrics lacks the inferxds or Go runtime metrics:\n%s", m)
	}
}

// TestServeHotReloadKeepsLastGoodPolicy: a broken edit is refused and
// reported with its file and line while proxies keep the last good
// resources; the next good edit reaches them.
func TestServeHotReloadKeepsLastGoodPolicy(t *testing.T) {
	policyDir, fleetFile := copyExamples(t)
	policy := filepath.Join(policyDir, "dr-policy.yaml")
	s := startServe(t, "--policy-dir", policyDir, "--fleet", fleetFile)
	before, err := s.dump(t, "az-1", false)
	if err != nil {
		t.Fatal(err)
	}

	editFile(t, policy, `rto: "5m"`, `rto: "five minutes"`)
	location := fmt.Sprintf("dr-policy.yaml:%d", lineOf(t, policy, "five minutes"))
	waitFor(t, 30*time.Second, func() error {
		if !lineHas(s.logs.String(), location, "rto") {
			return fmt.Errorf("no log line names %s and rto:\n%s", location, s.logs)
		}
		if status := s.get(t, "/status"); !strings.Contains(status, location) {
			return fmt.Errorf("/status does not name %s:\n%s", location, status)
		}
		return nil
	})
	if after, err := s.dump(t, "az-1", false); err != nil || after != before {
		t.Fatalf("resources changed after a refused edit (err %v):\n%s", err, after)
	}

	editFile(t, policy, `"gpt-4-8b"`, `"gpt-5"`)
	editFile(t, policy, `rto: "five minutes"`, `rto: "5m"`)
	waitFor(t, 30*time.Second, func() error {
		out, err := s.dump(t, "az-1", true)
		if err != nil {
			return err
		}
		if got := strings.Join(parseDump(t, []byte(out)).names("clusters"), ","); got != "gpt-5,llama-2-7b,mistral-7b" {
			return fmt.Errorf("clusters %s, want the edit's gpt-5,llama-2-7b,mistral-7b", got)
		}
		return nil
	})
	if status := s.get(t, "/status"); strings.Contains(status, location) {
		t.Errorf("/status still reports the fixed problem:\n%s", status)
	}
}
