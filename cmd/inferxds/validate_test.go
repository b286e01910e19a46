package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateAcceptsTheExamplesSilently(t *testing.T) {
	policyDir, fleetFile := copyExamples(t)
	configFile := filepath.Join(t.TempDir(), "inferxds.yaml")
	writeFile(t, configFile, fmt.Sprintf("policyDir: %s\nfleet: %s\n", policyDir, fleetFile))
	for _, args := range [][]string{
		{"validate", policyDir},
		{"validate", policyDir, "--fleet", fleetFile},
		{"validate", "--policy-dir", policyDir, "--fleet", fleetFile},
		{"validate", "--config", configFile},
	} {
		if r := runCLI(t, args...); r.code != 0 || r.stdout != "" || r.stderr != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 0 and no output", args, r.code, r.stdout, r.stderr)
		}
	}
}

// TestValidateNeedsOnePolicyDirectory: no directory at all, or two that
// differ, is an error that says so, not a check of something else.
func TestValidateNeedsOnePolicyDirectory(t *testing.T) {
	policyDir, _ := copyExamples(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"validate"}, "validate needs a policy directory"},
		{[]string{"validate", policyDir, "--policy-dir", t.TempDir()}, "two policy directories"},
	} {
		if r := runCLI(t, c.args...); r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want a failure saying %q", c.args, r.code, r.stderr, c.want)
		}
	}
}

func TestValidateNamesEveryBrokenFieldWithFileAndLine(t *testing.T) {
	policyDir, _ := copyExamples(t)
	policy := filepath.Join(policyDir, "dr-policy.yaml")
	editFile(t, policy, `rto: "30s"`, `rto: "thirty seconds"`)
	editFile(t, policy, `warmStandby: 1`, `warmStandby: -1`)

	r := runCLI(t, "validate", policyDir)
	if r.code != 1 || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q; want 1 and nothing on stdout", r.code, r.stdout)
	}
	for _, broken := range []struct{ needle, field string }{
		{`rto: "thirty seconds"`, "rto"},
		{`warmStandby: -1`, "warmStandby"},
	} {
		location := fmt.Sprintf("dr-policy.yaml:%d", lineOf(t, policy, broken.needle))
		if !lineHas(r.stderr, location, broken.field) {
			t.Errorf("stderr has no line naming %s and %s:\n%s", location, broken.field, r.stderr)
		}
	}
}

func TestValidateReportsPolicyAndFleetProblemsTogether(t *testing.T) {
	policyDir, fleetFile := copyExamples(t)
	policy := filepath.Join(policyDir, "dr-policy.yaml")
	editFile(t, policy, `rto: "30s"`, `rto: "thirty seconds"`)
	editFile(t, fleetFile, "role: active", "role: sleepy")
	r := runCLI(t, "validate", policyDir, "--fleet", fleetFile)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	fleetLocation := fmt.Sprintf("fleet.yaml:%d", lineOf(t, fleetFile, "role: sleepy"))
	policyLocation := fmt.Sprintf("dr-policy.yaml:%d", lineOf(t, policy, "thirty seconds"))
	if !lineHas(r.stderr, fleetLocation, "role") || !lineHas(r.stderr, policyLocation, "rto") {
		t.Errorf("stderr does not name both %s (role) and %s (rto):\n%s", fleetLocation, policyLocation, r.stderr)
	}
}

func lineHas(text string, parts ...string) bool {
	for line := range strings.Lines(text) {
		if containsAll(line, parts...) {
			return true
		}
	}
	return false
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
