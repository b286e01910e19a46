package e2e

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/inferxds/inferxds/e2e/kubeenv"
	"github.com/inferxds/inferxds/internal/testbin"
)

// envoyVersion is the Envoy release the project is tested against (the
// Makefile's ENVOY_VERSION).
const envoyVersion = "1.40.0"

// envoySkips counts Envoy tests skipped on request, for the summary.
var envoySkips atomic.Int64

// binaries are the programs under test, built once by TestMain.
var binaries struct {
	inferxds string
	modelsim string
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	bins, remove, err := testbin.BuildAll("inferxds-e2e-bin-",
		"github.com/inferxds/inferxds/cmd/inferxds", "github.com/inferxds/inferxds/cmd/modelsim")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer remove()
	binaries.inferxds, binaries.modelsim = bins[0], bins[1]
	code := m.Run()
	if n := envoySkips.Load(); n > 0 {
		fmt.Printf("e2e: SKIPPED %d Envoy tests (INFERXDS_SKIP_ENVOY=1): the data path through Envoy was not tested\n", n)
	}
	if summary := kubeenv.SkipSummary(); summary != "" {
		fmt.Println("e2e:", summary)
	}
	return code
}
