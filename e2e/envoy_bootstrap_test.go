package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestEnvoyValidatesEveryBootstrap runs `envoy --mode validate` on each
// kind of Envoy bootstrap `inferxds bootstrap` prints: default and chosen
// admin ports, a node cluster, node ids and zones that need quoting, an
// empty zone, control planes named by IPv4, IPv6 and DNS name, and both
// ADS modes.
func TestEnvoyValidatesEveryBootstrap(t *testing.T) {
	envoyBin := requireEnvoy(t)
	variants := map[string][]string{
		"defaults":          {"--node-id", "envoy-1", "--zone", "az-1", "--xds-address", "127.0.0.1:18000"},
		"admin port 0":      {"--node-id", "envoy-1", "--zone", "az-1", "--xds-address", "127.0.0.1:18000", "--admin-port", "0"},
		"admin port chosen": {"--node-id", "envoy-1", "--zone", "az-1", "--xds-address", "127.0.0.1:18000", "--admin-port", "19901"},
		"node cluster":      {"--node-id", "envoy-1", "--zone", "az-1", "--xds-address", "127.0.0.1:18000", "--cluster", "edge-gateways"},
		"quoted identity":   {"--node-id", `envoy "edge": #1 {x}`, "--zone", "az 1: 'west'", "--xds-address", "127.0.0.1:18000"},
		"empty zone":        {"--node-id", "envoy-1", "--zone", "", "--xds-address", "127.0.0.1:18000"},
		"ipv6 control":      {"--node-id", "envoy-1", "--zone", "az-1", "--xds-address", "[::1]:18000"},
		"dns control":       {"--node-id", "envoy-1", "--zone", "az-1", "--xds-address", "inferxds.inferxds-system.svc:18000"},
		"sotw explicit":     {"--node-id", "envoy-1", "--zone", "az-1", "--xds-address", "127.0.0.1:18000", "--xds-mode", "sotw"},
		"delta":             {"--node-id", "envoy-1", "--zone", "az-1", "--xds-address", "127.0.0.1:18000", "--xds-mode", "delta"},
	}
	for name, args := range variants {
		t.Run(name, func(t *testing.T) {
			config := filepath.Join(t.TempDir(), "envoy.yaml")
			if err := os.WriteFile(config, runInferxds(t, append([]string{"bootstrap"}, args...)...), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(envoyBin, "--mode", "validate", "-c", config, "--log-level", "warn").CombinedOutput()
			if err != nil {
				raw, _ := os.ReadFile(config)
				t.Fatalf("envoy --mode validate: %v\n%s\nbootstrap:\n%s", err, out, raw)
			}
		})
	}
}

// runInferxds runs the inferxds binary and returns its stdout.
func runInferxds(t testing.TB, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(binaries.inferxds, args...)
	cmd.Env = hermeticEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("inferxds %v: %v\n%s", args, err, stderrOf(err))
	}
	return out
}
