package topology

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/inferxds/inferxds/internal/filewatch"
	"github.com/inferxds/inferxds/internal/yamlpos"
)

// The fleet file is a YAML Fleet: zones, nodes and instances, keys as in the
// yaml tags of the IR (telemetryAge, if present, is a Go duration string).

// LoadFile reads and validates a fleet file.
func LoadFile(path string) (*Fleet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseFleet(path, data)
}

// ParseFleet decodes a fleet file's contents strictly, fills defaults,
// validates and sorts it. The error lists every problem as
// name:line: field: message; name is only used in messages.
func ParseFleet(name string, data []byte) (*Fleet, error) {
	var f Fleet
	doc, err := yamlpos.Decode(name, data, &f)
	f.fillDefaults()
	if err := errors.Join(err, f.check(doc)); err != nil {
		return nil, err
	}
	f.Sort()
	return &f, nil
}

// WatchFile loads the fleet file, calls fn with the result, then does so
// again each time the file changes (debounce 0 means
// filewatch.DefaultDebounce), until ctx ends. Editors' rename-over saves and
// Kubernetes ConfigMap updates are seen. fn gets either a fleet or the error;
// callers keep their last good fleet on error. WatchFile returns nil when ctx
// ends, or the error that prevented watching.
func WatchFile(ctx context.Context, path string, debounce time.Duration, fn func(*Fleet, error)) error {
	return filewatch.Watch(ctx, filepath.Dir(path), debounce, filewatch.FileOrConfigMap(path), func() { fn(LoadFile(path)) })
}
