package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binaries are the programs under test, built once by TestMain.
var binaries struct {
	inferxds string
	modelsim string
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "inferxds-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binaries.inferxds = filepath.Join(dir, "inferxds")
	binaries.modelsim = filepath.Join(dir, "modelsim")
	for out, pkg := range map[string]string{
		binaries.inferxds: "github.com/inferxds/inferxds/cmd/inferxds",
		binaries.modelsim: "github.com/inferxds/inferxds/cmd/modelsim",
	} {
		if err := build(out, pkg); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
	}
	return m.Run()
}

func build(out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
	}
	return nil
}
