package deploycheck

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/inferxds/inferxds/e2e/kubeenv"
)

// deployDir is the repository's deploy directory, seen from this package.
const deployDir = "../../deploy"

// inferxds is the control plane binary, built by TestMain.
var inferxds string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "inferxds-deploycheck-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploycheck:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	inferxds = filepath.Join(dir, "inferxds")
	if out, err := exec.Command("go", "build", "-o", inferxds, "github.com/inferxds/inferxds/cmd/inferxds").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "deploycheck: go build: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if summary := kubeenv.SkipSummary(); summary != "" {
		fmt.Println("deploycheck:", summary)
	}
	return code
}
