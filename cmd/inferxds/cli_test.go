package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inferxds/inferxds/deploy"
)

// cliResult is what one in-process run of the command line produced.
type cliResult struct {
	stdout, stderr string
	code           int
}

func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := execute(context.Background(), args, &stdout, &stderr)
	return cliResult{stdout.String(), stderr.String(), code}
}

// copyExamples writes the embedded example policy directory and fleet to a
// temporary directory and returns their paths.
func copyExamples(t *testing.T) (policyDir, fleetFile string) {
	t.Helper()
	dir := t.TempDir()
	examples, err := fs.Sub(deploy.Examples, "examples")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dir, examples); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "policy"), filepath.Join(dir, "fleet.yaml")
}

// editFile replaces old with new in path, as an editor would save it.
func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	edited := strings.Replace(string(data), old, new, 1)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// lineOf is the 1-based line of path that contains needle.
func lineOf(t *testing.T, path, needle string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(data), needle)
	if i < 0 {
		t.Fatalf("%s does not contain %q", path, needle)
	}
	return strings.Count(string(data[:i]), "\n") + 1
}
