package snapshot

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
)

// Translate computes what the node group (a zone name; "" for nodes without
// one) receives from the fleet and the policy, validated and versioned.
//
// Models are declared by the policy: each gets a cluster, a load assignment
// (empty when nothing serves it) and two routes. Instances of models the
// policy does not name are ignored. A nil fleet or policy counts as empty.
//
// On any error Translate returns nil and every problem found, joined: one
// bad model does not hide another's problems. The caller keeps its last good
// snapshot.
func Translate(fleet *topology.Fleet, pol *drpolicy.Policy, group string, opts ...Option) (*Resources, error) {
	return NewTranslator(opts...).Translate(fleet, pol, group)
}

// Translator is Translate with memory: it keeps each group's last
// per-model resources and reuses them when that model's inputs are equal, so
// one endpoint changing rebuilds one load assignment. Its output is exactly
// Translate's for the same inputs. It is safe for concurrent use; calls are
// serialized.
type Translator struct {
	opts Options

	mu        sync.Mutex
	listeners *listenerSet
	groups    map[string]*groupCache
	// Scratch space reused across calls; nothing cached points into it.
	policyKey  []byte
	placements []placement
	inputs     []endpointInput
}

// NewTranslator returns a Translator with an empty cache.
func NewTranslator(opts ...Option) *Translator {
	return &Translator{opts: buildOptions(opts), groups: make(map[string]*groupCache)}
}

type listenerSet struct {
	listeners []*listenerv3.Listener
	version   string
	err       error
}

type groupCache struct {
	models map[string]*modelEntry
	routes *routeEntry
}

// modelEntry is one model's resources in one group. Its policy part and its
// endpoint part are cached apart: an endpoint change keeps the cluster and
// routes (the same pointers), a policy change keeps the load assignment.
type modelEntry struct {
	policy    *policyPart
	endpoints *endpointPart
}

type policyPart struct {
	model      string
	key        []byte // appendCanonical of the model's policy
	cluster    *clusterv3.Cluster
	routes     []*routev3.Route
	clusterSum digest
}

type endpointPart struct {
	inputs []endpointInput
	cla    *endpointv3.ClusterLoadAssignment
	sum    digest
}

// routeEntry is the route configuration built from a sequence of policy
// parts; the same parts (by identity) give the same configuration, the same
// clusters and load-assignment names, and so the same reference check.
type routeEntry struct {
	parts   []*policyPart
	config  *routev3.RouteConfiguration
	sum     digest
	err     error
	checked bool
	refErr  error
}

// Translate is the package-level Translate, reusing what it can.
func (t *Translator) Translate(fleet *topology.Fleet, pol *drpolicy.Policy, group string) (*Resources, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fleet == nil {
		fleet = &topology.Fleet{}
	}
	if pol == nil {
		pol = &drpolicy.Policy{}
	}
	view := newZoneView(fleet, group)
	models, err := sortedModels(pol.Models)
	errs := []error{err, checkZoneAgreement(fleet.Zones, view.roles, pol.AZFailover)}
	inputs, inputErrs := t.endpointInputs(fleet, models, view)
	gc := t.group(group)
	entries, modelErrs := t.modelEntries(gc, models, inputs, inputErrs)
	errs = append(errs, modelErrs...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t.assemble(gc, entries)
}

func (t *Translator) group(name string) *groupCache {
	gc, ok := t.groups[name]
	if !ok {
		gc = &groupCache{models: make(map[string]*modelEntry)}
		t.groups[name] = gc
	}
	return gc
}

// sortedModels points at the models in name order, rejecting names used
// twice.
func sortedModels(models []drpolicy.Model) ([]*drpolicy.Model, error) {
	sorted := make([]*drpolicy.Model, len(models))
	for i := range models {
		sorted[i] = &models[i]
	}
	slices.SortStableFunc(sorted, func(a, b *drpolicy.Model) int { return cmp.Compare(a.Name, b.Name) })
	var errs []error
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Name == sorted[i-1].Name {
			errs = append(errs, fmt.Errorf("model %q is declared twice", sorted[i].Name))
		}
	}
	return sorted, errors.Join(errs...)
}

// checkZoneAgreement holds the policy's az_failover to the fleet's zone
// roles: every active zone it names is an active fleet zone and the other
// way round, and its standby zone is the fleet's standby zone.
func checkZoneAgreement(zones []topology.Zone, roles map[string]topology.ZoneRole, az *drpolicy.AZFailover) error {
	if az == nil {
		return nil
	}
	var errs []error
	for _, z := range zones {
		named := slices.Contains(az.ActiveZones, z.Name)
		switch {
		case z.Role == topology.ZoneStandby && named:
			errs = append(errs, fmt.Errorf("az_failover lists %q as active; the fleet has it standby", z.Name))
		case z.Role == topology.ZoneStandby && az.StandbyZone != "" && z.Name != az.StandbyZone:
			errs = append(errs, fmt.Errorf("fleet zone %q is standby; az_failover's standby zone is %q", z.Name, az.StandbyZone))
		case z.Role != topology.ZoneStandby && !named:
			errs = append(errs, fmt.Errorf("fleet zone %q is active; az_failover's activeZones do not list it", z.Name))
		}
	}
	for _, name := range az.ActiveZones {
		if _, ok := roles[name]; !ok {
			errs = append(errs, fmt.Errorf("az_failover active zone %q is not a fleet zone", name))
		}
	}
	if role, ok := roles[az.StandbyZone]; az.StandbyZone != "" && (!ok || role != topology.ZoneStandby) {
		errs = append(errs, fmt.Errorf("az_failover standby zone %q is not a standby fleet zone", az.StandbyZone))
	}
	return errors.Join(errs...)
}

// placement is where an instance's endpoint goes: a model (by index; -1
// for none) and a class.
type placement struct {
	model int
	class tierClass
}

// endpointInputs collects the serving instances of declared models, one
// sub-slice per model in load-assignment order, and the instances it could
// not place. The sub-slices live in t's scratch space until the next call.
func (t *Translator) endpointInputs(f *topology.Fleet, models []*drpolicy.Model, view zoneView) ([][]endpointInput, map[string][]error) {
	index := make(map[string]int, len(models))
	for i, m := range models {
		index[m.Name] = i
	}
	errs := make(map[string][]error)
	starts := make([]int, len(models)+1)
	t.placements = t.placements[:0]
	for i := range f.Instances {
		in := &f.Instances[i]
		p := placement{model: -1}
		if m, declared := index[in.Model]; declared && in.Serving() {
			class, err := view.classify(in)
			if err != nil {
				errs[in.Model] = append(errs[in.Model], err)
			} else {
				p = placement{model: m, class: class}
				starts[m+1]++
			}
		}
		t.placements = append(t.placements, p)
	}
	for m := range models {
		starts[m+1] += starts[m]
	}
	t.inputs = slices.Grow(t.inputs[:0], starts[len(models)])[:starts[len(models)]]
	next := slices.Clone(starts)
	for i, p := range t.placements {
		if p.model >= 0 {
			t.inputs[next[p.model]] = newEndpointInput(&f.Instances[i], p.class)
			next[p.model]++
		}
	}
	byModel := make([][]endpointInput, len(models))
	for m := range models {
		byModel[m] = t.inputs[starts[m]:starts[m+1]:starts[m+1]]
		sortEndpointInputs(byModel[m])
	}
	return byModel, errs
}

// modelEntries builds or reuses each model's resources, in model order, and
// makes them the group's cache.
func (t *Translator) modelEntries(gc *groupCache, models []*drpolicy.Model, inputs [][]endpointInput, inputErrs map[string][]error) ([]*modelEntry, []error) {
	entries := make([]*modelEntry, 0, len(models))
	next := make(map[string]*modelEntry, len(models))
	var errs []error
	for i, m := range models {
		e, err := t.modelEntry(gc.models[m.Name], m, inputs[i])
		if err = errors.Join(append(inputErrs[m.Name], err)...); err != nil {
			errs = append(errs, fmt.Errorf("model %q: %w", m.Name, err))
			continue
		}
		entries = append(entries, e)
		next[m.Name] = e
	}
	gc.models = next
	return entries, errs
}

// modelEntry reuses what of prev the model's inputs leave unchanged.
func (t *Translator) modelEntry(prev *modelEntry, m *drpolicy.Model, eps []endpointInput) (*modelEntry, error) {
	if prev == nil {
		prev = &modelEntry{}
	}
	t.policyKey = appendCanonical(t.policyKey[:0], reflect.ValueOf(m).Elem())
	pp := prev.policy
	if pp == nil || !bytes.Equal(pp.key, t.policyKey) {
		var err error
		if pp, err = newPolicyPart(m, bytes.Clone(t.policyKey)); err != nil {
			return nil, err
		}
	}
	ep := prev.endpoints
	if ep == nil || !slices.Equal(ep.inputs, eps) {
		var err error
		if ep, err = newEndpointPart(ClusterName(m.Name), slices.Clone(eps)); err != nil {
			return nil, err
		}
	}
	if pp == prev.policy && ep == prev.endpoints {
		return prev, nil
	}
	return &modelEntry{policy: pp, endpoints: ep}, nil
}

func newPolicyPart(m *drpolicy.Model, key []byte) (*policyPart, error) {
	if err := checkModel(m); err != nil {
		return nil, err
	}
	c := modelCluster(*m)
	if err := validateResource("cluster", c.GetName(), c); err != nil {
		return nil, err
	}
	sum, err := digestOf(c)
	if err != nil {
		return nil, err
	}
	return &policyPart{model: m.Name, key: key, cluster: c, routes: modelRoutes(*m), clusterSum: sum}, nil
}

// checkModel rejects settings the builders cannot express faithfully.
func checkModel(m *drpolicy.Model) error {
	var errs []error
	if m.Name == "" {
		errs = append(errs, errors.New("a model needs a name"))
	}
	if m.LoadBalancing.Policy == drpolicy.LBRingHash && m.LoadBalancing.HashHeader == "" {
		errs = append(errs, errors.New("loadBalancing ring_hash needs a hashHeader"))
	}
	if !strings.HasPrefix(m.Routing.PathPrefix, "/") {
		errs = append(errs, fmt.Errorf("routing pathPrefix %q must start with /", m.Routing.PathPrefix))
	}
	if m.Mirror != nil && (m.Mirror.Percent <= 0 || m.Mirror.Percent > 100) {
		errs = append(errs, fmt.Errorf("mirror percent %v must be in (0, 100]", m.Mirror.Percent))
	}
	return errors.Join(errs...)
}

func newEndpointPart(cluster string, eps []endpointInput) (*endpointPart, error) {
	cla := loadAssignment(cluster, eps)
	if err := validateLoadAssignment(cla); err != nil {
		return nil, err
	}
	sum, err := digestOf(cla)
	if err != nil {
		return nil, err
	}
	return &endpointPart{inputs: eps, cla: cla, sum: sum}, nil
}

// assemble puts the per-model resources together with the listeners and
// the route configuration, checks references and computes versions.
func (t *Translator) assemble(gc *groupCache, entries []*modelEntry) (*Resources, error) {
	ls := t.listenerSet()
	rt := gc.routeEntry(entries)
	if err := errors.Join(ls.err, rt.err); err != nil {
		return nil, err
	}
	r := &Resources{
		Listeners: ls.listeners,
		Routes:    []*routev3.RouteConfiguration{rt.config},
		Clusters:  make([]*clusterv3.Cluster, len(entries)),
		Endpoints: make([]*endpointv3.ClusterLoadAssignment, len(entries)),
	}
	clusters, endpoints := newVersionHash(), newVersionHash()
	for i, e := range entries {
		r.Clusters[i], r.Endpoints[i] = e.policy.cluster, e.endpoints.cla
		clusters.add(e.policy.cluster.GetName(), e.policy.clusterSum)
		endpoints.add(e.endpoints.cla.GetClusterName(), e.endpoints.sum)
	}
	if !rt.checked {
		rt.refErr, rt.checked = checkReferences(r), true
	}
	if rt.refErr != nil {
		return nil, rt.refErr
	}
	routes := newVersionHash()
	routes.add(rt.config.GetName(), rt.sum)
	r.Versions = Versions{Listeners: ls.version, Routes: routes.version(), Clusters: clusters.version()}
	endpoints.dependOn(r.Versions.Clusters)
	r.Versions.Endpoints = endpoints.version()
	return r, nil
}

// listenerSet builds the listeners once: they depend on the options only.
func (t *Translator) listenerSet() *listenerSet {
	if t.listeners != nil {
		return t.listeners
	}
	ls := &listenerSet{listeners: buildListeners(t.opts)}
	version := newVersionHash()
	var errs []error
	for _, l := range ls.listeners {
		errs = append(errs, validateResource("listener", l.GetName(), l))
		sum, err := digestOf(l)
		errs = append(errs, err)
		version.add(l.GetName(), sum)
	}
	ls.err = errors.Join(errs...)
	ls.version = version.version()
	t.listeners = ls
	return ls
}

// routeEntry returns the route configuration for the entries' routes,
// rebuilding it only when some model's policy part changed.
func (gc *groupCache) routeEntry(entries []*modelEntry) *routeEntry {
	parts := make([]*policyPart, len(entries))
	for i, e := range entries {
		parts[i] = e.policy
	}
	if gc.routes != nil && slices.Equal(gc.routes.parts, parts) {
		return gc.routes
	}
	routes := make([]*routev3.Route, 0, 3*len(parts)+2)
	models := make([]string, len(parts))
	for i, p := range parts {
		routes = append(routes, p.routes...)
		models[i] = p.model
	}
	rc := routeConfiguration(append(routes, openAIFallbackRoutes(models)...))
	sum, err := digestOf(rc)
	gc.routes = &routeEntry{
		parts:  parts,
		config: rc,
		sum:    sum,
		err:    errors.Join(validateResource("route configuration", rc.GetName(), rc), err),
	}
	return gc.routes
}
