// Package leader owns what only one control-plane replica may do. It holds
// a coordination.k8s.io Lease through client-go's leader election, so one
// replica leads at a time; it cancels the leader's actuation the moment
// the lease is lost (Guard); and it carries the DR state between replicas
// through a ConfigMap: the leader writes the hub's DR state into it, every
// other replica publishes what it reads there on its own hub, so all
// replicas translate the same state and serve the same endpoints, and a
// replica that becomes leader starts from the state last written, with the
// incidents in flight.
//
// While a replica does not lead, the ConfigMap is its only source of DR
// state: its DR loop plans nothing of its own (engine.Config.Leading is
// Leading).
package leader

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/internal/hub"
)

// Defaults.
const (
	DefaultLeaseName      = "inferxds-leader"
	DefaultStateConfigMap = "inferxds-dr-state"
	DefaultLeaseDuration  = 15 * time.Second
)

// Config is what an Elector needs.
type Config struct {
	Client    kubernetes.Interface
	Namespace string
	// LeaseName names the Lease; "" is DefaultLeaseName.
	LeaseName string
	// Identity is this replica's name in the Lease; "" is the host name
	// and a random suffix.
	Identity string
	// LeaseDuration is how long a lease not renewed holds off the other
	// replicas: the longest a hand-over after a crash takes. 0 is
	// DefaultLeaseDuration. The leader gives up after two thirds of it
	// without renewing, and candidates retry every 2/15 of it.
	LeaseDuration time.Duration
	// StateConfigMap names the ConfigMap holding the DR state; "" is
	// DefaultStateConfigMap.
	StateConfigMap string
	// Hub is where the DR state is read (leading) and published (not).
	Hub *hub.Hub
	// Registry, when set, gets the inferxds_leader gauge.
	Registry prometheus.Registerer
	Logger   *slog.Logger
}

// Elector takes part in the election and carries the DR state.
type Elector struct {
	client    kubernetes.Interface
	ns        string
	leaseName string
	id        string
	lease     time.Duration
	state     stateStore
	hub       *hub.Hub
	log       *slog.Logger

	mu sync.Mutex
	// term is the context of the current leadership, nil when not leading;
	// it ends the moment the lease is lost.
	term context.Context
	// starting is true while a new term reads the state to continue from.
	starting bool
	// leading is published true when a term starts and false when it ends.
	leading *hub.Value[bool]
	// leadingGauge is 1 while leading.
	leadingGauge prometheus.Gauge
	// lastWritten is the state the leader wrote last, as the watch saw it.
	lastWritten func() (*dr.State, bool)
}

// New checks cfg and fills in its defaults.
func New(cfg Config) (*Elector, error) {
	if cfg.Client == nil || cfg.Namespace == "" || cfg.Hub == nil {
		return nil, errors.New("leader election needs a Kubernetes client, a namespace and a hub")
	}
	if cfg.Identity == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("leader identity: %w", err)
		}
		cfg.Identity = host + "-" + rand.String(5)
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = DefaultLeaseDuration
	}
	if cfg.LeaseDuration < 2*time.Second {
		return nil, fmt.Errorf("lease duration %v: at least 2s", cfg.LeaseDuration)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Elector{
		client: cfg.Client, ns: cfg.Namespace, leaseName: cmp.Or(cfg.LeaseName, DefaultLeaseName), id: cfg.Identity,
		lease: cfg.LeaseDuration, hub: cfg.Hub, log: cfg.Logger,
		leading: hub.NewValue(func(a, b bool) bool { return a == b }),
		leadingGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "inferxds_leader", Help: "1 while this replica holds the Lease and decides what only one replica may.",
		}),
	}
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(e.leadingGauge); err != nil {
			return nil, err
		}
	}
	e.state = stateStore{client: cfg.Client, ns: cfg.Namespace, name: cmp.Or(cfg.StateConfigMap, DefaultStateConfigMap), id: cfg.Identity}
	e.leading.Publish(false)
	return e, nil
}

// Leading reports whether this replica holds the lease now.
func (e *Elector) Leading() bool { return e.currentTerm() != nil }

// LeadingChanges signals each change of Leading (and at once); stop ends
// the subscription.
func (e *Elector) LeadingChanges() (changes <-chan struct{}, stop func()) {
	return e.leading.Subscribe()
}

func (e *Elector) currentTerm() context.Context {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.term == nil || e.term.Err() != nil {
		return nil
	}
	return e.term
}

// Run takes part in the election until ctx ends, leading whenever it
// holds the lease, and meanwhile carries the DR state. On return the lease
// is released if held.
func (e *Elector) Run(ctx context.Context) error {
	last, err := e.state.follow(ctx, e.log, e.adopt)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.lastWritten = last
	e.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { e.writeStates(ctx) })
	defer wg.Wait()
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(e.electionConfig())
		if err != nil {
			return err
		}
		le.Run(ctx) // returns when the lease is lost or ctx ends
	}
	return nil
}

func (e *Elector) electionConfig() leaderelection.LeaderElectionConfig {
	renew := e.lease * 2 / 3
	return leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Name: e.leaseName, Namespace: e.ns},
			Client:     e.client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: e.id},
		},
		LeaseDuration:   e.lease,
		RenewDeadline:   renew,
		RetryPeriod:     e.lease * 2 / 15,
		ReleaseOnCancel: true,
		Name:            e.leaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: e.startTerm,
			OnStoppedLeading: e.endTerm,
			OnNewLeader:      func(id string) { e.log.Info("leader elected", "leader", id, "self", id == e.id) },
		},
	}
}
