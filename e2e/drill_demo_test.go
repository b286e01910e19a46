package e2e

import (
	"errors"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// TestDemoRunsAndLeavesNoProcess: `inferxds demo` brings the local world
// up, kills a primary, shows the recovery, prints the measured table and
// exits 0 with nothing it started left running.
func TestDemoRunsAndLeavesNoProcess(t *testing.T) {
	requireEnvoy(t)
	runDemo(t)
}

// TestDemoNoEnvoyRunsAndLeavesNoProcess is the demo with its traffic
// through a proxyless gRPC client in place of Envoy.
func TestDemoNoEnvoyRunsAndLeavesNoProcess(t *testing.T) { runDemo(t, "--no-envoy") }

func runDemo(t *testing.T, extra ...string) {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"demo", "--duration", "20s", "--fault-after", "5s",
		"--cold-load-time", "3s", "--warm-load-time", "1s", "--dir", dir}, extra...)
	p := startProcess(t, "inferxds demo", binaries.inferxds, args...)
	awaitExit(t, p, drillTimeout)
	out := p.output.String()
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("inferxds demo exited %d:\n%s", code, out)
	}
	assertNoProcessUnder(t, dir)
	for _, want := range []string{
		`llama-2-7b-az1-primary +az-1 +hot +primary`,
		`fault +SIGKILL llama-2-7b-az1-primary`,
		`measured recovery:`,
		`process-crash +\d\S* \(<1s\) +\d\S* \(<5s\) +\d\S* \(<6s\) +\d+ of \d+`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if m := regexp.MustCompile(`process-crash .*`).FindString(out); m != "" {
		report(t, "demo %v %s", extra, m)
	}
}

// TestDemoStopsOnInterrupt: Ctrl-C (SIGINT) mid-run ends the demo with
// exit 0 and nothing it started left running.
func TestDemoStopsOnInterrupt(t *testing.T) {
	requireEnvoy(t)
	dir := t.TempDir()
	p := startProcess(t, "inferxds demo", binaries.inferxds, "demo", "--duration", "5m", "--dir", dir)
	err := poll(hangGuard, func() error {
		if p.hasExited() {
			return errExited
		}
		if !strings.Contains(p.output.String(), "inferxds demo  +") {
			return errors.New("no frame of the view yet")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("demo shows no view: %v\n%s", err, p.output.String())
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	awaitExit(t, p, hangGuard)
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("demo exited %d on SIGINT:\n%s", code, p.output.String())
	}
	assertNoProcessUnder(t, dir)
}
