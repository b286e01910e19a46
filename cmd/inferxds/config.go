package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology/telemetry"
	"github.com/inferxds/inferxds/topology/telemetry/weights"
)

// config holds the settings of serve and plan. Each comes, in this order of
// precedence, from its flag, its environment variable, the --config file, or
// the flag's default.
type config struct {
	PolicyDir      string        `mapstructure:"policyDir"`
	Fleet          string        `mapstructure:"fleet"`
	XDSAddress     string        `mapstructure:"xdsAddress"`
	MetricsAddress string        `mapstructure:"metricsAddress"`
	Debounce       time.Duration `mapstructure:"debounce"`
	MaxDelay       time.Duration `mapstructure:"maxDelay"`
	ViewGrace      time.Duration `mapstructure:"viewGrace"`
	ReadyFile      string        `mapstructure:"readyFile"`
	EnvoyListen    string        `mapstructure:"envoyListenAddress"`
	// Telemetry scraping (topology/telemetry); a zero interval turns it off.
	ScrapeInterval      time.Duration `mapstructure:"scrapeInterval"`
	ScrapeTimeout       time.Duration `mapstructure:"scrapeTimeout"`
	TelemetryStaleAfter time.Duration `mapstructure:"telemetryStaleAfter"`
	WeightMinInterval   time.Duration `mapstructure:"weightMinInterval"`
	// Source changes that remove too much at once (cmd/inferxds/guard.go).
	MaxRemovalShare  float64 `mapstructure:"maxRemovalShare"`
	AllowMassRemoval bool    `mapstructure:"allowMassRemoval"`
	LogLevel         string  `mapstructure:"logLevel"`
	LogFormat        string  `mapstructure:"logFormat"`
	Pprof            bool    `mapstructure:"pprof"`

	securityConfig `mapstructure:",squash"`
	drConfig       `mapstructure:",squash"`
	kubeConfig     `mapstructure:",squash"`
	leaderConfig   `mapstructure:",squash"`

	kubeActuatorConfig `mapstructure:",squash"`
}

// setting ties a flag to its key in the config file.
type setting struct{ flag, key string }

var settings = append([]setting{
	{"policy-dir", "policyDir"},
	{"fleet", "fleet"},
	{"xds-address", "xdsAddress"},
	{"metrics-address", "metricsAddress"},
	{"debounce", "debounce"},
	{"max-delay", "maxDelay"},
	{"view-grace", "viewGrace"},
	{"ready-file", "readyFile"},
	{"envoy-listen-address", "envoyListenAddress"},
	{"scrape-interval", "scrapeInterval"},
	{"scrape-timeout", "scrapeTimeout"},
	{"telemetry-stale-after", "telemetryStaleAfter"},
	{"weight-min-interval", "weightMinInterval"},
	{"max-removal-share", "maxRemovalShare"},
	{"allow-mass-removal", "allowMassRemoval"},
	{"log-level", "logLevel"},
	{"log-format", "logFormat"},
	{"pprof", "pprof"},
}, append(append(append(securitySettings, drSettings...), kubeSettings...), append(leaderSettings, kubeActuatorSettings...)...)...)

const (
	envPrefix  = "INFERXDS_"
	configFlag = "config"
)

// envName is a flag's environment variable: --policy-dir → INFERXDS_POLICY_DIR.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func addConfigFlag(flags *pflag.FlagSet) {
	flags.String(configFlag, "", "YAML file with settings (keys: "+configKeys()+"); flags and INFERXDS_* variables override it")
}

func configKeys() string {
	keys := make([]string, len(settings))
	for i, s := range settings {
		keys[i] = s.key
	}
	return strings.Join(keys, ", ")
}

// loadConfig resolves the settings for the flags in flags. A setting whose
// flag the command lacks keeps its zero value. Unknown keys in the config
// file are errors, so a typo does not silently fall back to a default.
func loadConfig(flags *pflag.FlagSet) (config, error) {
	v := viper.New()
	for _, s := range settings {
		if err := bindSetting(v, flags, s); err != nil {
			return config{}, err
		}
	}
	path, err := readConfigFile(v, flags)
	if err != nil {
		return config{}, err
	}
	if err := checkSettings(v, flags, path); err != nil {
		return config{}, err
	}
	var c config
	if err := v.UnmarshalExact(&c); err != nil {
		return config{}, fmt.Errorf("settings (config file %q, INFERXDS_* environment): %w", path, err)
	}
	return c, nil
}

func bindSetting(v *viper.Viper, flags *pflag.FlagSet, s setting) error {
	f := flags.Lookup(s.flag)
	if f == nil {
		return nil
	}
	if err := v.BindPFlag(s.key, f); err != nil {
		return err
	}
	return v.BindEnv(s.key, envName(s.flag))
}

// readConfigFile reads the --config file, if any, and returns its path.
func readConfigFile(v *viper.Viper, flags *pflag.FlagSet) (string, error) {
	path, err := flags.GetString(configFlag)
	if err != nil || path == "" {
		return "", nil
	}
	v.SetConfigFile(path)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		return "", fmt.Errorf("config file %s: %w", path, err)
	}
	return path, nil
}

func addEnvoyListenFlag(flags *pflag.FlagSet) {
	defaultAddr := net.JoinHostPort(snapshot.DefaultListenAddress, strconv.Itoa(int(snapshot.DefaultListenPort)))
	flags.String("envoy-listen-address", defaultAddr, "where Envoy proxies' socket listener binds (host:port; port 0 lets each Envoy pick one)")
}

func addTelemetryFlags(flags *pflag.FlagSet) {
	flags.Duration("scrape-interval", telemetry.DefaultInterval, "time between scrapes of the fleet's telemetryURL and metricsURL targets; 0 turns telemetry off")
	flags.Duration("scrape-timeout", 0, "cut-off for one scrape, at most the scrape interval (default: 2s, or the interval if shorter)")
	flags.Duration("telemetry-stale-after", 0, "age at which telemetry counts as unknown (default: 3 scrape intervals)")
	flags.Duration("weight-min-interval", weights.DefaultMinInterval, "shortest time between two telemetry-driven weight changes of one endpoint")
}

// telemetryConfig is the scraper's configuration; ok is false when
// scraping is off.
func (c config) telemetryConfig() (cfg telemetry.Config, ok bool) {
	cfg = telemetry.Config{
		Interval: c.ScrapeInterval, Timeout: c.ScrapeTimeout, StaleAfter: c.TelemetryStaleAfter,
		Weights: weights.Config{MinInterval: c.WeightMinInterval},
	}
	return cfg, c.ScrapeInterval != 0
}

// translateOptions are the translation settings that come from config.
func (c config) translateOptions() ([]snapshot.Option, error) {
	host, portText, err := net.SplitHostPort(c.EnvoyListen)
	if err != nil {
		return nil, fmt.Errorf("envoy listen address %q: %w", c.EnvoyListen, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("envoy listen address %q: port must be 0-65535 (0: Envoy picks one)", c.EnvoyListen)
	}
	return []snapshot.Option{snapshot.WithListenAddress(host, uint32(port))}, nil
}
