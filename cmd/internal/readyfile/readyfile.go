// Package readyfile writes the --ready-file of the project's binaries: a
// JSON document that tells a supervisor or a test where a process listens,
// written so that a reader sees all of it or nothing.
package readyfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Write marshals v as JSON into path through a temporary file in the same
// directory and a rename. An empty path writes nothing.
func Write(path string, v any) error {
	if path == "" {
		return nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("ready file %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("ready file %s: %w", path, err)
	}
	_, err = tmp.Write(append(data, '\n'))
	if err = errors.Join(err, tmp.Close()); err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("ready file %s: %w", path, errors.Join(err, os.Remove(tmp.Name())))
	}
	return nil
}
