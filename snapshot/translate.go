package snapshot

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
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

// Translate computes what every client of a zone ("" for clients without
// one) receives from the fleet and the policy, validated and versioned: the
// ClientAll view of the zone, both listeners included.
//
// Models are declared by the policy: each gets a cluster, a load assignment
// (empty when nothing serves it) and two routes. Instances of models the
// policy does not name are ignored. A nil fleet or policy counts as empty.
//
// On any error Translate returns nil and every problem found, joined: one
// bad model does not hide another's problems. The caller keeps its last good
// snapshot.
func Translate(fleet *topology.Fleet, pol *drpolicy.Policy, zone string, opts ...Option) (*Resources, error) {
	return NewTranslator(opts...).Translate(fleet, pol, zone)
}

// Translator is Translate with memory: it keeps each zone's last
// per-model resources and reuses them when that model's inputs are equal, so
// one endpoint changing rebuilds, validates and hashes one load assignment.
// Its output is exactly Translate's for the same inputs. It is safe for
// concurrent use; calls are serialized.
type Translator struct {
	opts Options

	mu        sync.Mutex
	listeners *listenerSet
	groups    map[string]*groupCache // by zone
	fleet     fleetMemo
	// Scratch space reused across calls; nothing cached points into it.
	hashScratch [2][]byte // the cluster and endpoint version hashes' input
	policyKey   []byte
	inputs      []endpointInput
}

// NewTranslator returns a Translator with an empty cache.
func NewTranslator(opts ...Option) *Translator {
	return &Translator{opts: buildOptions(opts), groups: make(map[string]*groupCache)}
}

// listenerSet is every listener, validated and digested once; a view takes
// the ones its client kind carries.
type listenerSet struct {
	tenancyKey []byte
	listeners  []*listenerv3.Listener
	sums       []digest
	err        error
}

type groupCache struct {
	models   map[string]*modelEntry
	routes   *routeEntry
	fleetGen uint64 // the fleetMemo generation models were built at
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
	tenant     string // the model's owner, for tenancy routes
	key        []byte // appendCanonical of the model's policy
	cluster    *clusterv3.Cluster
	routes     []*routev3.Route
	clusterSum digest
	clusterHex string
}

type endpointPart struct {
	inputs []endpointInput // in fleet order
	cla    *endpointv3.ClusterLoadAssignment
	sum    digest
	hex    string
}

// routeEntry is the route configuration built from a sequence of policy
// parts; the same parts (by identity) give the same configuration, the same
// clusters and load-assignment names, and so the same reference check.
type routeEntry struct {
	parts      []*policyPart
	tenancyKey []byte
	// tenantClusters are the tenants' copies of the models' clusters;
	// tenantParts index, for each, the part (and entry) of its model.
	tenantClusters []*clusterv3.Cluster
	tenantSums     []digest
	tenantParts    []int
	config         *routev3.RouteConfiguration
	sum            digest
	hex            string
	err            error
	checked        bool
	refErr         error
}

// Translate is the package-level Translate, reusing what it can.
func (t *Translator) Translate(fleet *topology.Fleet, pol *drpolicy.Policy, zone string) (*Resources, error) {
	return t.TranslateView(fleet, pol, View{Zone: zone})
}

// TranslateView computes what the clients of view receive: Translate's
// resources for the view's zone, with only the listeners its client kind
// uses.
func (t *Translator) TranslateView(fleet *topology.Fleet, pol *drpolicy.Policy, view View) (*Resources, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fleet == nil {
		fleet = &topology.Fleet{}
	}
	if pol == nil {
		pol = &drpolicy.Policy{}
	}
	zones := newZoneView(fleet, view.Zone)
	models, err := sortedModels(pol.Models)
	errs := []error{err, checkZoneAgreement(fleet.Zones, zones.roles, pol.AZFailover)}
	t.fleet.observe(fleet)
	gc := t.group(view.Zone)
	inputs, inputErrs := t.endpointInputs(fleet, models, zones, gc)
	entries, modelErrs := t.modelEntries(gc, models, inputs, inputErrs)
	gc.fleetGen = t.fleet.gen
	errs = append(errs, modelErrs...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t.assemble(gc, entries, view.Client, newTenancy(pol))
}

// Forget drops what the Translator keeps for zone, once no view of it is
// served any more.
func (t *Translator) Forget(zone string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.groups, zone)
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

// endpointInputs collects, for each model whose instances changed since
// the group's models were built, its serving instances in fleet order, and
// the instances it could not place. A nil sub-slice means the model's
// endpoints are unchanged (a model without serving instances gets an empty
// one). The sub-slices live in t's scratch space until the next call; they
// are sorted into load-assignment order only when they differ.
func (t *Translator) endpointInputs(f *topology.Fleet, models []*drpolicy.Model, view zoneView, gc *groupCache) ([][]endpointInput, map[string][]error) {
	errs := make(map[string][]error)
	byModel := make([][]endpointInput, len(models))
	t.inputs = t.inputs[:0]
	for m, model := range models {
		if gc.models[model.Name] != nil && t.fleet.unchangedSince(gc.fleetGen, model.Name) {
			continue
		}
		start := len(t.inputs)
		for _, i := range t.fleet.byModel[model.Name] {
			in := &f.Instances[i]
			if !in.Serving() {
				continue
			}
			class, err := view.classify(in)
			if err != nil {
				errs[model.Name] = append(errs[model.Name], err)
				continue
			}
			t.inputs = append(t.inputs, newEndpointInput(in, class))
		}
		byModel[m] = t.inputs[start:len(t.inputs):len(t.inputs)]
		if byModel[m] == nil {
			byModel[m] = []endpointInput{} // changed, and empty
		}
	}
	return byModel, errs
}

// modelEntries builds or reuses each model's resources, in model order, and
// makes them the group's cache.
func (t *Translator) modelEntries(gc *groupCache, models []*drpolicy.Model, inputs [][]endpointInput, inputErrs map[string][]error) ([]*modelEntry, []error) {
	entries := make([]*modelEntry, 0, len(models))
	var errs []error
	for i, m := range models {
		e, err := t.modelEntry(gc.models[m.Name], m, inputs[i])
		if err = errors.Join(append(inputErrs[m.Name], err)...); err != nil {
			errs = append(errs, fmt.Errorf("model %q: %w", m.Name, err))
			delete(gc.models, m.Name)
			continue
		}
		entries = append(entries, e)
		gc.models[m.Name] = e
	}
	if len(gc.models) > len(entries) { // models left the policy
		maps.DeleteFunc(gc.models, func(name string, _ *modelEntry) bool {
			return !slices.ContainsFunc(models, func(m *drpolicy.Model) bool { return m.Name == name })
		})
	}
	return entries, errs
}

// modelEntry reuses what of prev the model's inputs leave unchanged; nil
// eps means its endpoints are unchanged.
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
	if eps != nil && (ep == nil || !slices.Equal(ep.inputs, eps)) {
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
	return &policyPart{model: m.Name, tenant: m.Tenant, key: key, cluster: c, routes: modelRoutes(*m), clusterSum: sum, clusterHex: sum.String()}, nil
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

// newEndpointPart keeps eps (in fleet order) and builds the load assignment
// from a sorted copy.
func newEndpointPart(cluster string, eps []endpointInput) (*endpointPart, error) {
	sorted := slices.Clone(eps)
	sortEndpointInputs(sorted)
	cla := loadAssignment(cluster, sorted)
	if err := validateLoadAssignment(cla); err != nil {
		return nil, err
	}
	sum, err := digestOf(cla)
	if err != nil {
		return nil, err
	}
	return &endpointPart{inputs: eps, cla: cla, sum: sum, hex: sum.String()}, nil
}

// assemble puts the per-model resources together with the client's
// listeners and the route configuration, checks references and computes
// versions. Every part was validated when it was built, so the result is
// marked validated.
func (t *Translator) assemble(gc *groupCache, entries []*modelEntry, client Client, ten *tenancy) (*Resources, error) {
	ls := t.listenerSet(ten)
	rt := gc.routeEntry(entries, ten)
	if err := errors.Join(ls.err, rt.err); err != nil {
		return nil, err
	}
	r := &Resources{
		Routes:    []*routev3.RouteConfiguration{rt.config},
		Clusters:  make([]*clusterv3.Cluster, len(entries)),
		Endpoints: make([]*endpointv3.ClusterLoadAssignment, len(entries)),
		Digests: Digests{
			Routes:    []string{rt.hex},
			Clusters:  make([]string, len(entries)),
			Endpoints: make([]string, len(entries)),
		},
		validated: true,
	}
	clusters, endpoints := newVersionHash(t.hashScratch[0]), newVersionHash(t.hashScratch[1])
	defer func() { t.hashScratch = [2][]byte{clusters.buf, endpoints.buf} }()
	for i, e := range entries {
		r.Clusters[i], r.Endpoints[i] = e.policy.cluster, e.endpoints.cla
		r.Digests.Clusters[i], r.Digests.Endpoints[i] = e.policy.clusterHex, e.endpoints.hex
		clusters.add(e.policy.cluster.GetName(), e.policy.clusterSum)
		endpoints.add(e.endpoints.cla.GetClusterName(), e.endpoints.sum)
	}
	for i, c := range rt.tenantClusters {
		r.Clusters = append(r.Clusters, c)
		r.Digests.Clusters = append(r.Digests.Clusters, rt.tenantSums[i].String())
		clusters.add(c.GetName(), rt.tenantSums[i])
		cla, sum, err := tenantLoadAssignment(entries[rt.tenantParts[i]].endpoints.cla, c.GetName())
		if err != nil {
			return nil, err
		}
		r.Endpoints = append(r.Endpoints, cla)
		r.Digests.Endpoints = append(r.Digests.Endpoints, sum.String())
		endpoints.add(cla.GetClusterName(), sum)
	}
	if !rt.checked {
		// Checked with every listener, so the result holds for each view.
		all := *r
		all.Listeners = ls.listeners
		rt.refErr, rt.checked = checkReferences(&all), true
	}
	if rt.refErr != nil {
		return nil, rt.refErr
	}
	listeners := newVersionHash(nil)
	for i, l := range ls.listeners {
		if client.carries(l.GetName()) {
			r.Listeners = append(r.Listeners, l)
			r.Digests.Listeners = append(r.Digests.Listeners, ls.sums[i].String())
			listeners.add(l.GetName(), ls.sums[i])
		}
	}
	routes := newVersionHash(nil)
	routes.add(rt.config.GetName(), rt.sum)
	r.Versions = Versions{Listeners: listeners.version(), Routes: routes.version(), Clusters: clusters.version()}
	endpoints.dependOn(r.Versions.Clusters)
	r.Versions.Endpoints = endpoints.version()
	return r, nil
}

// listenerSet builds the listeners once for the options and each tenancy.
func (t *Translator) listenerSet(ten *tenancy) *listenerSet {
	if t.listeners != nil && bytes.Equal(t.listeners.tenancyKey, ten.keyOf()) {
		return t.listeners
	}
	ls := &listenerSet{tenancyKey: ten.keyOf(), listeners: buildListeners(t.opts, ten)}
	var errs []error
	for _, l := range ls.listeners {
		errs = append(errs, validateResource("listener", l.GetName(), l))
		sum, err := digestOf(l)
		errs = append(errs, err)
		ls.sums = append(ls.sums, sum)
	}
	ls.err = errors.Join(errs...)
	t.listeners = ls
	return ls
}

// routeEntry returns the route configuration for the entries' routes,
// rebuilding it only when some model's policy part changed.
func (gc *groupCache) routeEntry(entries []*modelEntry, ten *tenancy) *routeEntry {
	parts := make([]*policyPart, len(entries))
	for i, e := range entries {
		parts[i] = e.policy
	}
	if gc.routes != nil && slices.Equal(gc.routes.parts, parts) && bytes.Equal(gc.routes.tenancyKey, ten.keyOf()) {
		return gc.routes
	}
	routes := make([]*routev3.Route, 0, 3*len(parts)+2)
	models := make([]string, len(parts))
	entry := &routeEntry{parts: parts, tenancyKey: ten.keyOf()}
	var errs []error
	for i, p := range parts {
		owner := &drpolicy.Model{Name: p.model, Tenant: p.tenant}
		routes = append(routes, ten.routes(owner, p.routes)...)
		models[i] = p.model
		for _, c := range ten.clusters(owner, p.cluster) {
			sum, err := digestOf(c)
			errs = append(errs, validateResource("cluster", c.GetName(), c), err)
			entry.tenantClusters, entry.tenantSums = append(entry.tenantClusters, c), append(entry.tenantSums, sum)
			entry.tenantParts = append(entry.tenantParts, i)
		}
	}
	rc := routeConfiguration(append(routes, openAIFallbackRoutes(models)...))
	sum, err := digestOf(rc)
	entry.config, entry.sum, entry.hex = rc, sum, sum.String()
	entry.err = errors.Join(append(errs, validateResource("route configuration", rc.GetName(), rc), err)...)
	gc.routes = entry
	return gc.routes
}
