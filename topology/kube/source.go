package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/inferxds/inferxds/topology"
)

// Config says what a Source watches.
type Config struct {
	Client kubernetes.Interface
	// Namespaces whose Pods, Deployments and EndpointSlices are watched;
	// none: all.
	Namespaces []string
	// PodSelector, a label selector, narrows the Pods and Deployments
	// watched (and cached); empty: all of the namespaces'.
	PodSelector string
	Options     Options
	// SyncTimeout bounds Start's wait for the first full lists; zero
	// waits until ctx ends.
	SyncTimeout time.Duration
}

// Source follows Pods, Deployments, EndpointSlices and Nodes through
// shared informers and maps them into fleets (FleetFrom).
type Source struct {
	mu sync.Mutex
	// opts is guarded by mu: SetStandbyZones changes it while Run builds.
	opts        Options
	pods        []cacheLister[*corev1.Pod]
	deployments []cacheLister[*appsv1.Deployment]
	slices      []cacheLister[*discoveryv1.EndpointSlice]
	nodes       cacheLister[*corev1.Node]
	factories   []informers.SharedInformerFactory
	// changed holds one pending wake-up: events that come while a fleet
	// is built coalesce into the next build.
	changed     chan struct{}
	syncTimeout time.Duration
	// client and namespaces are kept to say why caches did not sync.
	client     kubernetes.Interface
	namespaces []string
	// last is the build last handed on (by Start, then by Run).
	last result
}

// cacheLister lists one informer's cached objects.
type cacheLister[T any] interface {
	List(labels.Selector) ([]T, error)
}

// NewSource sets up the informers; Start starts them.
func NewSource(cfg Config) (*Source, error) {
	if cfg.Client == nil {
		return nil, errors.New("kube source: no API client")
	}
	if err := cfg.Options.withDefaults().Labels.Validate(); err != nil {
		return nil, err
	}
	if _, err := labels.Parse(cfg.PodSelector); err != nil {
		return nil, fmt.Errorf("pod selector %q: %w", cfg.PodSelector, err)
	}
	s := &Source{opts: cfg.Options, changed: make(chan struct{}, 1), syncTimeout: cfg.SyncTimeout, client: cfg.Client, namespaces: cfg.Namespaces}
	if len(s.namespaces) == 0 {
		s.namespaces = []string{corev1.NamespaceAll}
	}
	selectPods := informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = cfg.PodSelector })
	for _, ns := range s.namespaces {
		podFactory := s.factory(cfg.Client, informers.WithNamespace(ns), selectPods)
		s.pods = append(s.pods, watched(s, podFactory.Core().V1().Pods()))
		s.deployments = append(s.deployments, watched(s, podFactory.Apps().V1().Deployments()))
		sliceFactory := s.factory(cfg.Client, informers.WithNamespace(ns))
		s.slices = append(s.slices, watched(s, sliceFactory.Discovery().V1().EndpointSlices()))
	}
	s.nodes = watched(s, s.factory(cfg.Client).Core().V1().Nodes())
	return s, nil
}

func (s *Source) factory(client kubernetes.Interface, opts ...informers.SharedInformerOption) informers.SharedInformerFactory {
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, append(opts, informers.WithTransform(dropManagedFields))...)
	s.factories = append(s.factories, f)
	return f
}

// informerLister is what the generated informers of each kind offer.
type informerLister[L any] interface {
	Informer() cache.SharedIndexInformer
	Lister() L
}

// watched registers the informer with its factory, wakes s on every
// event, and returns its lister.
func watched[L any](s *Source, i informerLister[L]) L {
	informer := i.Informer()
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.wake() },
		UpdateFunc: func(any, any) { s.wake() },
		DeleteFunc: func(any) { s.wake() },
	})
	return i.Lister()
}

func (s *Source) wake() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// dropManagedFields keeps the server-side apply bookkeeping out of the
// caches: the mapping never reads it.
func dropManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// Start starts the informers, waits until every cache holds a full list,
// so that no fleet is built from half-synced caches, and returns the first
// fleet with its problems (see FleetFrom). The fleet is nil when the caches
// did not sync before ctx ended. The informers stop when ctx ends.
func (s *Source) Start(ctx context.Context) (*topology.Fleet, error) {
	wait := ctx
	if s.syncTimeout > 0 {
		var cancel context.CancelFunc
		wait, cancel = context.WithTimeoutCause(ctx, s.syncTimeout, fmt.Errorf("no answer within %v", s.syncTimeout))
		defer cancel()
	}
	for _, f := range s.factories {
		f.Start(ctx.Done())
		for _, ok := range f.WaitForCacheSync(wait.Done()) {
			if !ok {
				return nil, s.syncError(wait)
			}
		}
	}
	s.last = newResult(s.build())
	return s.last.fleet, s.last.err
}

// syncError says that the caches did not sync and, from one plain list
// of each kind, why: the API server cannot be reached, or refuses the
// credentials or the RBAC permissions.
func (s *Source) syncError(wait context.Context) error {
	err := fmt.Errorf("kube source: the API server's Pods, Deployments, EndpointSlices and Nodes could not be listed: %w", context.Cause(wait))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(wait), probeTimeout)
	defer cancel()
	one := metav1.ListOptions{Limit: 1}
	ns := s.namespaces[0]
	_, podsErr := s.client.CoreV1().Pods(ns).List(ctx, one)
	_, deploymentsErr := s.client.AppsV1().Deployments(ns).List(ctx, one)
	_, slicesErr := s.client.DiscoveryV1().EndpointSlices(ns).List(ctx, one)
	_, nodesErr := s.client.CoreV1().Nodes().List(ctx, one)
	if why := errors.Join(podsErr, deploymentsErr, slicesErr, nodesErr); why != nil {
		err = fmt.Errorf("%w\n%w", err, why)
	}
	return err
}

// probeTimeout bounds the lists that say why the caches did not sync.
const probeTimeout = 5 * time.Second

// Run hands fn each new fleet (and its problems, see FleetFrom) after the
// watched objects change, until ctx ends; call it after Start. Events that
// come while a fleet is built are coalesced into the next build, and a
// result equal to the last one is not handed on: Nodes' heartbeats change
// nothing the fleet shows.
func (s *Source) Run(ctx context.Context, fn func(*topology.Fleet, error)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.changed:
		}
		if next := newResult(s.build()); !next.equal(s.last) {
			s.last = next
			fn(next.fleet, next.err)
		}
	}
}

// Watch starts a Source, hands fn the first fleet once the caches have
// synced, then runs it until ctx ends. It returns nil when ctx ends, or
// the error that prevented watching.
func Watch(ctx context.Context, cfg Config, fn func(*topology.Fleet, error)) error {
	s, err := NewSource(cfg)
	if err != nil {
		return err
	}
	f, err := s.Start(ctx)
	if f == nil && ctx.Err() != nil {
		return nil
	}
	fn(f, err)
	s.Run(ctx, fn)
	return nil
}

// result is one build: a fleet and the problems beside it.
type result struct {
	fleet *topology.Fleet
	err   error
}

func newResult(f *topology.Fleet, err error) result { return result{fleet: f, err: err} }

func (r result) equal(o result) bool {
	return r.fleet.Equal(o.fleet) && errorText(r.err) == errorText(o.err)
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// build maps what the caches hold now (see FleetFrom).
func (s *Source) build() (*topology.Fleet, error) {
	pods, err := listAll(s.pods)
	if err != nil {
		return nil, err
	}
	deployments, err := listAll(s.deployments)
	if err != nil {
		return nil, err
	}
	endpointSlices, err := listAll(s.slices)
	if err != nil {
		return nil, err
	}
	nodes, err := s.nodes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	opts := s.opts
	s.mu.Unlock()
	return FleetFrom(pods, deployments, endpointSlices, nodes, opts)
}

// SetStandbyZones replaces Options.StandbyZones, for a policy whose
// standby zone changed, and has Run hand on the fleet it gives.
func (s *Source) SetStandbyZones(zones []string) {
	s.mu.Lock()
	s.opts.StandbyZones = slices.Clone(zones)
	s.mu.Unlock()
	s.wake()
}

func listAll[T any](listers []cacheLister[T]) ([]T, error) {
	var all []T
	for _, l := range listers {
		objs, err := l.List(labels.Everything())
		if err != nil {
			return nil, err
		}
		all = append(all, objs...)
	}
	return all, nil
}
