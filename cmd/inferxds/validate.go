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
	cmd := &cobra.Command{
		Use:   "validate [DIR] [--policy-dir DIR] [--fleet FILE]",
		Short: "Check a policy directory (and, with --fleet, what every zone would receive)",
		Long: "Prints nothing and exits 0 when valid; otherwise prints every problem " +
			"(file:line: field: message) to stderr and exits 1. The policy directory is DIR " +
			"or --policy-dir (also from --config or INFERXDS_POLICY_DIR). With --fleet, what " +
			"the fleet and the policy disagree on (instances of models without policy, models " +
			"without instances) is printed as warnings, which do not change the exit status.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd.Flags())
			if err != nil {
				return err
			}
			dir, err := policyDirArg(cfg.PolicyDir, args)
			if err != nil {
				return err
			}
			if err := validate(cmd.ErrOrStderr(), dir, cfg.Fleet); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return errReported
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.String("policy-dir", "", "policy directory to check (or give it as DIR)")
	f.String("fleet", "", "fleet file; when given, every zone's resources are translated and checked too")
	addConfigFlag(f)
	return cmd
}

// policyDirArg is the one policy directory validate was given, as DIR or
// through --policy-dir and its config/environment forms.
func policyDirArg(fromSettings string, args []string) (string, error) {
	switch {
	case len(args) == 0 && fromSettings == "":
		return "", errors.New("validate needs a policy directory: give DIR or --policy-dir")
	case len(args) == 0:
		return fromSettings, nil
	case fromSettings != "" && fromSettings != args[0]:
		return "", fmt.Errorf("two policy directories: DIR %q and --policy-dir %q; give one", args[0], fromSettings)
	default:
		return args[0], nil
	}
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
