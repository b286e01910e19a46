// Package filewatch tells a source when the file or directory it reads has
// changed and settled. It watches directories, not single files, because
// editors save by renaming a new file over the old one and Kubernetes swaps
// a ConfigMap's "..data" symlink. It also watches every directory above the
// path and re-resolves symlinks after each event, so a directory replaced or
// a symlink swapped at any level (git-sync's root/current → .worktrees/<sha>)
// is followed; and it polls, so a change it was not told about is still
// seen. A file is read once it has settled, and a file that shrank to the
// start of what it was (emptied, or caught half-written) is held a while
// before it is reported. It reports "look again", never what changed; reading is the
// caller's job.
package filewatch

import (
	"bytes"
	"context"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Defaults for a zero Options field.
const (
	// DefaultDebounce is long enough to coalesce one editor save (truncate,
	// write, rename), short enough not to be noticed.
	DefaultDebounce = 50 * time.Millisecond
	DefaultMaxDelay = 500 * time.Millisecond
	DefaultPoll     = 2 * time.Second
	DefaultHold     = 5 * time.Second
)

// Options tune Watch.
type Options struct {
	// Debounce is the quiet time after the last event before the path is
	// looked at; it is read only once it has not changed over that time.
	Debounce time.Duration
	// MaxDelay bounds how long changes that keep coming wait; it wins over
	// Debounce.
	MaxDelay time.Duration
	// Poll is how often the path is looked at without an event.
	Poll time.Duration
	// Hold is how long a file that shrank to the start of what it was (as
	// a file caught half-written looks) must stay so before it is reported.
	Hold time.Duration
	// Relevant picks, in a watched directory, the entries that matter (nil:
	// all of them).
	Relevant func(name string) bool
	// Errors receives what keeps the watch from working (a directory that
	// cannot be watched); polling goes on meanwhile. Nil drops them.
	Errors func(error)
}

func (o Options) withDefaults() Options {
	if o.Debounce <= 0 {
		o.Debounce = DefaultDebounce
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = max(DefaultMaxDelay, o.Debounce)
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.Hold <= 0 {
		o.Hold = DefaultHold
	}
	if o.Relevant == nil {
		o.Relevant = func(string) bool { return true }
	}
	if o.Errors == nil {
		o.Errors = func(error) {}
	}
	return o
}

// Watch calls changed once the watch is in place, then again each time what
// path names (a file, or a directory's relevant entries) has changed and
// settled: after a burst of events, once nothing has changed for
// opts.Debounce, or after opts.MaxDelay while changes keep coming. It
// returns nil when ctx ends, or the error that prevented watching at all.
func Watch(ctx context.Context, path string, opts Options, changed func()) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer fw.Close()
	w := &watcher{path: filepath.Clean(path), isDir: info.IsDir(), opts: opts.withDefaults(), fs: fw, added: map[string]os.FileInfo{}}
	if err := fw.Add(w.dir()); err != nil {
		return fmt.Errorf("watch %s: %w", w.dir(), err)
	}
	w.rewatch()
	w.delivered, w.last = w.read()
	changed()
	return w.loop(ctx, changed)
}

type watcher struct {
	path  string
	isDir bool
	opts  Options
	fs    *fsnotify.Watcher
	added map[string]os.FileInfo // watched directory → the directory it was

	delivered uint64            // fingerprint of what changed last reported
	last      map[string][]byte // and the files' contents then
	held      uint64            // fingerprint of a truncated state on hold
	failing   string            // the watch error last reported
	errored   bool              // an error was reported since the last delivery
}

// dir is the directory whose entries hold what path names.
func (w *watcher) dir() string {
	if w.isDir {
		return w.path
	}
	return filepath.Dir(w.path)
}

func (w *watcher) loop(ctx context.Context, changed func()) error {
	quiet := newStoppedTimer()
	deadline := newStoppedTimer()
	defer quiet.Stop()
	defer deadline.Stop()
	poll := time.NewTicker(w.opts.Poll)
	defer poll.Stop()
	pending, settling := false, uint64(0)
	start := func() {
		if !pending {
			pending = true
			deadline.Reset(w.opts.MaxDelay)
		}
		settling = w.fingerprint()
		quiet.Reset(w.opts.Debounce)
	}
	hold := newStoppedTimer()
	defer hold.Stop()
	deliver := func(release bool) {
		quiet.Stop()
		deadline.Stop()
		pending = false
		w.rewatch()
		fp, files := w.read()
		if fp == w.delivered {
			// Back as it was, or watchable again: say so, so that the
			// reader's load clears the error it was told.
			if w.held != 0 || (w.errored && w.failing == "") {
				w.held, w.errored = 0, false
				hold.Stop()
				changed()
			}
			return
		}
		if file := truncated(w.last, files); file != "" && !(release && fp == w.held) {
			if fp != w.held {
				w.held = fp
				hold.Reset(w.opts.Hold)
				w.report(fmt.Errorf("%s shrank to the start of its last version, as a file caught half-written does; holding it for %v", file, w.opts.Hold))
			}
			return
		}
		w.delivered, w.last, w.held, w.errored = fp, files, 0, false
		changed()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.fs.Events:
			if !ok {
				return nil
			}
			if w.concerns(ev.Name) {
				start()
			}
		case err, ok := <-w.fs.Errors:
			if !ok {
				return nil
			}
			w.report(fmt.Errorf("watching %s: %w", w.path, err))
			start()
		case <-poll.C:
			if fp, _ := w.read(); !pending && fp != w.delivered && fp != w.held {
				start()
			}
			if w.rewatch() {
				start() // recovered: deliver, so the error is cleared
			}
		case <-hold.C:
			deliver(true)
		case <-quiet.C:
			if fp := w.fingerprint(); fp != settling {
				settling = fp // still being written: wait for it to settle
				quiet.Reset(w.opts.Debounce)
				continue
			}
			deliver(false)
		case <-deadline.C:
			deliver(false)
		}
	}
}

func newStoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// concerns says whether an event is about the path: a relevant entry of its
// directory, or a directory or symlink on the way to it.
func (w *watcher) concerns(name string) bool {
	if strings.HasPrefix(w.path+string(filepath.Separator), name+string(filepath.Separator)) {
		return true
	}
	return filepath.Dir(name) == w.dir() && w.opts.Relevant(filepath.Base(name))
}

// rewatch watches the path's directory and every directory above it, again
// wherever a symlink on the way now resolves elsewhere. It reports, once,
// when the path's own directory cannot be watched, and says when it can be
// again; directories above it are watched where they can be, and polling
// covers the rest.
func (w *watcher) rewatch() (recovered bool) {
	var failure error
	for _, dir := range w.watchDirs() {
		if err := w.watchDir(dir); err != nil && dir == w.dir() {
			failure = err
		}
	}
	switch {
	case failure == nil:
		recovered = w.failing != ""
		w.failing = ""
	case failure.Error() != w.failing:
		w.failing = failure.Error()
		w.report(fmt.Errorf("%w; polling every %v", failure, w.opts.Poll))
	}
	return recovered
}

// report hands err to Options.Errors and remembers, so that the next
// delivery clears it even when the files did not change.
func (w *watcher) report(err error) {
	w.errored = true
	w.opts.Errors(err)
}

func (w *watcher) watchDir(dir string) error {
	now, err := os.Stat(dir)
	if err != nil {
		delete(w.added, dir)
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	if was, ok := w.added[dir]; ok && os.SameFile(was, now) {
		return nil
	}
	_ = w.fs.Remove(dir) // the old target, if any; it may be gone
	if err := w.fs.Add(dir); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	w.added[dir] = now
	return nil
}

// watchDirs are the path's directory and its ancestors, up to and not
// including the file system root.
func (w *watcher) watchDirs() []string {
	var dirs []string
	for dir := w.dir(); ; dir = filepath.Dir(dir) {
		if parent := filepath.Dir(dir); parent == dir {
			return dirs
		}
		dirs = append(dirs, dir)
	}
}

var seed = maphash.MakeSeed()

// fingerprint sums what the path resolves to and, for each relevant file,
// its size and modification time: cheap, to tell whether writing goes on.
func (w *watcher) fingerprint() uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	resolved, _ := filepath.EvalSymlinks(w.path)
	h.WriteString(resolved)
	for _, file := range w.files() {
		if info, err := os.Stat(file); err == nil {
			fmt.Fprintf(&h, "\x00%s %d %d", file, info.Size(), info.ModTime().UnixNano())
		}
	}
	return h.Sum64()
}

// read returns the relevant files' contents and a fingerprint of them and
// of what the path resolves to. Unreadable files count as absent.
func (w *watcher) read() (uint64, map[string][]byte) {
	var h maphash.Hash
	h.SetSeed(seed)
	resolved, _ := filepath.EvalSymlinks(w.path)
	h.WriteString(resolved)
	files := make(map[string][]byte)
	for _, file := range w.files() {
		data, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		files[file] = data
		fmt.Fprintf(&h, "\x00%s %d\x00", file, len(data))
		h.Write(data)
	}
	return h.Sum64(), files
}

// truncated names a file whose content is now a proper start of what it
// was; "" when there is none.
func truncated(before, after map[string][]byte) string {
	for file, now := range after {
		was, ok := before[file]
		if ok && len(now) < len(was) && bytes.HasPrefix(was, now) {
			return file
		}
	}
	return ""
}

// files are the path itself, or a directory's relevant regular files.
func (w *watcher) files() []string {
	entries, err := os.ReadDir(w.path)
	if err != nil {
		return []string{w.path}
	}
	var files []string
	for _, e := range entries {
		if name := e.Name(); w.opts.Relevant(name) && !strings.HasPrefix(name, "..") {
			files = append(files, filepath.Join(w.path, name))
		}
	}
	slices.Sort(files)
	return files
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
