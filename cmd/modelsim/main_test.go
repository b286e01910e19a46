package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/inferxds/inferxds/cmd/modelsim/app"
	"github.com/inferxds/inferxds/cmd/modelsim/oip"
	"github.com/inferxds/inferxds/cmd/modelsim/sim"
	"github.com/inferxds/inferxds/internal/testbin"
)

// binary is the modelsim executable built once for all tests.
var binary string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	bins, remove, err := testbin.BuildAll("modelsim-test", "github.com/inferxds/inferxds/cmd/modelsim")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer remove()
	binary = bins[0]
	return m.Run()
}

type process struct {
	cmd    *exec.Cmd
	ready  sim.Ready
	stderr strings.Builder
	exited chan error
}

// startBinary runs modelsim with args and waits for its ready file.
func startBinary(t *testing.T, args ...string) *process {
	t.Helper()
	readyFile := filepath.Join(t.TempDir(), "ready.json")
	p := &process{cmd: exec.Command(binary, append(args, "--ready-file", readyFile)...), exited: make(chan error, 1)}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	ready, err := sim.WaitReadyFile(ctx, readyFile)
	if err != nil {
		t.Fatalf("ready file: %v\nstderr:\n%s", err, &p.stderr)
	}
	p.ready = ready
	return p
}

// exitCode waits up to 10 s for the process to exit.
func (p *process) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case err := <-p.exited:
		p.exited <- err // for Cleanup
		var exitErr *exec.ExitError
		if err != nil && !errors.As(err, &exitErr) {
			t.Fatalf("wait: %v", err)
		}
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(10 * time.Second):
		t.Fatalf("process still running\nstderr:\n%s", &p.stderr)
		return 0
	}
}

func (p *process) infer(t *testing.T, model string) (*oip.ModelInferResponse, error) {
	t.Helper()
	conn, err := grpc.NewClient(p.ready.GRPCAddress, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return oip.NewGRPCInferenceServiceClient(conn).ModelInfer(ctx, sim.NewInferRequest(model, "x"))
}

func (p *process) predict(t *testing.T, model string) (sim.PredictResponse, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return sim.Predict(ctx, http.DefaultClient, p.ready.HTTPAddress, model, "x")
}

func (p *process) metricsText(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + p.ready.HTTPAddress + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return string(body)
}

func TestBinaryServesBothProtocolsAndDrainsOnSIGTERM(t *testing.T) {
	p := startBinary(t, "--id", "bin-a", "--model", "m1,m2", "--latency", "300ms")
	if p.ready.ID != "bin-a" || p.ready.PID != p.cmd.Process.Pid || p.ready.GRPCAddress == "" {
		t.Errorf("ready file = %+v, want id bin-a, pid %d and a gRPC address", p.ready, p.cmd.Process.Pid)
	}
	if got, err := p.predict(t, "m1"); err != nil || got.Instance != "bin-a" {
		t.Errorf("predict m1 = %+v, %v; want a reply from bin-a", got, err)
	}
	if got, err := p.infer(t, "m2"); err != nil || sim.InstanceOf(got) != "bin-a" {
		t.Errorf("ModelInfer m2 = %v, %v; want a reply from bin-a", got, err)
	}

	inFlight := make(chan error, 1)
	go func() {
		_, err := p.predict(t, "m1")
		inFlight <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.metricsText(t), `vllm:num_requests_running{model_name="m1"} 1`) {
		if time.Now().After(deadline) {
			t.Fatal("request never showed as running")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	if err := <-inFlight; err != nil {
		t.Errorf("request in flight at SIGTERM: %v, want 200", err)
	}
	if code := p.exitCode(t); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0\nstderr:\n%s", code, &p.stderr)
	}
}

func TestBinaryFailureFlagsShareOneRequestCount(t *testing.T) {
	p := startBinary(t, "--id", "bin-b", "--model", "m1",
		"--fail-http-status", "502", "--fail-grpc-code", "ABORTED", "--fail-rate", "0.5")
	var se *sim.StatusError
	if _, err := p.predict(t, "m1"); err != nil {
		t.Errorf("request 1 (HTTP): %v, want 200", err)
	}
	if _, err := p.predict(t, "m1"); !errors.As(err, &se) || se.Code != 502 {
		t.Errorf("request 2 (HTTP): %v, want HTTP 502", err)
	}
	if _, err := p.infer(t, "m1"); err != nil {
		t.Errorf("request 3 (gRPC): %v, want OK", err)
	}
	if _, err := p.infer(t, "m1"); status.Code(err) != codes.Aborted {
		t.Errorf("request 4 (gRPC): %v, want ABORTED", err)
	}
}

func TestBinaryExitAfterCrashesWithStatus3(t *testing.T) {
	p := startBinary(t, "--id", "bin-c", "--model", "m1", "--exit-after", "1")
	if _, err := p.infer(t, "m1"); err != nil {
		t.Fatalf("request 1: %v", err)
	}
	if _, err := p.infer(t, "m1"); status.Code(err) != codes.Unavailable {
		t.Errorf("request 2: %v, want UNAVAILABLE (connection dropped)", err)
	}
	if code := p.exitCode(t); code != app.ExitCrashed {
		t.Errorf("exit code = %d, want %d", code, app.ExitCrashed)
	}
}

func TestBinaryReportsEveryBadFlag(t *testing.T) {
	cmd := exec.Command(binary, "--fail-rate", "2", "--fail-grpc-code", "NOPE", "--latency", "-1s", "--warm-load-time", "-1s")
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != app.ExitBadFlags {
		t.Fatalf("exit = %v, want status %d\n%s", err, app.ExitBadFlags, out)
	}
	for _, want := range []string{"instance id", "no model", "NOPE", "fail rate", "latency", "warm load time"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not mention %q:\n%s", want, out)
		}
	}
}

func TestHelpPrintsUsageAndExits0(t *testing.T) {
	out, err := exec.Command(binary, "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "-http-address") {
		t.Errorf("modelsim --help: %v, output:\n%s\nwant exit 0 and the flags", err, out)
	}
}
