// Package filewatch tells a source when the files it reads may have changed.
// It watches a directory, not single files, because editors save by writing a
// new file and renaming it over the old one, and Kubernetes updates a mounted
// ConfigMap by swapping its "..data" symlink: a watch on the file itself would
// miss both. It reports "look again", never what changed; reading is the
// caller's job.
package filewatch

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is the quiet time Watch waits for when given zero: long
// enough to coalesce one editor save (truncate, write, rename), short enough
// not to be noticed.
const DefaultDebounce = 50 * time.Millisecond

// Watch calls changed once the watch is in place, then again after each burst
// of events in dir that relevant accepts (nil accepts all), once the directory
// has been quiet for debounce. It returns nil when ctx ends, or the error that
// prevented watching. A lost event (queue overflow) also counts as a change.
func Watch(ctx context.Context, dir string, debounce time.Duration, relevant func(name string) bool, changed func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		return err
	}
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	changed()

	quiet := time.NewTimer(debounce)
	quiet.Stop()
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if relevant == nil || relevant(ev.Name) {
				quiet.Reset(debounce)
			}
		case _, ok := <-w.Errors:
			if !ok {
				return nil
			}
			quiet.Reset(debounce)
		case <-quiet.C:
			changed()
		}
	}
}

// FileOrConfigMap accepts events for the file named path and for the hidden
// "..data" entries Kubernetes swaps when a mounted ConfigMap changes.
func FileOrConfigMap(path string) func(name string) bool {
	base := filepath.Base(path)
	return func(name string) bool {
		b := filepath.Base(name)
		return b == base || strings.HasPrefix(b, "..")
	}
}
