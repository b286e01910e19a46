package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/inferxds/inferxds/cmd/gpu-agent/agent/nvmlmock"
	"github.com/inferxds/inferxds/internal/testbin"
)

// TestBinaryWithoutNVMLSaysSoAndExits runs the real binary against a
// library path that does not exist, so NVML really fails to load (as it does
// on a machine without the NVIDIA driver), whatever machine runs the test.
func TestBinaryWithoutNVMLSaysSoAndExits(t *testing.T) {
	binary, err := testbin.Build(t.TempDir(), "github.com/inferxds/inferxds/cmd/gpu-agent")
	if err != nil {
		t.Fatal(err)
	}
	library := filepath.Join(t.TempDir(), "libnvidia-ml.so.1")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, binary, "--listen", "127.0.0.1:0", "--nvml-library", library)
	cmd.Stderr = &stderr
	err = cmd.Run()

	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitNoNVML {
		t.Fatalf("exit = %v, want status %d\nstderr:\n%s", err, exitNoNVML, &stderr)
	}
	for _, want := range []string{"NVML is not available on this machine", library, "install the NVIDIA driver, or run dcgm-exporter"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, &stderr)
		}
	}
}

func TestRunServesUntilCanceledThenStopsGracefully(t *testing.T) {
	m := nvmlmock.NewDGXA100()
	readyFile := filepath.Join(t.TempDir(), "ready.json")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	exited := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		exited <- run(ctx, []string{"--listen", "127.0.0.1:0", "--hostname", "node-b", "--ready-file", readyFile, "--xid-poll-timeout", "20ms"},
			&stderr, func(string) nvml.Interface { return m.NVML() })
	}()
	r := waitReadyFile(t, readyFile, exited)
	if r.PID != os.Getpid() {
		t.Errorf("ready file pid = %d, want %d", r.PID, os.Getpid())
	}
	body := get(t, "http://"+r.Address+"/metrics")
	if !strings.Contains(body, `Hostname="node-b"`) || !strings.Contains(body, "DCGM_FI_DEV_GPU_UTIL") {
		t.Errorf("/metrics does not show DCGM_FI_DEV_GPU_UTIL with Hostname node-b:\n%s", body)
	}
	get(t, "http://"+r.Address+"/healthz")

	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit status %d after cancel, want 0\n%s", code, &stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return within 10s of cancel")
	}
	if m.Initialized() || m.OpenEventSets() != 0 {
		t.Errorf("after stop: NVML initialised %v, %d event sets open; want false, 0", m.Initialized(), m.OpenEventSets())
	}
	if _, err := http.Get("http://" + r.Address + "/healthz"); err == nil {
		t.Error("still serving after stop")
	}
}

func TestBadFlagExits2(t *testing.T) {
	code := run(t.Context(), []string{"--no-such-flag"}, io.Discard, func(string) nvml.Interface {
		t.Fatal("NVML opened despite a bad flag")
		return nil
	})
	if code != exitBadFlags {
		t.Errorf("exit status %d, want %d", code, exitBadFlags)
	}
}

// waitReadyFile polls for the ready file for up to 10 s, failing early if
// run exits first.
func waitReadyFile(t *testing.T, path string, exited <-chan int) ready {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			var r ready
			if err := json.Unmarshal(data, &r); err != nil {
				t.Fatalf("ready file %q: %v", data, err)
			}
			return r
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		select {
		case code := <-exited:
			t.Fatalf("run exited with %d before writing the ready file", code)
		case <-deadline:
			t.Fatal("no ready file within 10s")
		case <-tick.C:
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d, %v", url, resp.StatusCode, err)
	}
	return string(body)
}

func TestHelpPrintsUsageAndExits0(t *testing.T) {
	var stderr strings.Builder
	code := run(t.Context(), []string{"--help"}, &stderr, func(string) nvml.Interface {
		t.Fatal("NVML opened for --help")
		return nil
	})
	if code != 0 || !strings.Contains(stderr.String(), "-listen") {
		t.Errorf("--help: exit %d, output %q; want 0 and the flags", code, stderr.String())
	}
}
