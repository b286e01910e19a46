package filewatch_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferxds/inferxds/internal/filewatch"
)

// watchFile runs Watch on path and sends the file's content to the
// returned channel at every reported change.
func watchFile(t *testing.T, path string, debounce time.Duration) <-chan string {
	t.Helper()
	return watch(t, path, filewatch.Options{Debounce: debounce, Relevant: filewatch.FileOrConfigMap(path), Poll: time.Hour}, path)
}

// watch runs Watch on path and sends the content of read at every reported
// change.
func watch(t *testing.T, path string, opts filewatch.Options, read string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	seen := make(chan string, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := filewatch.Watch(ctx, path, opts, func() {
			data, _ := os.ReadFile(read)
			seen <- string(data)
		})
		if err != nil {
			t.Errorf("Watch: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return seen
}

// waitContent waits for a change that shows want, returning how many
// changes were reported up to and including it.
func waitContent(t *testing.T, seen <-chan string, want string) int {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for n := 1; ; n++ {
		select {
		case got := <-seen:
			if got == want {
				return n
			}
		case <-timeout:
			t.Fatalf("content %q not seen within 30s", want)
		}
	}
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRenameOverFileIsSeen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fleet.yaml")
	write(t, path, "v1")
	seen := watchFile(t, path, 10*time.Millisecond)
	waitContent(t, seen, "v1")

	write(t, path+".swp", "v2")
	if err := os.Rename(path+".swp", path); err != nil {
		t.Fatal(err)
	}
	waitContent(t, seen, "v2")
}

// Kubernetes mounts a ConfigMap as name -> ..data/name, with ..data a
// symlink to a timestamped directory that it swaps atomically on update.
func TestConfigMapSymlinkSwapIsSeen(t *testing.T) {
	dir := t.TempDir()
	publish := func(version, body string) {
		mustDo(t, os.Mkdir(filepath.Join(dir, version), 0o755))
		write(t, filepath.Join(dir, version, "fleet.yaml"), body)
		mustDo(t, os.Symlink(version, filepath.Join(dir, "..data_tmp")))
		mustDo(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	}
	publish("..2024_01", "v1")
	path := filepath.Join(dir, "fleet.yaml")
	mustDo(t, os.Symlink(filepath.Join("..data", "fleet.yaml"), path))

	seen := watchFile(t, path, 10*time.Millisecond)
	waitContent(t, seen, "v1")
	publish("..2024_02", "v2")
	mustDo(t, os.RemoveAll(filepath.Join(dir, "..2024_01")))
	waitContent(t, seen, "v2")
}

func TestBurstOfWritesIsCoalesced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fleet.yaml")
	write(t, path, "start")
	// A debounce far above the time between two writes: only a stall of
	// over a second between most of them could keep them apart.
	seen := watchFile(t, path, time.Second)
	waitContent(t, seen, "start")

	const writes = 20
	for i := range writes {
		write(t, path, string(rune('a'+i)))
	}
	if n := waitContent(t, seen, string(rune('a'+writes-1))); n >= writes/2 {
		t.Errorf("%d writes within the debounce reported %d changes; want them coalesced", writes, n)
	}
}

func TestOtherFilesAreIgnored(t *testing.T) {
	relevant := filewatch.FileOrConfigMap("/etc/inferxds/fleet.yaml")
	for name, want := range map[string]bool{
		"/etc/inferxds/fleet.yaml":     true,
		"/etc/inferxds/..data":         true,
		"/etc/inferxds/..data_tmp":     true,
		"/etc/inferxds/other.yaml":     false,
		"/etc/inferxds/fleet.yaml.swp": false,
	} {
		if got := relevant(name); got != want {
			t.Errorf("relevant(%q) = %v, want %v", name, got, want)
		}
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A directory replaced by another of the same name (mv new dir) is followed:
// both the replacement and later edits in it are seen.
func TestReplacedDirectoryIsFollowed(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "policy")
	mustDo(t, os.Mkdir(dir, 0o755))
	write(t, filepath.Join(dir, "p.yaml"), "v1")
	seen := watch(t, dir, filewatch.Options{Debounce: 10 * time.Millisecond, Poll: time.Hour}, filepath.Join(dir, "p.yaml"))
	waitContent(t, seen, "v1")

	next := filepath.Join(root, "policy.new")
	mustDo(t, os.Mkdir(next, 0o755))
	write(t, filepath.Join(next, "p.yaml"), "v2")
	mustDo(t, os.Rename(dir, filepath.Join(root, "policy.old")))
	mustDo(t, os.Rename(next, dir))
	waitContent(t, seen, "v2")
	write(t, filepath.Join(dir, "p.yaml"), "v3")
	waitContent(t, seen, "v3")
}

// git-sync publishes a checkout as root/current -> .worktrees/<sha>, swapped
// by renaming a new symlink over the old: the watch follows the swap of a
// symlink above the watched directory, and edits in the new target.
func TestGitSyncSymlinkSwapIsFollowed(t *testing.T) {
	root := t.TempDir()
	publish := func(sha, body string) {
		t.Helper()
		mustDo(t, os.MkdirAll(filepath.Join(root, ".worktrees", sha, "policy"), 0o755))
		write(t, filepath.Join(root, ".worktrees", sha, "policy", "p.yaml"), body)
		mustDo(t, os.Symlink(filepath.Join(".worktrees", sha), filepath.Join(root, "current.tmp")))
		mustDo(t, os.Rename(filepath.Join(root, "current.tmp"), filepath.Join(root, "current")))
	}
	publish("aaa", "v1")
	file := filepath.Join(root, "current", "policy", "p.yaml")
	seen := watch(t, filepath.Join(root, "current", "policy"), filewatch.Options{Debounce: 10 * time.Millisecond, Poll: time.Hour}, file)
	waitContent(t, seen, "v1")

	publish("bbb", "v2")
	mustDo(t, os.RemoveAll(filepath.Join(root, ".worktrees", "aaa")))
	waitContent(t, seen, "v2")
	write(t, filepath.Join(root, ".worktrees", "bbb", "policy", "p.yaml"), "v3")
	waitContent(t, seen, "v3")
	publish("ccc", "v4")
	waitContent(t, seen, "v4")
}

// Writes that never pause for a debounce are still applied: a change is
// reported while they go on, once MaxDelay has passed.
func TestContinuousWritesAreAppliedWithinMaxDelay(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fleet.yaml")
	write(t, path, "start")
	seen := watch(t, path, filewatch.Options{Debounce: time.Second, MaxDelay: 100 * time.Millisecond, Poll: time.Hour}, path)
	waitContent(t, seen, "start")
	for i := range 3000 { // 10 ms apart: the 1 s debounce never passes quietly
		write(t, path, fmt.Sprintf("write %d", i))
		select {
		case got := <-seen:
			t.Logf("applied %q during writes (write %d)", got, i)
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("3000 writes 10 ms apart never applied; max delay is not honoured")
}

// A watched directory that disappears is reported, and the watch recovers
// (by polling) once it is back.
func TestVanishedDirectoryIsReportedAndRecovered(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "policy")
	mustDo(t, os.Mkdir(dir, 0o755))
	write(t, filepath.Join(dir, "p.yaml"), "v1")
	errs := make(chan error, 64)
	opts := filewatch.Options{
		Debounce: 10 * time.Millisecond, Poll: 20 * time.Millisecond,
		Errors: func(err error) {
			select {
			case errs <- err:
			default:
			}
		},
	}
	seen := watch(t, dir, opts, filepath.Join(dir, "p.yaml"))
	waitContent(t, seen, "v1")

	mustDo(t, os.RemoveAll(dir))
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), dir) {
			t.Errorf("error %v does not name %s", err, dir)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no error reported within 30s for a vanished directory")
	}
	mustDo(t, os.Mkdir(dir, 0o755))
	write(t, filepath.Join(dir, "p.yaml"), "v2")
	waitContent(t, seen, "v2")
}

// A file that shrinks to the start of what it was is what a reader sees
// while the file is rewritten: it is held (and said so), not reported, and
// reported only if it stays so for Hold.
func TestTruncatedFileIsHeld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fleet.yaml")
	write(t, path, "a\nb\nc\n")
	held := make(chan error, 64)
	opts := filewatch.Options{Debounce: 10 * time.Millisecond, Poll: time.Hour, Hold: time.Hour, Errors: func(err error) { held <- err }}
	seen := watch(t, path, opts, path)
	waitContent(t, seen, "a\nb\nc\n")

	for _, prefix := range []string{"a\nb\n", "", "a\nb\nc"} {
		write(t, path, prefix)
		select {
		case err := <-held:
			if !strings.Contains(err.Error(), "shrank") {
				t.Fatalf("report %v does not say the file shrank", err)
			}
		case got := <-seen:
			t.Fatalf("prefix %q reported as %q", prefix, got)
		case <-time.After(30 * time.Second):
			t.Fatalf("prefix %q neither held nor reported within 30s", prefix)
		}
	}
	write(t, path, "a\nb\nc\nd\n")
	if n := waitContent(t, seen, "a\nb\nc\nd\n"); n != 1 {
		t.Fatalf("the grown file came after %d other reports; want none in between", n-1)
	}
}

func TestTruncatedFileIsReportedAfterHold(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fleet.yaml")
	write(t, path, "a\nb\n")
	seen := watch(t, path, filewatch.Options{Debounce: 10 * time.Millisecond, Poll: time.Hour, Hold: 50 * time.Millisecond}, path)
	waitContent(t, seen, "a\nb\n")
	write(t, path, "a\n")
	waitContent(t, seen, "a\n")
}
