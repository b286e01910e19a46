// Package testbin builds the repository's commands for tests that run them
// as child processes, the way a user runs them. It is for tests only.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
)

// Build compiles the main package pkg (an import path) into dir, as an
// executable named after the path's last element, and returns its path.
func Build(dir, pkg string) (string, error) {
	bin := filepath.Join(dir, path.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// BuildAll compiles each of pkgs into a fresh temporary directory whose name
// starts with prefix, as TestMain does once for a package's tests. It
// returns the executables' paths in pkgs' order and a function that removes
// them.
func BuildAll(prefix string, pkgs ...string) (bins []string, remove func(), err error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, nil, err
	}
	remove = func() { _ = os.RemoveAll(dir) }
	for _, pkg := range pkgs {
		bin, err := Build(dir, pkg)
		if err != nil {
			remove()
			return nil, nil, err
		}
		bins = append(bins, bin)
	}
	return bins, remove, nil
}
