package sim

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
)

func TestInjectorSpreadsFailuresEvenlyByCount(t *testing.T) {
	tests := []struct {
		failure Failure
		want    string // x = request fails, . = request succeeds
	}{
		{Failure{}, "........"},
		{Failure{Rate: 0.5}, ".x.x.x.x"},
		{Failure{Rate: 0.25}, "...x...x"},
		{Failure{Rate: 0.3}, "...x..x..x"},
		{Failure{HTTPStatus: 503}, "xxxxxxxx"},
	}
	for _, tc := range tests {
		var in injector
		in.set(tc.failure)
		var got strings.Builder
		for range len(tc.want) {
			if _, fails := in.decide(); fails {
				got.WriteByte('x')
			} else {
				got.WriteByte('.')
			}
		}
		if got.String() != tc.want {
			t.Errorf("%+v: got %s, want %s", tc.failure, got.String(), tc.want)
		}
	}
}

func TestInjectorRestartsCountWhenFailureChanges(t *testing.T) {
	var in injector
	in.set(Failure{Rate: 0.5})
	in.decide() // request 1 succeeds; request 2 would fail
	in.set(Failure{Rate: 0.5})
	if _, fails := in.decide(); fails {
		t.Error("first request after a new failure mode failed; the count should restart")
	}
}

func TestFailureDefaults(t *testing.T) {
	got := Failure{Rate: 0.1}.withDefaults()
	want := Failure{HTTPStatus: 503, GRPCCode: codes.Unavailable, Rate: 0.1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if (Failure{}).withDefaults().Active() {
		t.Error("the zero Failure became active")
	}
}

func TestParseGRPCCode(t *testing.T) {
	for in, want := range map[string]codes.Code{
		"":                   codes.OK,
		"UNAVAILABLE":        codes.Unavailable,
		"resource_exhausted": codes.ResourceExhausted,
		"14":                 codes.Unavailable,
	} {
		got, err := ParseGRPCCode(in)
		if err != nil || got != want {
			t.Errorf("ParseGRPCCode(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseGRPCCode("NOT_A_CODE"); err == nil {
		t.Error("ParseGRPCCode(NOT_A_CODE) succeeded")
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	err := Config{Latency: -1, Failure: Failure{HTTPStatus: 200, Rate: 1.5}}.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad config")
	}
	for _, want := range []string{"instance id", "no model", "http address", "latency", "400..599", "fail rate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
