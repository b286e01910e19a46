package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"

	"github.com/inferxds/inferxds/internal/hub"
	"github.com/inferxds/inferxds/internal/leader"
	"github.com/inferxds/inferxds/topology/kube"
)

// leaderConfig are serve's settings for running as one of several
// replicas: the Lease that elects the one that decides, and where the DR
// state it decides is published.
type leaderConfig struct {
	LeaderElect    bool          `mapstructure:"leaderElect"`
	LeaseName      string        `mapstructure:"leaseName"`
	LeaseNamespace string        `mapstructure:"leaseNamespace"`
	LeaseDuration  time.Duration `mapstructure:"leaseDuration"`
}

var leaderSettings = []setting{
	{"leader-elect", "leaderElect"},
	{"lease-name", "leaseName"},
	{"lease-namespace", "leaseNamespace"},
	{"lease-duration", "leaseDuration"},
}

func addLeaderFlags(f *pflag.FlagSet) {
	f.Bool("leader-elect", false, "run as one of several replicas: only the holder of a coordination.k8s.io Lease carries out DR actions, and it publishes the DR state in the ConfigMap "+leader.DefaultStateConfigMap+" that every replica serves (API server: --kubeconfig, else in-cluster)")
	f.String("lease-name", "", "name of the Lease (default "+leader.DefaultLeaseName+")")
	f.String("lease-namespace", "", "namespace of the Lease and the DR state ConfigMap (default: the Pod's, in a cluster)")
	f.Duration("lease-duration", 0, fmt.Sprintf("how long a lease not renewed holds off the other replicas: the longest hand-over after a crash (default %v)", leader.DefaultLeaseDuration))
}

// serviceAccountNamespace is where a Pod finds its own namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// newElector is the replica's election, nil without --leader-elect.
func (c config) newElector(h *hub.Hub, reg prometheus.Registerer, logger *slog.Logger) (*leader.Elector, error) {
	if !c.LeaderElect {
		return nil, nil
	}
	rest, err := kube.RESTConfig(c.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("--leader-elect: %w", err)
	}
	ns := c.LeaseNamespace
	if ns == "" {
		data, err := os.ReadFile(serviceAccountNamespace)
		if err != nil {
			return nil, errors.New("--leader-elect: give --lease-namespace outside a cluster")
		}
		ns = strings.TrimSpace(string(data))
	}
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return nil, err
	}
	return leader.New(leader.Config{
		Client: client, Namespace: ns, LeaseName: c.LeaseName, LeaseDuration: c.LeaseDuration,
		Hub: h, Registry: reg, Logger: logger.With("part", "leader"),
	})
}
