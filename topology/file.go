package topology

import (
	"context"
	"os"

	"github.com/inferxds/inferxds/internal/fielderr"
	"github.com/inferxds/inferxds/internal/filewatch"
	"github.com/inferxds/inferxds/internal/yamlpos"
)

// The fleet file is a YAML Fleet: zones, nodes and instances, keys as in the
// yaml tags of the IR (telemetryAge, if present, is a Go duration string).

// LoadFile reads and validates a fleet file.
func LoadFile(path string) (*Fleet, error) {
	var p FleetParser
	return p.load(path)
}

// ParseFleet decodes a fleet file's contents strictly, fills defaults,
// validates and sorts it. The error lists every problem as
// name:line: field: message; name is only used in messages.
func ParseFleet(name string, data []byte) (*Fleet, error) {
	return parseFleet(name, data, yamlpos.Decode)
}

// FleetParser is ParseFleet for a file that is read again and again: it
// parses only the entries (zones, nodes, instances) whose text changed since
// its last parse. Its zero value is ready to use; it is safe for concurrent
// use.
type FleetParser struct {
	cache yamlpos.Cache
}

// Parse is ParseFleet, reusing what is unchanged since the last Parse.
func (p *FleetParser) Parse(name string, data []byte) (*Fleet, error) {
	return parseFleet(name, data, p.cache.Decode)
}

func (p *FleetParser) load(path string) (*Fleet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return p.Parse(path, data)
}

func parseFleet(name string, data []byte, decode func(string, []byte, any) (*yamlpos.Document, error)) (*Fleet, error) {
	var f Fleet
	doc, err := decode(name, data, &f)
	f.fillDefaults()
	if err := fielderr.Join(err, f.check(doc)); err != nil {
		return nil, err
	}
	f.Sort()
	return &f, nil
}

// WatchFile loads the fleet file, calls fn with the result, then does so
// again each time the file changes and settles (see filewatch.Watch;
// opts.Relevant is set here), until ctx ends. Editors' rename-over saves,
// Kubernetes ConfigMap updates and symlink swaps above the file are seen.
// fn gets either a fleet or the error; callers keep their last good fleet on
// error. WatchFile returns nil when ctx ends, or the error that prevented
// watching.
func WatchFile(ctx context.Context, path string, opts filewatch.Options, fn func(*Fleet, error)) error {
	var p FleetParser
	opts.Relevant = filewatch.FileOrConfigMap(path)
	return filewatch.Watch(ctx, path, opts, func() { fn(p.load(path)) })
}
