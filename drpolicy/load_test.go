package drpolicy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferxds/inferxds/drpolicy"
)

func TestParseReportsFileLineAndField(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // every one must appear in the error
	}{
		{"unknown key", "models:\n  - name: a\n    hotStandbby: 2\n",
			[]string{`p.yaml:3: models[0].hotStandbby: unknown key "hotStandbby"`}},
		{"unknown top-level key", "modles: []\n",
			[]string{`p.yaml:1: modles: unknown key "modles"`}},
		{"bad duration", "models:\n  - name: a\n    rto: ten\n",
			[]string{`p.yaml:3: models[0].rto: bad duration "ten"`}},
		{"negative duration", "models:\n  - name: a\n    rpo: -5s\n",
			[]string{`p.yaml:3: models[0].rpo: duration "-5s" is negative`}},
		{"duration given as a list", "az_failover:\n  strategy: active-active\n  activeZones: [az-1]\n  healthCheckInterval: [1s]\n",
			[]string{`p.yaml:4: az_failover.healthCheckInterval: want a duration`}},
		{"wrong type", "models:\n  - name: a\n    hotStandby: lots\n",
			[]string{`p.yaml:3: models[0].hotStandby: cannot unmarshal`}},
		{"syntax error", "models:\n  - name: a\n    rto: [1s\n",
			[]string{`p.yaml:`, `did not find expected`}},
		{"two documents", "models: []\n---\nmodels: []\n",
			[]string{`p.yaml:2: only one YAML document`}},
		{"negative standby count", "models:\n  - name: a\n    hotStandby: -1\n",
			[]string{`p.yaml:3: models[0].hotStandby: must not be negative (got -1)`}},
		{"negative resources", "models:\n  - name: a\n    resources:\n      gpus: -2\n      gpuMemoryMiB: -1\n",
			[]string{`p.yaml:4: models[0].resources.gpus: must not be negative (got -2)`,
				`p.yaml:5: models[0].resources.gpuMemoryMiB: must not be negative (got -1)`}},
		{"unknown priority", "models:\n  - name: a\n    priority: urgent\n",
			[]string{`p.yaml:3: models[0].priority: must be one of critical, high, normal, low (got "urgent")`}},
		{"missing name", "models:\n  - priority: high\n",
			[]string{`p.yaml:2: models[0].name: model name is required`}},
		{"bad name", "models:\n  - name: Llama 2\n",
			[]string{`p.yaml:2: models[0].name: model name "Llama 2" is not a valid name`}},
		{"duplicate model", "models:\n  - name: a\n  - name: b\n  - name: a\n",
			[]string{`p.yaml:4: models[2].name: duplicate model name "a" (first at p.yaml:2)`}},
		{"duplicate path prefix", "models:\n  - name: a\n    routing: {pathPrefix: /v1/shared/}\n  - name: b\n    routing:\n      pathPrefix: /v1/shared/\n",
			[]string{`p.yaml:6: models[1].routing.pathPrefix: duplicate path prefix "/v1/shared/" (first at p.yaml:3)`}},
		{"relative path prefix", "models:\n  - name: a\n    routing:\n      pathPrefix: v1/a\n",
			[]string{`p.yaml:4: models[0].routing.pathPrefix: must start with '/'`}},
		{"bad routing header", "models:\n  - name: a\n    routing:\n      header: Model Name\n",
			[]string{`p.yaml:4: models[0].routing.header: must be a lowercase HTTP header name`}},
		{"unknown lb policy", "models:\n  - name: a\n    loadBalancing:\n      policy: random\n",
			[]string{`p.yaml:4: models[0].loadBalancing.policy: must be one of round_robin, least_request, ring_hash (got "random")`}},
		{"ring_hash without header", "models:\n  - name: a\n    loadBalancing:\n      policy: ring_hash\n",
			[]string{`p.yaml:3: models[0].loadBalancing.hashHeader: is required with policy ring_hash`}},
		{"hash header without ring_hash", "models:\n  - name: a\n    loadBalancing:\n      hashHeader: x-user\n",
			[]string{`p.yaml:4: models[0].loadBalancing.hashHeader: applies only to policy ring_hash`}},
		{"outlier percentages", "models:\n  - name: a\n    outlierDetection:\n      maxEjectionPercent: 150\n      failurePercentage:\n        threshold: 101\n",
			[]string{`p.yaml:4: models[0].outlierDetection.maxEjectionPercent: must be a percentage between 0 and 100 (got 150)`,
				`p.yaml:6: models[0].outlierDetection.failurePercentage.threshold: must be a percentage between 0 and 100 (got 101)`}},
		{"too many attempts", "models:\n  - name: a\n    retries:\n      attempts: 11\n",
			[]string{`p.yaml:4: models[0].retries.attempts: must be at most 10 (got 11)`}},
		{"per-try timeout above timeout", "models:\n  - name: a\n    timeout: 5s\n    retries:\n      attempts: 2\n      perTryTimeout: 6s\n",
			[]string{`p.yaml:6: models[0].retries.perTryTimeout: must not exceed the model's timeout 5s (got 6s)`}},
		{"unknown retry condition", "models:\n  - name: a\n    retries:\n      attempts: 2\n      retryOn:\n        - 5xx\n        - sometimes\n",
			[]string{`p.yaml:7: models[0].retries.retryOn[1]: unknown retry condition "sometimes"`}},
		{"retry budget percent", "models:\n  - name: a\n    retries:\n      attempts: 1\n      budget: {percent: 120}\n",
			[]string{`p.yaml:5: models[0].retries.budget.percent: must be a percentage`}},
		{"dangling mirror", "models:\n  - name: a\n    mirror:\n      model: b\n      percent: 10\n",
			[]string{`p.yaml:4: models[0].mirror.model: model "b" is not defined`}},
		{"mirror to itself", "models:\n  - name: a\n    mirror:\n      model: a\n      percent: 10\n",
			[]string{`p.yaml:4: models[0].mirror.model: a model cannot mirror to itself`}},
		{"mirror percent", "models:\n  - name: a\n  - name: b\n    mirror: {model: a, percent: 101}\n",
			[]string{`p.yaml:4: models[1].mirror.percent: must be a percentage between 0 and 100 (got 101)`}},
		{"deep probe without expect", "models:\n  - name: a\n    deepProbe:\n      prompt: The capital of France is\n",
			[]string{`p.yaml:3: models[0].deepProbe.expect: is required`}},
		{"deep probe max tokens", "models:\n  - name: a\n    deepProbe: {prompt: 2+2=, expect: \"4\", maxTokens: -1}\n",
			[]string{`p.yaml:3: models[0].deepProbe.maxTokens: must be at least 1 (got -1)`}},
		{"explicit zero max tokens", "models:\n  - name: a\n  - name: b\n    deepProbe:\n      prompt: 2+2=\n      expect: \"4\"\n      maxTokens: 0\n",
			[]string{`p.yaml:7: models[1].deepProbe.maxTokens: must be at least 1 (got 0); leave the key out for the default 16`}},
		{"dangling tenant", "models:\n  - name: a\n    tenant: chat\n",
			[]string{`p.yaml:3: models[0].tenant: tenant "chat" is not defined under tenants`}},
		{"tenant counts", "tenants:\n  - name: chat\n    gpuQuota: -2\n    rateLimit:\n      requestsPerSecond: 0\n",
			[]string{`p.yaml:3: tenants[0].gpuQuota: must not be negative (got -2)`,
				`p.yaml:5: tenants[0].rateLimit.requestsPerSecond: must be positive`}},
		{"duplicate tenant", "tenants:\n  - name: chat\n  - name: chat\n",
			[]string{`p.yaml:3: tenants[1].name: duplicate tenant name "chat" (first at p.yaml:2)`}},
		{"failover strategy", "az_failover:\n  strategy: sometimes\n  activeZones: [az-1]\n",
			[]string{`p.yaml:2: az_failover.strategy: must be active-passive or active-active (got "sometimes")`}},
		{"no active zones", "az_failover:\n  strategy: active-active\n  activeZones: []\n",
			[]string{`p.yaml:3: az_failover.activeZones: must list at least one zone`}},
		{"repeated active zone", "az_failover:\n  strategy: active-active\n  activeZones: [az-1, az-1]\n",
			[]string{`p.yaml:3: az_failover.activeZones[1]: duplicate active zone name "az-1"`}},
		{"standby zone also active", "az_failover:\n  strategy: active-passive\n  activeZones: [az-1, az-2]\n  standbyZone: az-2\n",
			[]string{`p.yaml:4: az_failover.standbyZone: zone "az-2" is also listed in activeZones`}},
		{"active-passive without standby", "az_failover:\n  strategy: active-passive\n  activeZones: [az-1]\n",
			[]string{`p.yaml:1: az_failover.standbyZone: is required with strategy active-passive`}},
		{"failover threshold", "az_failover:\n  strategy: active-active\n  activeZones: [az-1]\n  failoverThreshold: -1\n",
			[]string{`p.yaml:4: az_failover.failoverThreshold: must be at least 1 (got -1)`}},
		{"explicit zero threshold", "az_failover:\n  strategy: active-active\n  activeZones: [az-1]\n  failoverThreshold: 0\n",
			[]string{`p.yaml:4: az_failover.failoverThreshold: must be at least 1 (got 0); leave the key out for the default 3`}},
		{"explicit zero interval", "az_failover:\n  strategy: active-active\n  activeZones: [az-1]\n  healthCheckInterval: 0s\n",
			[]string{`p.yaml:4: az_failover.healthCheckInterval: must be positive (got 0s); leave the key out for the default 10s`}},
		{"syntax error line", "models:\n  - name: a\n    hotStandby: 1\n   priority: high\n",
			[]string{`p.yaml:4: `}},
		{"every problem reported", "models:\n  - name: a\n    hotStandby: -1\n    rto: ten\n    colour: red\n  - name: b\n    priority: urgent\n",
			[]string{`p.yaml:3: models[0].hotStandby`, `p.yaml:4: models[0].rto`, `p.yaml:5: models[0].colour`, `p.yaml:7: models[1].priority`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := drpolicy.Parse("p.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v); want errors %q", p, tt.want)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not contain %q:\n%v", want, err)
				}
			}
		})
	}
}

func TestParseSeedPolicy(t *testing.T) {
	data, err := os.ReadFile("../deploy/examples/policy/dr-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := drpolicy.Parse("dr-policy.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	type counts struct {
		priority      drpolicy.Criticality
		hot, warm, co int
		rto, rpo      time.Duration
	}
	want := map[string]counts{
		"llama-2-7b": {drpolicy.CriticalityCritical, 2, 0, 1, 10 * time.Second, 0},
		"mistral-7b": {drpolicy.CriticalityHigh, 1, 1, 1, 30 * time.Second, time.Minute},
		"gpt-4-8b":   {drpolicy.CriticalityNormal, 0, 1, 2, 5 * time.Minute, 5 * time.Minute},
	}
	if len(p.Models) != len(want) {
		t.Fatalf("got %d models, want %d", len(p.Models), len(want))
	}
	for name, w := range want {
		m, ok := p.Model(name)
		if !ok {
			t.Fatalf("model %s missing", name)
		}
		got := counts{m.Priority, m.HotStandby, m.WarmStandby, m.ColdStandby, m.RTO.D(), m.RPO.D()}
		if got != w {
			t.Errorf("%s: got %+v, want %+v", name, got, w)
		}
		if m.Routing.Header != "model-name" || m.Routing.PathPrefix != "/v1/models/"+name+"/" {
			t.Errorf("%s: routing defaults not applied: %+v", name, m.Routing)
		}
	}
	az := p.AZFailover
	if az == nil || az.Strategy != "active-passive" || strings.Join(az.ActiveZones, ",") != "az-1,az-2" ||
		az.StandbyZone != "az-3" || az.HealthCheckInterval.D() != 10*time.Second || az.FailoverThreshold != 3 {
		t.Errorf("az_failover = %+v", az)
	}
}

func TestParseDeepProbeDefaultsMaxTokens(t *testing.T) {
	p, err := drpolicy.Parse("p.yaml", []byte("models:\n  - name: a\n    deepProbe:\n      prompt: The capital of France is\n      expect: Paris\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := drpolicy.DeepProbe{Prompt: "The capital of France is", Expect: "Paris", MaxTokens: drpolicy.DefaultDeepProbeMaxTokens}
	if got := p.Models[0].DeepProbe; got == nil || *got != want {
		t.Errorf("deepProbe = %+v, want %+v", got, want)
	}
}

func TestValidateBuiltPolicyNamesFieldsWithoutFile(t *testing.T) {
	p := &drpolicy.Policy{
		Models:     []drpolicy.Model{{Name: "a", HotStandby: -1}},
		AZFailover: &drpolicy.AZFailover{Strategy: "active-active", ActiveZones: []string{"az-1"}, HealthCheckInterval: -1},
	}
	p.ApplyDefaults()
	err := p.Validate()
	for _, want := range []string{"models[0].hotStandby: must not be negative (got -1)", "az_failover.healthCheckInterval: must be positive"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; want it to contain %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), ".yaml") {
		t.Errorf("built policy error names a file: %v", err)
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadMergesFilesAndSkipsOthers(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.yaml":          "models:\n  - name: a\n    tenant: chat\n    mirror: {model: b, percent: 5}\n",
		"b.yml":           "models:\n  - name: b\n",
		"tenants.yaml":    "tenants:\n  - name: chat\n",
		".hidden.yaml":    "this is: [not read\n",
		"notes.txt":       "not: yaml at all: [\n",
		"sub/nested.yaml": "models:\n  - name: nested\n",
	})
	p, err := drpolicy.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range p.Models {
		names = append(names, m.Name)
	}
	if got := strings.Join(names, ","); got != "a,b" {
		t.Errorf("models = %s, want a,b (sorted by file, top level only)", got)
	}
	if len(p.Tenants) != 1 || p.Tenants[0].Name != "chat" {
		t.Errorf("tenants = %+v", p.Tenants)
	}
}

func TestLoadReportsConflictsAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	az := "az_failover:\n  strategy: active-active\n  activeZones: [az-1]\n"
	writeFiles(t, dir, map[string]string{
		"a.yaml": "models:\n  - name: x\n  - name: y\n" + az,
		"b.yaml": "tenants:\n  - name: t\nmodels:\n  - name: z\n    hotStandby: -3\n  - name: y\n" + az,
	})
	_, err := drpolicy.Load(dir)
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	for _, want := range []string{
		b + `:6: models[1].name: duplicate model name "y" (first at ` + a + `:3)`,
		b + `:7: az_failover: az_failover is already defined at ` + a + `:4`,
		b + `:5: models[0].hotStandby: must not be negative (got -3)`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load error = %v\nwant it to contain %q", err, want)
		}
	}
}

func TestLoadDirectoryErrors(t *testing.T) {
	empty := t.TempDir()
	if _, err := drpolicy.Load(empty); err == nil || !strings.Contains(err.Error(), empty+": no *.yaml") {
		t.Errorf("empty dir: %v", err)
	}
	missing := filepath.Join(empty, "missing")
	if _, err := drpolicy.Load(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing dir: %v", err)
	}
}

// A mounted ConfigMap: each key is a symlink into the hidden "..data" link.
func TestLoadFollowsConfigMapSymlinks(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"..2024_01/policy.yaml": "models:\n  - name: a\n"})
	for link, target := range map[string]string{"..data": "..2024_01", "policy.yaml": "..data/policy.yaml"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	p, err := drpolicy.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Models) != 1 || p.Models[0].Name != "a" {
		t.Errorf("models = %+v, want just a", p.Models)
	}
}
