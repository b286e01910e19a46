package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology"
)

func newValidateCommand() *cobra.Command {
	var fleetFile string
	cmd := &cobra.Command{
		Use:   "validate DIR",
		Short: "Check a policy directory (and, with --fleet, what every zone would receive)",
		Long: "Prints nothing and exits 0 when valid; otherwise prints every problem " +
			"(file:line: field: message) to stderr and exits 1. With --fleet, what the fleet " +
			"and the policy disagree on (instances of models without policy, models without " +
			"instances) is printed as warnings, which do not change the exit status.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validate(cmd.ErrOrStderr(), args[0], fleetFile); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return errReported
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&fleetFile, "fleet", "", "fleet file; when given, every zone's resources are translated and checked too")
	return cmd
}

// validate reports the problems of the policy and the fleet together; it
// translates, and warns about what they disagree on, only when both load.
func validate(warnings io.Writer, policyDir, fleetFile string) error {
	pol, policyErr := drpolicy.Load(policyDir)
	if fleetFile == "" {
		return policyErr
	}
	fleet, fleetErr := topology.LoadFile(fleetFile)
	if err := errors.Join(policyErr, fleetErr); err != nil {
		return err
	}
	if _, err := io.WriteString(warnings, mismatchWarnings(fleet, pol)); err != nil {
		return err
	}
	return translateAll(fleet, pol)
}

// translateAll translates (and so validates) every group of the fleet.
func translateAll(fleet *topology.Fleet, pol *drpolicy.Policy) error {
	var errs []error
	for _, group := range groupsOf(fleet) {
		if _, err := snapshot.Translate(fleet, pol, group); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", groupLabel(group), err))
		}
	}
	return errors.Join(errs...)
}
