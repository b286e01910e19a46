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
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "missing"))
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	_, err := leaderConfig{LeaderElect: true}.newElector(hub.New(nil), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "--leader-elect: Kubernetes API config") {
		t.Fatalf("error %v, want it to name --leader-elect and where the API config comes from", err)
	}
	if e, err := (leaderConfig{}).newElector(hub.New(nil), nil); e != nil || err != nil {
		t.Fatalf("without --leader-elect: %v, %v; want no election", e, err)
	}
}
