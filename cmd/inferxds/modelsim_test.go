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
	"github.com/inferxds/inferxds/internal/testlog"
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

// child is a built command the test runs, with its combined output.
type child struct {
	cmd  *exec.Cmd
	logs testlog.Buffer
	done chan struct{}
	err  error // set before done is closed
}

// startChild runs bin with args and, when the test ends, kills it if it
// still runs and logs its output if the test failed.
func startChild(t *testing.T, bin string, args ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = &c.logs, &c.logs
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill() // gone already when the test stopped it
		<-c.done
		if t.Failed() {
			t.Logf("output of %s:\n%s", bin, c.logs.String())
		}
	})
	return c
}

// stop sends SIGTERM and checks that the child exits with status 0 within
// grace.
func (c *child) stop(t *testing.T, grace time.Duration) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.done:
		if c.err != nil {
			t.Errorf("exit after SIGTERM: %v, want status 0", c.err)
		}
	case <-time.After(grace):
		t.Fatalf("still running %v after SIGTERM", grace)
	}
}

func TestModelsimSubcommandServesAsModelsim(t *testing.T) {
	bin := buildInferxds(t)
	readyFile := filepath.Join(t.TempDir(), "ready.json")
	proc := startChild(t, bin, "modelsim", "--id", "x", "--model", "m", "--ready-file", readyFile)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ready, err := sim.WaitReadyFile(ctx, readyFile)
	if err != nil {
		t.Fatalf("ready file: %v", err)
	}
	if ready.ID != "x" || ready.PID != proc.cmd.Process.Pid {
		t.Errorf("ready file = %+v, want id x, pid %d", ready, proc.cmd.Process.Pid)
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

	proc.stop(t, 10*time.Second)
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
