package local

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/inferxds/inferxds/internal/testbin"
	"github.com/inferxds/inferxds/topology"
)

// modelsimBin is the model server the tests run, built once by TestMain.
var modelsimBin string

// With these set, the test binary is the parent process of
// TestChildrenDieWithTheirParent: it launches one instance of the modelsim
// at modelsimEnv with its files in parentDirEnv, prints the instance's
// pid and waits to be killed.
const (
	parentDirEnv = "INFERXDS_LOCAL_TEST_PARENT_DIR"
	modelsimEnv  = "INFERXDS_LOCAL_TEST_MODELSIM"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(parentDirEnv); dir != "" {
		os.Exit(runParent(os.Getenv(modelsimEnv), dir))
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	bins, remove, err := testbin.BuildAll("inferxds-local-bin-", "github.com/inferxds/inferxds/cmd/modelsim")
	if err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		return 1
	}
	defer remove()
	modelsimBin = bins[0]
	return m.Run()
}

func runParent(bin, dir string) int {
	a, err := New(Config{Command: []string{bin}, Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	port, err := freePort()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	fleet := &topology.Fleet{Instances: []topology.Instance{{Name: "orphan", Model: "llm", Address: loopback, Port: port, Tier: topology.TierHot}}}
	if err := a.Launch(ctx, fleet); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(a.Instances()[0].PID)
	time.Sleep(hangGuard)
	return 1
}
