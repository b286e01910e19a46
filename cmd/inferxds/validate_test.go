package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateAcceptsTheExamplesSilently(t *testing.T) {
	policyDir, fleetFile := copyExamples(t)
	for _, args := range [][]string{
		{"validate", policyDir},
		{"validate", policyDir, "--fleet", fleetFile},
	} {
		if r := runCLI(t, args...); r.code != 0 || r.stdout != "" || r.stderr != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 0 and no output", args, r.code, r.stdout, r.stderr)
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
