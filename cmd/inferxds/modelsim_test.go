package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inferxds/inferxds/cmd/modelsim/app"
	"github.com/inferxds/inferxds/cmd/modelsim/sim"
	"github.com/inferxds/inferxds/internal/testbin"
)

// buildInferxds builds this command into a temporary directory.
func buildInferxds(t *testing.T) string {
	t.Helper()
	bin, err := testbin.Build(t.TempDir(), "github.com/inferxds/inferxds/cmd/inferxds")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestModelsimSubcommandServesAsModelsim(t *testing.T) {
	bin := buildInferxds(t)
	readyFile := filepath.Join(t.TempDir(), "ready.json")
	cmd := exec.Command(bin, "modelsim", "--id", "x", "--model", "m", "--ready-file", readyFile)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // already gone when the test stopped it
		<-exited
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ready, err := sim.WaitReadyFile(ctx, readyFile)
	if err != nil {
		t.Fatalf("ready file: %v\nstderr:\n%s", err, &stderr)
	}
	if ready.ID != "x" || ready.PID != cmd.Process.Pid {
		t.Errorf("ready file = %+v, want id x, pid %d", ready, cmd.Process.Pid)
	}
	resp, err := http.Get("http://" + ready.HTTPAddress + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	defer resp.Body.Close()
	var h sim.Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || resp.StatusCode != http.StatusOK || h.Instance != "x" || h.Status != sim.StatusServing {
		t.Errorf("/healthz = HTTP %d, %+v, %v; want 200 serving from x", resp.StatusCode, h, err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("exit after SIGTERM: %v, want status 0\nstderr:\n%s", err, &stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10 s after SIGTERM\nstderr:\n%s", &stderr)
	}
}

func TestModelsimSubcommandKeepsModelsimsExitStatus(t *testing.T) {
	res := runCLI(t, "modelsim", "--checkpoint", "c1")
	if res.code != app.ExitBadFlags || !strings.Contains(res.stderr, "--checkpoint-time") {
		t.Errorf("inferxds modelsim with bad flags: exit %d, stderr:\n%s\nwant exit %d naming --checkpoint-time", res.code, res.stderr, app.ExitBadFlags)
	}
	if res := runCLI(t, "modelsim", "--help"); res.code != 0 || !strings.Contains(res.stderr, "-start-asleep") {
		t.Errorf("inferxds modelsim --help: exit %d, stderr:\n%s\nwant 0 and modelsim's flags", res.code, res.stderr)
	}
	if res := runCLI(t, "--help"); strings.Contains(res.stdout, "modelsim") {
		t.Errorf("inferxds --help lists the hidden modelsim command:\n%s", res.stdout)
	}
}
