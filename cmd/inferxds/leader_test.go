package main

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferxds/inferxds/internal/hub"
)

func TestLeaderFlagsAndFileKeys(t *testing.T) {
	cfg, err := serveConfig(t, "leaseName: from-file\nleaseDuration: 20s\n", "--leader-elect", "--lease-namespace", "inferxds-system")
	if err != nil {
		t.Fatal(err)
	}
	want := leaderConfig{LeaderElect: true, LeaseName: "from-file", LeaseNamespace: "inferxds-system", LeaseDuration: 20 * time.Second}
	if cfg.leaderConfig != want {
		t.Errorf("leader settings %+v, want %+v", cfg.leaderConfig, want)
	}
}

func TestLeaderElectWithoutAnAPIServerSaysWhereItLooked(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	cfg := config{leaderConfig: leaderConfig{LeaderElect: true}, kubeConfig: kubeConfig{Kubeconfig: missing}}
	_, err := cfg.newElector(hub.New(nil), nil, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "--leader-elect: kubeconfig "+missing) {
		t.Fatalf("error %v, want it to name --leader-elect and the kubeconfig", err)
	}
	if e, err := (config{}).newElector(hub.New(nil), nil, nil); e != nil || err != nil {
		t.Fatalf("without --leader-elect: %v, %v; want no election", e, err)
	}
}

func TestKubeActuatorNeedsANamespace(t *testing.T) {
	cfg, err := serveConfig(t, "", "--dr", "--actuator", "kube")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.newKubeActuator(slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "--actuator kube: give --actuator-namespace") {
		t.Fatalf("error %v, want it to ask for --actuator-namespace", err)
	}
}
