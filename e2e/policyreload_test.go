package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

var onlyLlamaPolicy = llamaPolicy("")

const brokenRTO = `rto: "ten seconds"`

// TestPolicyEditHotReload: a broken policy edit is reported (serve's log and
// /status name the file, line and field) while clients keep the last good
// config; the next valid edit, adding a model, becomes routable (how soon is
// reported, not asserted: the machine's load sets it).
func TestPolicyEditHotReload(t *testing.T) {
	llama := startModelSim(t, "llama-a", "llama-2-7b")
	mistral := startModelSim(t, "mistral-a", "mistral-7b")
	cp := startControlPlane(t, onlyLlamaPolicy, fleetOf(llama.grpcInstance(t), mistral.grpcInstance(t)))
	client := dialXDS(t, cp, "az-1")
	client.waitRoutable(t, "llama-2-7b", hangGuard)
	if _, err := client.call(context.Background(), "mistral-7b"); err == nil {
		t.Fatalf("mistral-7b is routable before the policy names it")
	}

	broken := strings.Replace(onlyLlamaPolicy, `rto: "10s"`, brokenRTO, 1)
	cp.writePolicy(t, broken)
	reportedIn, logged := waitErrorReported(t, cp, fmt.Sprintf("models.yaml:%d", lineOf(broken, brokenRTO)), "rto")
	report(t, "policy-reload broken-edit-reported=%v", reportedIn.Round(time.Millisecond))
	t.Logf("serve logged: %s", logged)
	for i := range 20 {
		if id, err := client.call(context.Background(), "llama-2-7b"); err != nil || id != llama.id {
			t.Fatalf("call %d after the broken edit: answered by %q, err %v; want %s (last good config)", i, id, err, llama.id)
		}
	}

	editedAt := time.Now()
	cp.writePolicy(t, twoModelPolicy)
	client.waitRoutable(t, "mistral-7b", hangGuard)
	effective := time.Since(editedAt)
	report(t, "policy-reload edit-to-effective=%v (new model routable)", effective.Round(time.Millisecond))
	if id, err := client.call(context.Background(), "mistral-7b"); err != nil || id != mistral.id {
		t.Errorf("mistral-7b answered by %q, err %v; want %s", id, err, mistral.id)
	}
	if status := cp.status(t); strings.Contains(status, "ten seconds") {
		t.Errorf("/status still reports the fixed error after the valid edit:\n%s", status)
	}
}

// waitErrorReported waits until serve's log and /status both show an error
// naming location and field, and returns how long that took and the log line.
func waitErrorReported(t *testing.T, cp *controlPlane, location, field string) (time.Duration, string) {
	t.Helper()
	start := time.Now()
	var line string
	err := poll(hangGuard, func() error {
		var found bool
		if line, found = logLine(cp.proc.output.String(), location, field); !found {
			return fmt.Errorf("no log line names %q and %q", location, field)
		}
		if status := cp.status(t); !strings.Contains(status, location) || !strings.Contains(status, field) {
			return fmt.Errorf("/status does not name %q and %q:\n%s", location, field, status)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("broken edit not reported: %v", err)
	}
	return time.Since(start), line
}

// logLine returns the first line of log that contains every part.
func logLine(log string, parts ...string) (string, bool) {
	for line := range strings.Lines(log) {
		if containsAll(line, parts...) {
			return strings.TrimSpace(line), true
		}
	}
	return "", false
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// lineOf is the 1-based line of text that contains needle.
func lineOf(text, needle string) int {
	i := strings.Index(text, needle)
	if i < 0 {
		panic("lineOf: " + needle + " not in text")
	}
	return strings.Count(text[:i], "\n") + 1
}
