package drpolicy_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/internal/filewatch"
)

type loaded struct {
	policy *drpolicy.Policy
	err    error
}

// waitFor returns the first load that satisfies ok, failing after 5s.
func waitFor(t *testing.T, loads <-chan loaded, what string, ok func(loaded) bool) loaded {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case l := <-loads:
			if ok(l) {
				return l
			}
		case <-timeout:
			t.Fatalf("no load with %s within 5s", what)
		}
	}
}

func hotStandby(n int) func(loaded) bool {
	return func(l loaded) bool {
		if l.err != nil {
			return false
		}
		m, ok := l.policy.Model("a")
		return ok && m.HotStandby == n
	}
}

// replaceFile writes the way editors save: a new file renamed over the old.
func replaceFile(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp~"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestWatchReloadsEditsAndReportsBrokenOnes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	writeFiles(t, dir, map[string]string{"policy.yaml": "models:\n  - name: a\n    hotStandby: 1\n"})

	ctx, cancel := context.WithCancel(context.Background())
	loads := make(chan loaded, 16)
	done := make(chan error)
	go func() {
		done <- drpolicy.Watch(ctx, dir, filewatch.Options{Debounce: 20 * time.Millisecond}, func(p *drpolicy.Policy, err error) { loads <- loaded{p, err} })
	}()

	waitFor(t, loads, "the initial policy", hotStandby(1))
	if err := os.WriteFile(path, []byte("models:\n  - name: a\n    hotStandby: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, loads, "hotStandby 2 after an in-place write", hotStandby(2))

	replaceFile(t, path, "models:\n  - name: a\n    hotStandby: -1\n")
	broken := waitFor(t, loads, "an error after a broken edit", func(l loaded) bool { return l.err != nil })
	if want := path + ":3: models[0].hotStandby"; !strings.Contains(broken.err.Error(), want) {
		t.Errorf("error %v does not contain %q", broken.err, want)
	}

	replaceFile(t, path, "models:\n  - name: a\n    hotStandby: 3\n")
	waitFor(t, loads, "hotStandby 3 after the fix", hotStandby(3))

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch returned %v after cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after cancel")
	}
}

func TestWatchMissingDirectory(t *testing.T) {
	err := drpolicy.Watch(context.Background(), filepath.Join(t.TempDir(), "missing"), filewatch.Options{}, func(*drpolicy.Policy, error) {
		t.Error("callback called for a directory that cannot be watched")
	})
	if err == nil {
		t.Fatal("Watch on a missing directory returned nil")
	}
}
