package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// errReported means the command already told the user what went wrong; it
// only sets the exit status.
var errReported = errors.New("failed")

// exitStatus ends the process with this status; the command already told
// the user why.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// run executes the command line and returns the process exit status. SIGINT
// and SIGTERM cancel the command's context.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return execute(ctx, args, stdout, stderr)
}

// execute runs the command line until it is done or ctx ends.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var status exitStatus
	if errors.As(err, &status) {
		return int(status)
	}
	if !errors.Is(err, errReported) {
		fmt.Fprintln(stderr, "inferxds:", err)
	}
	return 1
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "inferxds",
		Short:         "Envoy xDS control plane for multi-model LLM inference on shared GPUs",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildVersion(),
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newServeCommand(),
		newValidateCommand(),
		newPlanCommand(),
		newBootstrapCommand(),
		newDumpCommand(),
		newStatusCommand(),
		newFailbackCommand(),
		newModelsimCommand(),
		newDemoCommand(),
		newDrillCommand(),
	)
	return root
}
