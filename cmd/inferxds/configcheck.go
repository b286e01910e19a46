package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// checkSettings parses each setting given by an INFERXDS_* variable or the
// config file (at path) as its flag's type, so that a bad value is
// reported with the variable or file key that holds it and the value.
// Flags given on the command line were parsed already.
func checkSettings(v *viper.Viper, flags *pflag.FlagSet, path string) error {
	var errs []error
	for _, s := range settings {
		f := flags.Lookup(s.flag)
		if f == nil || f.Changed {
			continue
		}
		if value, ok := os.LookupEnv(envName(s.flag)); ok {
			if err := parseAs(f.Value.Type(), value); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName(s.flag), value, err))
			}
			continue
		}
		if value, ok := v.Get(s.key).(string); ok && v.InConfig(s.key) {
			if err := parseAs(f.Value.Type(), value); err != nil {
				errs = append(errs, fmt.Errorf("config file %s: %s: %q: %w", path, s.key, value, err))
			}
		}
	}
	return errors.Join(errs...)
}

// parseAs checks a text value for a flag of type typ ("duration", "bool";
// strings are always fine).
func parseAs(typ, value string) error {
	switch typ {
	case "duration":
		if _, err := time.ParseDuration(value); err != nil {
			return errors.New("not a duration (e.g. 250ms, 30s, 5m)")
		}
	case "bool":
		if _, err := strconv.ParseBool(value); err != nil {
			return errors.New("not a boolean (true or false)")
		}
	}
	return nil
}
