package main

import (
	"strings"
	"testing"
)

// TestBadSettingsNameTheirVariableOrKey: a bad value from the environment
// or the config file is reported with the variable or key and the value.
func TestBadSettingsNameTheirVariableOrKey(t *testing.T) {
	t.Setenv("INFERXDS_DEBOUNCE", "soon")
	t.Setenv("INFERXDS_PPROF", "maybe")
	_, err := serveConfig(t, "viewGrace: forever\nmaxDelay: 2s\n")
	for _, want := range []string{
		`INFERXDS_DEBOUNCE="soon": not a duration`,
		`INFERXDS_PPROF="maybe": not a boolean`,
		`: viewGrace: "forever": not a duration`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to contain %s", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "maxDelay") {
		t.Errorf("a good setting is reported: %v", err)
	}
}

func TestFlagOverridesBadEnvironment(t *testing.T) {
	t.Setenv("INFERXDS_DEBOUNCE", "soon")
	if _, err := serveConfig(t, "", "--debounce", "50ms"); err != nil {
		t.Errorf("the flag should win over a bad INFERXDS_DEBOUNCE: %v", err)
	}
}
