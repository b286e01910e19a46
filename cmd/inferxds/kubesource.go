package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
	"github.com/inferxds/inferxds/topology/kube"
)

// Fleet source kinds (--source).
const (
	sourceKindFile = "file"
	sourceKindKube = "kube"
)

// kubeConfig holds the settings of the fleet source, and of the Kubernetes
// one in particular.
type kubeConfig struct {
	Source           string        `mapstructure:"source"`
	Kubeconfig       string        `mapstructure:"kubeconfig"`
	KubeNamespaces   string        `mapstructure:"kubeNamespaces"`
	KubePodSelector  string        `mapstructure:"kubePodSelector"`
	KubeModelLabel   string        `mapstructure:"kubeModelLabel"`
	KubeTierLabel    string        `mapstructure:"kubeTierLabel"`
	KubeRoleLabel    string        `mapstructure:"kubeRoleLabel"`
	KubePortName     string        `mapstructure:"kubePortName"`
	KubeStandbyZones string        `mapstructure:"kubeStandbyZones"`
	KubeSyncTimeout  time.Duration `mapstructure:"kubeSyncTimeout"`
}

var kubeSettings = []setting{
	{"source", "source"},
	{"kubeconfig", "kubeconfig"},
	{"kube-namespaces", "kubeNamespaces"},
	{"kube-pod-selector", "kubePodSelector"},
	{"kube-model-label", "kubeModelLabel"},
	{"kube-tier-label", "kubeTierLabel"},
	{"kube-role-label", "kubeRoleLabel"},
	{"kube-port-name", "kubePortName"},
	{"kube-standby-zones", "kubeStandbyZones"},
	{"kube-sync-timeout", "kubeSyncTimeout"},
}

func addKubeFlags(f *pflag.FlagSet) {
	f.String("source", sourceKindFile, "where the fleet comes from: file (--fleet) or kube (Pods, Deployments, EndpointSlices and Nodes; needs --policy-dir)")
	f.String("kubeconfig", "", "kubeconfig file for --source kube (default: the in-cluster service account)")
	f.String("kube-namespaces", "", "comma-separated namespaces whose Pods, Deployments and EndpointSlices are watched (default: all)")
	f.String("kube-pod-selector", "", "label selector narrowing the Pods and Deployments watched and cached, e.g. "+kube.DefaultModelLabel+" (default: all of the namespaces')")
	f.String("kube-model-label", kube.DefaultModelLabel, "Pod label naming an instance's model")
	f.String("kube-tier-label", kube.DefaultTierLabel, "Pod label holding an instance's tier (hot, warm, cold)")
	f.String("kube-role-label", kube.DefaultRoleLabel, "Pod label holding an instance's role (primary, standby)")
	f.String("kube-port-name", kube.DefaultPortName, "serving port's name where a Pod or EndpointSlice has several")
	f.String("kube-standby-zones", "", "comma-separated standby zones where no Node says with "+kube.ZoneRoleLabel+" (default: the policy's az_failover standbyZone, followed as it changes)")
	f.Duration("kube-sync-timeout", time.Minute, "how long start-up waits for the first full list of Pods, Deployments, EndpointSlices and Nodes")
}

// kubeFleet is the running Kubernetes source and the problems of the
// first fleet it mapped.
type kubeFleet struct {
	source   *kube.Source
	problems error
}

// openKube loads the policy, then starts the Kubernetes source and waits
// for its first fleet; the source runs until ctx ends. A first fleet with
// problems (Pods left out) is served, and the problems reported.
func (s sources) openKube(ctx context.Context, logger *slog.Logger) (*topology.Fleet, *drpolicy.Policy, *kubeFleet, error) {
	pol, err := drpolicy.Load(s.policyDir)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg, err := s.kube.sourceConfig(pol)
	if err != nil {
		return nil, nil, nil, err
	}
	logClientGoTo(logger)
	src, err := kube.NewSource(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	fleet, problems := src.Start(ctx)
	if fleet == nil {
		return nil, nil, nil, problems
	}
	return fleet, pol, &kubeFleet{source: src, problems: problems}, nil
}

// clientGoLog carries client-go's log lines to the logger of the serve that
// runs now. klog's logger is process-wide and may be set only before any
// goroutine logs through it, so it is set once, to a handler that forwards
// to current; each serve swaps current instead.
var clientGoLog struct {
	once    sync.Once
	current atomic.Pointer[slog.Logger]
}

func logClientGoTo(logger *slog.Logger) {
	clientGoLog.current.Store(logger.With("component", "client-go"))
	clientGoLog.once.Do(func() { klog.SetSlogLogger(slog.New(currentLogHandler{})) })
}

// currentLogHandler is clientGoLog.current's handler with the attributes
// and groups client-go added (WithAttrs, WithGroup) applied.
type currentLogHandler struct {
	with []func(slog.Handler) slog.Handler
}

func (h currentLogHandler) handler() slog.Handler {
	out := clientGoLog.current.Load().Handler()
	for _, with := range h.with {
		out = with(out)
	}
	return out
}

func (h currentLogHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.handler().Enabled(ctx, level)
}

func (h currentLogHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.handler().Handle(ctx, r)
}

func (h currentLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.and(func(next slog.Handler) slog.Handler { return next.WithAttrs(attrs) })
}

func (h currentLogHandler) WithGroup(name string) slog.Handler {
	return h.and(func(next slog.Handler) slog.Handler { return next.WithGroup(name) })
}

func (h currentLogHandler) and(with func(slog.Handler) slog.Handler) currentLogHandler {
	return currentLogHandler{with: append(slices.Clip(h.with), with)}
}

// sourceConfig is the Kubernetes source's configuration. Without
// --kube-standby-zones, the policy's standby zone is the standby zone (and
// followKube keeps it so when the policy changes).
func (c kubeConfig) sourceConfig(pol *drpolicy.Policy) (kube.Config, error) {
	rest, err := kube.RESTConfig(c.Kubeconfig)
	if err != nil {
		return kube.Config{}, err
	}
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return kube.Config{}, fmt.Errorf("kubernetes client: %w", err)
	}
	standby := splitList(c.KubeStandbyZones)
	if len(standby) == 0 {
		standby = policyStandbyZones(pol)
	}
	return kube.Config{
		Client:      client,
		Namespaces:  splitList(c.KubeNamespaces),
		PodSelector: c.KubePodSelector,
		SyncTimeout: c.KubeSyncTimeout,
		Options: kube.Options{
			Labels:   kube.Labels{Model: c.KubeModelLabel, Tier: c.KubeTierLabel, Role: c.KubeRoleLabel},
			PortName: c.KubePortName, StandbyZones: standby,
		},
	}, nil
}

// splitList splits a comma-separated setting, dropping empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func (c kubeConfig) check(policyDir, fleetFile string) error {
	switch c.Source {
	case "", sourceKindFile:
		return nil
	case sourceKindKube:
		return errors.Join(
			errIf(fleetFile != "", "--fleet is for --source file; --source kube reads the fleet from the cluster"),
			errIf(policyDir == "", "--source kube needs --policy-dir"))
	}
	return fmt.Errorf("--source (%s) %q: must be file or kube", envName("source"), c.Source)
}

func errIf(cond bool, msg string) error {
	if cond {
		return errors.New(msg)
	}
	return nil
}

// followKube publishes each fleet the Kubernetes source maps, through the
// input guard, until ctx ends. A fleet with problems is published (it
// leaves out only the Pods named) and the problems are reported.
func (cp *controlPlane) followKube(ctx context.Context) error {
	cp.sourceResult(sourceFleet, cp.kube.problems)
	var wg sync.WaitGroup
	defer wg.Wait()
	if cp.cfg.KubeStandbyZones == "" {
		wg.Go(func() { cp.followStandbyZone(ctx) })
	}
	cp.kube.source.Run(ctx, func(f *topology.Fleet, problems error) {
		if f != nil {
			if err := cp.guard.admitFleet(f, ""); err != nil {
				f, problems = nil, errors.Join(problems, err)
			}
		}
		cp.sourceResult(sourceFleet, problems)
		if f != nil {
			cp.hub.Fleet.Publish(f)
		}
	})
	return nil
}

// followStandbyZone gives the Kubernetes source the standby zone of each
// policy the hub receives, until ctx ends.
func (cp *controlPlane) followStandbyZone(ctx context.Context) {
	cp.hub.Policy.Follow(ctx, func(pol *drpolicy.Policy) {
		cp.kube.source.SetStandbyZones(policyStandbyZones(pol))
	})
}

// policyStandbyZones is the policy's az_failover standby zone, if any.
func policyStandbyZones(pol *drpolicy.Policy) []string {
	if pol == nil || pol.AZFailover == nil || pol.AZFailover.StandbyZone == "" {
		return nil
	}
	return []string{pol.AZFailover.StandbyZone}
}
