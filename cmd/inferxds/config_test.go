package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferxds/inferxds/xds"
)

// serveConfig resolves serve's settings from args, the environment and,
// when configYAML is not empty, a config file holding it.
func serveConfig(t *testing.T, configYAML string, args ...string) (config, error) {
	t.Helper()
	if configYAML != "" {
		path := filepath.Join(t.TempDir(), "inferxds.yaml")
		if err := os.WriteFile(path, []byte(configYAML), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", path)
	}
	cmd := newServeCommand()
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	return loadConfig(cmd.Flags())
}

const fullConfigFile = `
policyDir: /file/policy
fleet: /file/fleet.yaml
xdsAddress: 127.0.0.1:1001
metricsAddress: 127.0.0.1:2001
debounce: 150ms
maxDelay: 2s
viewGrace: 1m
envoyListenAddress: 127.0.0.1:3001
scrapeInterval: 10s
scrapeTimeout: 3s
telemetryStaleAfter: 1m
weightMinInterval: 5s
maxRemovalShare: 0.25
allowMassRemoval: true
logLevel: debug
logFormat: json
pprof: true
insecure: true
trustDomain: file.example
maxNodeBytes: 1024
metricsTokenFile: /file/token
dr: true
actuator: none
probeInterval: 2s
incidentLog: /file/incidents.jsonl
drGuardShare: 0.3
localDir: /file/local
source: kube
kubeconfig: /file/kubeconfig
kubeNamespaces: inference,models
kubePodSelector: team=llm
kubeModelLabel: example.com/model
kubeTierLabel: example.com/tier
kubeRoleLabel: example.com/role
kubePortName: serve
kubeStandbyZones: az-9
kubeSyncTimeout: 10s
`

// defaultDR and fileDR are serve's DR settings by default and from
// fullConfigFile.
var (
	defaultDR = drConfig{Actuator: actuatorNone, DRGuardShare: 0.5}
	fileDR    = drConfig{DR: true, Actuator: actuatorNone, ProbeInterval: 2 * time.Second, IncidentLog: "/file/incidents.jsonl", DRGuardShare: 0.3, LocalDir: "/file/local"}
)

// defaultKube is serve's fleet source settings with nothing setting them.
var defaultKube = kubeConfig{
	Source: "file", KubeModelLabel: "inferxds.io/model", KubeTierLabel: "inferxds.io/tier", KubeRoleLabel: "inferxds.io/role",
	KubePortName: "http", KubeSyncTimeout: time.Minute,
}

// fileKube is fullConfigFile's fleet source settings.
var fileKube = kubeConfig{
	Source: "kube", Kubeconfig: "/file/kubeconfig", KubeNamespaces: "inference,models", KubePodSelector: "team=llm",
	KubeModelLabel: "example.com/model", KubeTierLabel: "example.com/tier", KubeRoleLabel: "example.com/role",
	KubePortName: "serve", KubeStandbyZones: "az-9", KubeSyncTimeout: 10 * time.Second,
}

// defaultSecurity is serve's security settings with no flag, variable or
// file setting them.
var defaultSecurity = securityConfig{
	TrustDomain: xds.DefaultTrustDomain, MaxNodeBytes: xds.DefaultMaxNodeBytes,
	MaxStreamsPerConnection: xds.DefaultMaxStreamsPerConnection, MaxConnectionsPerIdentity: xds.DefaultMaxConnectionsPerIdentity,
}

// fileSecurity is fullConfigFile's security settings.
var fileSecurity = securityConfig{
	Insecure: true, TrustDomain: "file.example", MaxNodeBytes: 1024, MetricsTokenFile: "/file/token",
	MaxStreamsPerConnection: xds.DefaultMaxStreamsPerConnection, MaxConnectionsPerIdentity: xds.DefaultMaxConnectionsPerIdentity,
}

func TestConfigDefaults(t *testing.T) {
	got, err := serveConfig(t, "")
	if err != nil {
		t.Fatal(err)
	}
	want := config{XDSAddress: "127.0.0.1:18000", MetricsAddress: "127.0.0.1:9090", Debounce: 100 * time.Millisecond, MaxDelay: 500 * time.Millisecond, ViewGrace: 5 * time.Minute, EnvoyListen: "0.0.0.0:10000", ScrapeInterval: 5 * time.Second, WeightMinInterval: 30 * time.Second, MaxRemovalShare: 0.5,
		LogLevel: "info", LogFormat: "text", securityConfig: defaultSecurity, drConfig: defaultDR, kubeConfig: defaultKube}
	if got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
}

func TestConfigFileSetsEverySetting(t *testing.T) {
	got, err := serveConfig(t, fullConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	want := config{PolicyDir: "/file/policy", Fleet: "/file/fleet.yaml", XDSAddress: "127.0.0.1:1001", MetricsAddress: "127.0.0.1:2001", Debounce: 150 * time.Millisecond, MaxDelay: 2 * time.Second, ViewGrace: time.Minute, EnvoyListen: "127.0.0.1:3001",
		ScrapeInterval: 10 * time.Second, ScrapeTimeout: 3 * time.Second, TelemetryStaleAfter: time.Minute, WeightMinInterval: 5 * time.Second, MaxRemovalShare: 0.25, AllowMassRemoval: true,
		LogLevel: "debug", LogFormat: "json", Pprof: true, securityConfig: fileSecurity, drConfig: fileDR, kubeConfig: fileKube}
	if got != want {
		t.Errorf("from file = %+v, want %+v", got, want)
	}
}

func TestEnvironmentOverridesConfigFile(t *testing.T) {
	t.Setenv("INFERXDS_POLICY_DIR", "/env/policy")
	t.Setenv("INFERXDS_FLEET", "/env/fleet.yaml")
	t.Setenv("INFERXDS_XDS_ADDRESS", "127.0.0.1:1002")
	t.Setenv("INFERXDS_METRICS_ADDRESS", "127.0.0.1:2002")
	t.Setenv("INFERXDS_DEBOUNCE", "250ms")
	t.Setenv("INFERXDS_MAX_DELAY", "3s")
	t.Setenv("INFERXDS_VIEW_GRACE", "2m")
	t.Setenv("INFERXDS_ENVOY_LISTEN_ADDRESS", "127.0.0.1:3002")
	t.Setenv("INFERXDS_SCRAPE_INTERVAL", "20s")
	t.Setenv("INFERXDS_SCRAPE_TIMEOUT", "4s")
	t.Setenv("INFERXDS_TELEMETRY_STALE_AFTER", "2m")
	t.Setenv("INFERXDS_WEIGHT_MIN_INTERVAL", "7s")
	t.Setenv("INFERXDS_MAX_REMOVAL_SHARE", "0.75")
	t.Setenv("INFERXDS_ALLOW_MASS_REMOVAL", "false")
	t.Setenv("INFERXDS_LOG_LEVEL", "warn")
	t.Setenv("INFERXDS_LOG_FORMAT", "text")
	t.Setenv("INFERXDS_PPROF", "false")
	t.Setenv("INFERXDS_DR", "false")
	t.Setenv("INFERXDS_PROBE_INTERVAL", "3s")
	t.Setenv("INFERXDS_INCIDENT_LOG", "/env/incidents.jsonl")
	t.Setenv("INFERXDS_DR_GUARD_SHARE", "0.6")
	t.Setenv("INFERXDS_LOCAL_DIR", "/env/local")
	t.Setenv("INFERXDS_SOURCE", "file")
	t.Setenv("INFERXDS_KUBE_NAMESPACES", "env-ns")
	got, err := serveConfig(t, fullConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	want := config{PolicyDir: "/env/policy", Fleet: "/env/fleet.yaml", XDSAddress: "127.0.0.1:1002", MetricsAddress: "127.0.0.1:2002", Debounce: 250 * time.Millisecond, MaxDelay: 3 * time.Second, ViewGrace: 2 * time.Minute, EnvoyListen: "127.0.0.1:3002",
		ScrapeInterval: 20 * time.Second, ScrapeTimeout: 4 * time.Second, TelemetryStaleAfter: 2 * time.Minute, WeightMinInterval: 7 * time.Second, MaxRemovalShare: 0.75,
		LogLevel: "warn", LogFormat: "text", securityConfig: fileSecurity,
		drConfig: drConfig{Actuator: actuatorNone, ProbeInterval: 3 * time.Second, IncidentLog: "/env/incidents.jsonl", DRGuardShare: 0.6, LocalDir: "/env/local"}, kubeConfig: envKube}
	if got != want {
		t.Errorf("env over file = %+v, want %+v", got, want)
	}
}

// envKube is fileKube with TestEnvironmentOverridesConfigFile's variables.
var envKube = func() kubeConfig {
	k := fileKube
	k.Source, k.KubeNamespaces = "file", "env-ns"
	return k
}()

func TestFlagsOverrideEnvironment(t *testing.T) {
	t.Setenv("INFERXDS_XDS_ADDRESS", "127.0.0.1:1002")
	t.Setenv("INFERXDS_DEBOUNCE", "250ms")
	got, err := serveConfig(t, fullConfigFile, "--xds-address", "127.0.0.1:1003", "--debounce", "50ms")
	if err != nil {
		t.Fatal(err)
	}
	if got.XDSAddress != "127.0.0.1:1003" || got.Debounce != 50*time.Millisecond {
		t.Errorf("flags did not win: %+v", got)
	}
	if got.MetricsAddress != "127.0.0.1:2001" || got.MaxDelay != 2*time.Second {
		t.Errorf("settings without flag or env must come from the file: %+v", got)
	}
}

func TestDRSettingsThatCannotWorkAreErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"unknown actuator":        {[]string{"--dr", "--actuator", "k8s"}, `--actuator "k8s": must be none, local or kube`},
		"kube actuator, no --dr":  {[]string{"--actuator", "kube"}, "--actuator kube needs --dr"},
		"local actuator, no --dr": {[]string{"--actuator", "local"}, "--actuator local needs --dr"},
		"guard share above 1":     {[]string{"--dr", "--dr-guard-share", "1.5"}, "--dr-guard-share 1.5: must be between 0 and 1"},
		"negative probe interval": {[]string{"--dr", "--probe-interval", "-1s"}, "--probe-interval -1s: must not be negative"},
		"local actuator, kube":    {[]string{"--dr", "--actuator", "local", "--source", "kube"}, "with --source kube the cluster runs them"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := serveConfig(t, "", tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.checkDR(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestConfigFileProblemsAreErrors(t *testing.T) {
	for name, file := range map[string]string{
		"misspelt key": "xdsAdress: 127.0.0.1:1\n",
		"bad duration": "debounce: soon\n",
		"not YAML":     "debounce: [\n",
	} {
		t.Run(name, func(t *testing.T) {
			if got, err := serveConfig(t, file); err == nil {
				t.Errorf("accepted, giving %+v", got)
			}
		})
	}
	_, err := serveConfig(t, "", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing config file: err = %v", err)
	}
}
