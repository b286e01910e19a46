package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/inferxds/inferxds/internal/hub"
	"github.com/inferxds/inferxds/internal/leader"
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
	f.Bool("leader-elect", false, "run as one of several replicas: only the holder of a coordination.k8s.io Lease carries out DR actions, and it publishes the DR state in the ConfigMap "+leader.DefaultStateConfigMap+" that every replica serves")
	f.String("lease-name", "", "name of the Lease (default "+leader.DefaultLeaseName+")")
	f.String("lease-namespace", "", "namespace of the Lease and the DR state ConfigMap (default: the kubeconfig's namespace, or the Pod's in a cluster)")
	f.Duration("lease-duration", 0, fmt.Sprintf("how long a lease not renewed holds off the other replicas: the longest hand-over after a crash (default %v)", leader.DefaultLeaseDuration))
}

// newElector is the replica's election, nil without --leader-elect. It
// reaches the API server through $KUBECONFIG, else the in-cluster service
// account.
func (c leaderConfig) newElector(h *hub.Hub, logger *slog.Logger) (*leader.Elector, error) {
	if !c.LeaderElect {
		return nil, nil
	}
	kubeconfig := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{})
	rest, err := kubeconfig.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("--leader-elect: Kubernetes API config ($KUBECONFIG, or in a cluster the service account): %w", err)
	}
	ns := c.LeaseNamespace
	if ns == "" {
		if ns, _, err = kubeconfig.Namespace(); err != nil {
			return nil, fmt.Errorf("--leader-elect: no --lease-namespace, and the kubeconfig names none: %w", err)
		}
	}
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return nil, err
	}
	return leader.New(leader.Config{
		Client: client, Namespace: ns, LeaseName: c.LeaseName, LeaseDuration: c.LeaseDuration,
		Hub: h, Logger: logger.With("part", "leader"),
	})
}
