package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inferxds/inferxds/internal/testlog"
)

// Bounds on every wait, so a broken binary fails a test instead of hanging it.
const (
	readyTimeout = 15 * time.Second
	// hangGuard bounds waits for an event that takes well under a second on
	// an idle machine; it only turns a hang into a failure.
	hangGuard    = 30 * time.Second
	stopTimeout  = 5 * time.Second
	pollInterval = 10 * time.Millisecond
)

// process is a child program whose combined output is kept for assertions
// and for the failure log.
type process struct {
	name   string
	cmd    *exec.Cmd
	output *testlog.Buffer
	exited chan struct{}
}

// startProcess runs bin in a fresh directory with the INFERXDS_* environment
// cleared, and stops it when the test ends.
func startProcess(t testing.TB, name, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, output: &testlog.Buffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = t.TempDir()
	p.cmd.Env = hermeticEnv()
	p.cmd.Stdout = p.output
	p.cmd.Stderr = p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

func hermeticEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INFERXDS_") {
			env = append(env, kv)
		}
	}
	return env
}

// stop asks the process to exit, kills it if it does not within stopTimeout,
// and logs its output when the test failed.
func (p *process) stop(t testing.TB) {
	if !p.hasExited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(stopTimeout):
			p.kill(t)
		}
	}
	if t.Failed() {
		t.Logf("--- output of %s:\n%s", p.name, p.output.String())
	}
}

// kill sends SIGKILL and waits until the process is gone.
func (p *process) kill(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Kill()
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		t.Errorf("%s did not exit %v after SIGKILL", p.name, stopTimeout)
	}
}

func (p *process) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// readReadyFile waits until path holds a JSON document that decodes into v.
func (p *process) readReadyFile(t testing.TB, path string, v any) {
	t.Helper()
	err := poll(readyTimeout, func() error {
		if p.hasExited() {
			return errExited
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return json.Unmarshal(data, v)
	})
	if err != nil {
		t.Fatalf("%s not ready (%s): %v\n%s", p.name, path, err, p.output.String())
	}
}

var errExited = fmt.Errorf("process exited")

// poll calls check until it returns nil, errExited, or timeout passes, and
// returns the last error.
func poll(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil || err == errExited || time.Now().After(deadline) {
			return err
		}
		time.Sleep(pollInterval)
	}
}

// writeFileAtomic replaces path the way an editor or a config sync does:
// write a sibling temp file, then rename it over the original.
func writeFileAtomic(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmp.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
}

// report logs a measurement in the test log and as a greppable "e2e:" line
// on stdout, so CI output shows it with -v.
func report(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	fmt.Printf("e2e: %s\n", line)
}
