package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/inferxds/inferxds/cmd/modelsim/app"
	"github.com/inferxds/inferxds/cmd/modelsim/sim"
	"github.com/inferxds/inferxds/drpolicy/engine"
)

func (p *process) health(t *testing.T) sim.Health {
	t.Helper()
	resp, err := http.Get("http://" + p.ready.HTTPAddress + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	defer resp.Body.Close()
	var h sim.Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("/healthz body: %v", err)
	}
	return h
}

func (p *process) waitStatus(t *testing.T, want sim.Status) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.health(t).Status != want {
		if time.Now().After(deadline) {
			t.Fatalf("status never became %s, last %+v\nstderr:\n%s", want, p.health(t), &p.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBinaryWarmStandbyLoadsSleepsAndWakes(t *testing.T) {
	p := startBinary(t, "--id", "warm-a", "--model", "m1", "--start-asleep",
		"--cold-load-time", "1s", "--warm-load-time", "100ms",
		"--checkpoint", "ckpt-7", "--checkpoint-time", "2026-03-01T12:00:00Z")
	if h := p.health(t); h.Status != sim.StatusLoading {
		t.Errorf("status once the ready file is written = %+v, want loading", h)
	}
	p.waitStatus(t, sim.StatusSleeping)
	var se *sim.StatusError
	if _, err := p.predict(t, "m1"); !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
		t.Errorf("predict asleep = %v, want HTTP 503", err)
	}

	resp, err := http.Post("http://"+p.ready.HTTPAddress+"/wake_up", "", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /wake_up = %v, %v; want 200", resp, err)
	}
	resp.Body.Close()
	h := p.health(t)
	want := sim.Checkpoint{ID: "ckpt-7", Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	if h.Status != sim.StatusServing || h.Sleeping || h.Checkpoint == nil || h.Checkpoint.ID != want.ID || !h.Checkpoint.Time.Equal(want.Time) {
		t.Errorf("/healthz after wake_up = %+v, want serving at %+v", h, want)
	}
	if got, err := p.predict(t, "m1"); err != nil || got.Instance != "warm-a" {
		t.Errorf("predict awake = %+v, %v; want a reply from warm-a", got, err)
	}
}

func TestBinaryCorruptFlagFailsTheDeepProbeOnly(t *testing.T) {
	p := startBinary(t, "--id", "bad-a", "--model", "m1", "--corrupt")
	if corrupt, err := engine.ProbeDeep(t.Context(), http.DefaultClient, p.ready.HTTPAddress, "m1"); !corrupt {
		t.Errorf("ProbeDeep = %v, %v; want corrupt", corrupt, err)
	}
	if h, err := engine.ProbeHealth(t.Context(), http.DefaultClient, p.ready.HTTPAddress); err != nil || h.Status != "serving" {
		t.Errorf("ProbeHealth = %+v, %v; want serving", h, err)
	}
}

func TestBinaryCheckpointFlagsGoTogether(t *testing.T) {
	for _, args := range [][]string{
		{"--checkpoint", "c1"},
		{"--checkpoint-time", "2026-03-01T12:00:00Z"},
	} {
		out, err := exec.Command(binary, append([]string{"--id", "a", "--model", "m"}, args...)...).CombinedOutput()
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) || exitErr.ExitCode() != app.ExitBadFlags {
			t.Errorf("%v: exit = %v, want status %d\n%s", args, err, app.ExitBadFlags, out)
		}
		if !strings.Contains(string(out), "--checkpoint ") || !strings.Contains(string(out), "--checkpoint-time") {
			t.Errorf("%v: output does not name both flags:\n%s", args, out)
		}
	}
	out, _ := exec.Command(binary, "--id", "a", "--model", "m", "--checkpoint", "c1", "--checkpoint-time", "yesterday").CombinedOutput()
	if !strings.Contains(string(out), `--checkpoint-time "yesterday"`) {
		t.Errorf("a bad --checkpoint-time is not named:\n%s", out)
	}
}
