package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/inferxds/inferxds/cmd/modelsim/sim"
	"github.com/inferxds/inferxds/drpolicy/actuator/local"
	"github.com/inferxds/inferxds/drpolicy/dr"
)

// healthServer answers /healthz as a model server does, serving until
// failing is set, and echoes the deep probe.
func healthServer(t *testing.T, failing *atomic.Bool) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, code := "serving", http.StatusOK
		if failing.Load() {
			status, code = "failing", http.StatusServiceUnavailable
		}
		w.WriteHeader(code)
		if r.URL.Path == "/healthz" {
			fmt.Fprintf(w, `{"status":%q,"checkpoint":{"id":"ck-9","time":"2026-12-01T10:00:00Z"}}`, status)
			return
		}
		var in struct{ Input string }
		json.NewDecoder(r.Body).Decode(&in)
		json.NewEncoder(w).Encode(map[string]string{"output": in.Input})
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// drSources writes a policy directory and a fleet file: model m1 with a
// primary and a hot standby in az-1, answered by the two addresses.
func drSources(t *testing.T, primary, standby string) (policyDir, fleetFile string) {
	t.Helper()
	dir := t.TempDir()
	policyDir = filepath.Join(dir, "policy")
	if err := os.Mkdir(policyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	policy := `models:
  - {name: m1, priority: critical, hotStandby: 1, warmStandby: 0, coldStandby: 0}
az_failover:
  strategy: active-passive
  activeZones: [az-1]
  standbyZone: az-2
  healthCheckInterval: 50ms
  failoverThreshold: 2
`
	hostPort := func(addr string) string {
		host, port, _ := strings.Cut(addr, ":")
		return fmt.Sprintf("address: %s, port: %s", host, port)
	}
	fleet := fmt.Sprintf(`zones:
  - {name: az-1, role: active}
  - {name: az-2, role: standby}
nodes:
  - {name: n1, zone: az-1, gpus: [{index: 0, memoryTotalMiB: 81920}, {index: 1, memoryTotalMiB: 81920}]}
instances:
  - {name: m1-a, model: m1, node: n1, gpus: [0], %s}
  - {name: m1-b, model: m1, node: n1, gpus: [1], role: standby, %s}
`, hostPort(primary), hostPort(standby))
	fleetFile = filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(filepath.Join(policyDir, "dr-policy.yaml"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fleetFile, []byte(fleet), 0o644); err != nil {
		t.Fatal(err)
	}
	return policyDir, fleetFile
}

// TestServeDRDrainsAFailedPrimary: with --dr, a primary whose /healthz
// fails is drained and its hot standby promoted; status MODEL shows the
// instances as the DR state makes them, their checkpoints and the
// incident, the incident log has it, and failback of a zone that never
// failed over is refused.
func TestServeDRDrainsAFailedPrimary(t *testing.T) {
	var primaryFailing, standbyFailing atomic.Bool
	policyDir, fleetFile := drSources(t, healthServer(t, &primaryFailing), healthServer(t, &standbyFailing))
	incidentLog := filepath.Join(t.TempDir(), "incidents.jsonl")
	s := startServe(t, "--policy-dir", policyDir, "--fleet", fleetFile, "--scrape-interval", "0",
		"--dr", "--probe-interval", "20ms", "--incident-log", incidentLog)

	primaryFailing.Store(true)
	var doc modelStatus
	waitFor(t, 30*time.Second, func() error {
		doc = modelStatus{}
		if err := json.Unmarshal([]byte(s.get(t, "/status/models/m1")), &doc); err != nil {
			return err
		}
		if len(doc.Incidents) == 0 || doc.Incidents[0].DrainedAt.IsZero() {
			return fmt.Errorf("no drained incident yet: %+v", doc)
		}
		return nil
	})
	roles := map[string]string{}
	for _, in := range doc.Instances {
		roles[in.Name] = in.Role + " " + in.Health
		if in.Checkpoint == nil || in.Checkpoint.ID != "ck-9" {
			t.Errorf("%s checkpoint %+v, want ck-9", in.Name, in.Checkpoint)
		}
	}
	if roles["m1-a"] != "primary unhealthy" || roles["m1-b"] != "primary serving" {
		t.Errorf("instances %v: want m1-a drained, m1-b promoted", roles)
	}
	if p, ok := doc.Instances[1].Priorities["az-1"]; !ok || p != 0 {
		t.Errorf("m1-b priorities %v, want 0 in az-1", doc.Instances[1].Priorities)
	}
	if _, ok := doc.Instances[0].Priorities["az-1"]; ok {
		t.Errorf("m1-a is still an endpoint: %v", doc.Instances[0].Priorities)
	}

	waitFor(t, 30*time.Second, func() error {
		out, err := s.dump(t, "az-1", false)
		switch {
		case err != nil:
			return err
		case strings.Contains(out, "m1-a") || !strings.Contains(out, "m1-b"):
			return fmt.Errorf("az-1's proxies are sent m1-a, or not m1-b:\n%s", out)
		}
		return nil
	})

	var status statusDocument
	if err := json.Unmarshal([]byte(s.get(t, "/status")), &status); err != nil {
		t.Fatal(err)
	}
	if len(status.DR) != 1 || len(status.DR[0].Incidents) != 1 || len(status.DR[0].Instances) != 2 || status.DR[0].Instances[0].Health != "unhealthy" {
		t.Errorf("/status dr = %+v, want m1 with its two instances, m1-a unhealthy, and the incident", status.DR)
	}

	metrics := s.scrape(t)
	if n, ok := sample(metrics, "inferxds_dr_recovery_seconds", "model=m1", "failure=probe-failure", "stage=switch"); !ok || n != 1 {
		t.Errorf("inferxds_dr_recovery_seconds{stage=switch} has %v observations (present %v), want 1", n, ok)
	}
	wantSample(t, metrics, 0, "inferxds_dr_guard_held")

	var table bytes.Buffer
	o := statusOptions{metricsAddress: s.MetricsAddress, output: outputTable}
	if err := runModelStatus(context.Background(), &table, o, "m1"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CHECKPOINT", "ck-9@2026-12-01T10:00:00Z", "INCIDENT", "probe-failure", "m1-b"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("status m1 lacks %q:\n%s", want, table.String())
		}
	}

	data, err := os.ReadFile(incidentLog)
	if err != nil {
		t.Fatal(err)
	}
	var last dr.Incident
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Instance != "m1-a" || last.DrainedAt.IsZero() {
		t.Errorf("incident log %q: want m1-a's drained incident last (%v)", data, err)
	}

	err = runFailback(context.Background(), &bytes.Buffer{}, failbackOptions{metricsAddress: s.MetricsAddress, zone: "az-1"})
	if err == nil || !strings.Contains(err.Error(), `zone "az-1" has not failed over`) {
		t.Errorf("failback of a zone that never failed over: %v", err)
	}
}

func TestFailbackWithoutDRIsRefused(t *testing.T) {
	s := startServe(t)
	err := runFailback(context.Background(), &bytes.Buffer{}, failbackOptions{metricsAddress: s.MetricsAddress, zone: "az-1"})
	if err == nil || !strings.Contains(err.Error(), "the DR loop is off") {
		t.Errorf("failback on a serve without --dr: %v", err)
	}
}

// TestServeDRLocalRecoversACrashedPrimary runs the built binary as an
// operator would: serve --dr --actuator local starts the fleet's model
// servers; the primary's process is killed; the actuator reports the
// crash, the hot standby is promoted and the chain refilled (a standby
// created, loaded and woken) until the incident is restored; on SIGTERM no
// model server outlives serve.
func TestServeDRLocalRecoversACrashedPrimary(t *testing.T) {
	bin := buildInferxds(t)
	dir := t.TempDir()
	localDir := filepath.Join(dir, "local")
	policyDir, fleetFile := drSources(t, freeAddress(t), freeAddress(t))
	editFile(t, fleetFile, "{index: 1, memoryTotalMiB: 81920}]", "{index: 1, memoryTotalMiB: 81920}, {index: 2, memoryTotalMiB: 81920}]")
	ready := filepath.Join(dir, "ready.json")
	serve := startChild(t, bin, "serve", "--policy-dir", policyDir, "--fleet", fleetFile, "--insecure", "--scrape-interval", "0",
		"--xds-address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0", "--ready-file", ready,
		"--dr", "--actuator", "local", "--local-dir", localDir, "--probe-interval", "100ms")
	var s served
	waitFor(t, 30*time.Second, func() error {
		data, err := os.ReadFile(ready)
		if err != nil {
			return err
		}
		return json.Unmarshal(data, &s)
	})
	waitFor(t, 30*time.Second, func() error {
		if !strings.Contains(serve.logs.String(), `msg="model servers launched" processes=2`) {
			return errors.New("serve has not launched the fleet's two model servers")
		}
		return nil
	})
	primary, err := sim.ReadReadyFile(filepath.Join(localDir, "m1-a.ready"))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(primary.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}

	var doc modelStatus
	waitFor(t, 20*time.Second, func() error {
		select {
		case <-serve.done:
			t.Fatalf("serve exited: %v", serve.err)
		default:
		}
		doc = modelStatus{}
		resp, err := http.Get("http://" + s.MetricsAddress + "/status/models/m1")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			return err
		}
		if len(doc.Incidents) == 0 || doc.Incidents[0].RestoredAt.IsZero() {
			return fmt.Errorf("incident not restored: %+v", doc.Incidents)
		}
		return nil
	})
	inc := doc.Incidents[0]
	if inc.Failure != dr.FailureProcessCrash || inc.Replacement != "m1-b" || inc.DrainedAt.IsZero() {
		t.Errorf("incident %+v: want m1-a's process crash, drained, m1-b replacing it", inc)
	}
	states := map[string]string{}
	for _, in := range doc.Instances {
		states[in.Name] = in.Tier + " " + in.Role + " " + in.Health
	}
	want := map[string]string{"m1-a": "hot primary unhealthy", "m1-b": "hot primary serving", "m1-cold-1": "hot standby serving"}
	if fmt.Sprint(states) != fmt.Sprint(want) {
		t.Errorf("instances %v, want %v", states, want)
	}
	t.Logf("process crash: drained +%v, standby chain restored +%v after detection",
		inc.DrainedAt.Sub(inc.DetectedAt), inc.RestoredAt.Sub(inc.DetectedAt))

	created, err := sim.ReadReadyFile(filepath.Join(localDir, "m1-cold-1.ready"))
	if err != nil {
		t.Fatal(err)
	}
	standby, err := sim.ReadReadyFile(filepath.Join(localDir, "m1-b.ready"))
	if err != nil {
		t.Fatal(err)
	}
	serve.stop(t, time.Minute)
	for _, pid := range []int{standby.PID, created.PID} {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("model server %d outlived serve", pid)
		}
	}
}

// freeAddress is a 127.0.0.1 address nothing listens on now, for a model
// server serve starts later (see local.FreePorts).
func freeAddress(t *testing.T) string {
	t.Helper()
	ports, err := local.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(int(ports[0])))
}
