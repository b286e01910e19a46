package filewatch_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/inferxds/inferxds/internal/filewatch"
)

// watchFile runs Watch on path's directory and sends the file's content to
// the returned channel at every reported change.
func watchFile(t *testing.T, path string, debounce time.Duration) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	seen := make(chan string, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := filewatch.Watch(ctx, filepath.Dir(path), debounce, filewatch.FileOrConfigMap(path), func() {
			data, _ := os.ReadFile(path)
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
	timeout := time.After(5 * time.Second)
	for n := 1; ; n++ {
		select {
		case got := <-seen:
			if got == want {
				return n
			}
		case <-timeout:
			t.Fatalf("content %q not seen within 5s", want)
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
	mustDo := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	publish := func(version, body string) {
		mustDo(os.Mkdir(filepath.Join(dir, version), 0o755))
		write(t, filepath.Join(dir, version, "fleet.yaml"), body)
		mustDo(os.Symlink(version, filepath.Join(dir, "..data_tmp")))
		mustDo(os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	}
	publish("..2024_01", "v1")
	path := filepath.Join(dir, "fleet.yaml")
	mustDo(os.Symlink(filepath.Join("..data", "fleet.yaml"), path))

	seen := watchFile(t, path, 10*time.Millisecond)
	waitContent(t, seen, "v1")
	publish("..2024_02", "v2")
	mustDo(os.RemoveAll(filepath.Join(dir, "..2024_01")))
	waitContent(t, seen, "v2")
}

func TestBurstOfWritesIsCoalesced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fleet.yaml")
	write(t, path, "start")
	seen := watchFile(t, path, 200*time.Millisecond)
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
