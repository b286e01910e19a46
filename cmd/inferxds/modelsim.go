package main

import (
	"github.com/spf13/cobra"

	"github.com/inferxds/inferxds/cmd/modelsim/app"
)

// newModelsimCommand runs the model-server simulator, flags and exit status
// as the modelsim binary's, so one inferxds binary can start a local fleet
// of instances.
func newModelsimCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "modelsim [modelsim flags]",
		Short:              "Run one model-server simulator instance (the modelsim command)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := app.Run(cmd.Context(), args, cmd.ErrOrStderr()); code != 0 {
				return exitStatus(code)
			}
			return nil
		},
	}
}
