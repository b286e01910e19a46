package deploycheck

import (
	"fmt"
	"os"
	"testing"

	"github.com/inferxds/inferxds/e2e/kubeenv"
	"github.com/inferxds/inferxds/internal/testbin"
)

// deployDir is the repository's deploy directory, seen from this package.
const deployDir = "../../deploy"

// inferxds is the control plane binary, built by TestMain.
var inferxds string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	bins, remove, err := testbin.BuildAll("inferxds-deploycheck-", "github.com/inferxds/inferxds/cmd/inferxds")
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploycheck:", err)
		return 1
	}
	defer remove()
	inferxds = bins[0]
	code := m.Run()
	if summary := kubeenv.SkipSummary(); summary != "" {
		fmt.Println("deploycheck:", summary)
	}
	return code
}
