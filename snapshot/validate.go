package snapshot

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// Validate checks resources before they may reach the cache: every
// resource's ValidateAll, also inside every Any it holds (the connection
// manager, its filters, retry extensions, upstream protocol options), and
// the references between them that neither Envoy's validation nor
// go-control-plane's consistency check covers: listener → route
// configuration → clusters (and mirror clusters) → load assignments, for
// socket and API listeners alike, plus what gRPC clients need of a load
// assignment (priorities 0..n without gaps, a located and positively weighted
// locality, no address twice). All problems are reported, joined.
//
// Resources a Translator returned pass at no cost: it validated each part
// when it built it and checked the references.
func Validate(r *Resources) error {
	if r.validated {
		return nil
	}
	var errs []error
	for _, l := range r.Listeners {
		errs = append(errs, validateResource("listener", l.GetName(), l))
	}
	for _, rc := range r.Routes {
		errs = append(errs, validateResource("route configuration", rc.GetName(), rc))
	}
	for _, c := range r.Clusters {
		errs = append(errs, validateResource("cluster", c.GetName(), c))
	}
	for _, cla := range r.Endpoints {
		errs = append(errs, validateLoadAssignment(cla))
	}
	errs = append(errs, checkReferences(r))
	return errors.Join(errs...)
}

func validateResource(kind, name string, m proto.Message) error {
	if err := validateMessage(m); err != nil {
		return fmt.Errorf("%s %q: %w", kind, name, err)
	}
	return nil
}

func validateLoadAssignment(cla *endpointv3.ClusterLoadAssignment) error {
	err := errors.Join(validateMessage(cla), checkLoadAssignment(cla))
	if err != nil {
		return fmt.Errorf("load assignment %q: %w", cla.GetClusterName(), err)
	}
	return nil
}

// validateMessage runs the message's generated ValidateAll and does the same
// for every Any inside it, which ValidateAll does not open.
func validateMessage(m proto.Message) error {
	var errs []error
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		errs = append(errs, v.ValidateAll())
	}
	errs = append(errs, validateAnysIn(m.ProtoReflect()))
	return errors.Join(errs...)
}

// validateAnysIn opens the set fields that can lead to an Any.
func validateAnysIn(m protoreflect.Message) error {
	var errs []error
	for _, fd := range anyCarryingFields(m.Descriptor()) {
		if !m.Has(fd) {
			continue
		}
		v := m.Get(fd)
		switch {
		case fd.IsMap():
			errs = append(errs, validateMapValues(v.Map()))
		case fd.IsList():
			for i := range v.List().Len() {
				errs = append(errs, validateNested(v.List().Get(i).Message()))
			}
		default:
			errs = append(errs, validateNested(v.Message()))
		}
	}
	return errors.Join(errs...)
}

// anyFieldsByType caches anyCarryingFields per message type.
var anyFieldsByType sync.Map // protoreflect.FullName → []protoreflect.FieldDescriptor

// anyCarryingFields are md's fields whose values can hold an Any at some
// depth. Visiting only these keeps validating ten thousand endpoints cheap.
func anyCarryingFields(md protoreflect.MessageDescriptor) []protoreflect.FieldDescriptor {
	if known, ok := anyFieldsByType.Load(md.FullName()); ok {
		return known.([]protoreflect.FieldDescriptor)
	}
	var carrying []protoreflect.FieldDescriptor
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		value := fd
		if fd.IsMap() {
			value = fd.MapValue()
		}
		if value.Message() != nil && reachesAny(value.Message(), map[protoreflect.FullName]bool{}) {
			carrying = append(carrying, fd)
		}
	}
	anyFieldsByType.Store(md.FullName(), carrying)
	return carrying
}

// validateMapValues visits map values in key order, so errors read the same
// on every run.
func validateMapValues(m protoreflect.Map) error {
	keys := make([]protoreflect.MapKey, 0, m.Len())
	m.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		keys = append(keys, k)
		return true
	})
	slices.SortFunc(keys, func(a, b protoreflect.MapKey) int { return cmp.Compare(a.String(), b.String()) })
	var errs []error
	for _, k := range keys {
		errs = append(errs, validateNested(m.Get(k).Message()))
	}
	return errors.Join(errs...)
}

func validateNested(m protoreflect.Message) error {
	a, ok := m.Interface().(*anypb.Any)
	if !ok {
		return validateAnysIn(m)
	}
	inner, err := a.UnmarshalNew()
	if err == nil {
		err = validateMessage(inner)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", a.GetTypeUrl(), err)
	}
	return nil
}

var anyFullName = (&anypb.Any{}).ProtoReflect().Descriptor().FullName()

// checkLoadAssignment holds a load assignment to what gRPC clients accept.
func checkLoadAssignment(cla *endpointv3.ClusterLoadAssignment) error {
	var errs []error
	seen := make(map[hostPort]bool)
	priorities := make(map[uint32]bool)
	for _, loc := range cla.GetEndpoints() {
		priorities[loc.GetPriority()] = true
		if loc.GetLocality() == nil {
			errs = append(errs, fmt.Errorf("priority %d: locality without a Locality", loc.GetPriority()))
		}
		if loc.GetLoadBalancingWeight().GetValue() == 0 {
			errs = append(errs, fmt.Errorf("priority %d zone %q: locality weight must be positive", loc.GetPriority(), loc.GetLocality().GetZone()))
		}
		for _, ep := range loc.GetLbEndpoints() {
			addr := endpointAddress(ep)
			if seen[addr] {
				errs = append(errs, fmt.Errorf("address %s:%d appears twice", addr.host, addr.port))
			}
			seen[addr] = true
		}
	}
	for p := range uint32(len(priorities)) {
		if !priorities[p] {
			errs = append(errs, fmt.Errorf("priorities skip %d: they must run 0..n without gaps", p))
			break
		}
	}
	return errors.Join(errs...)
}

type hostPort struct {
	host string
	port uint32
}

func endpointAddress(ep *endpointv3.LbEndpoint) hostPort {
	sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
	return hostPort{host: sa.GetAddress(), port: sa.GetPortValue()}
}

// checkReferences follows listener → route configuration → cluster → load
// assignment and reports every name that leads nowhere.
func checkReferences(r *Resources) error {
	_, listenerErr := nameSet("listener", r.Listeners, (*listenerv3.Listener).GetName)
	routes, routeErr := nameSet("route configuration", r.Routes, (*routev3.RouteConfiguration).GetName)
	clusters, clusterErr := nameSet("cluster", r.Clusters, (*clusterv3.Cluster).GetName)
	assignments, assignmentErr := nameSet("load assignment", r.Endpoints, (*endpointv3.ClusterLoadAssignment).GetClusterName)
	errs := []error{listenerErr, routeErr, clusterErr, assignmentErr}
	for _, l := range r.Listeners {
		errs = append(errs, checkListener(l, routes))
	}
	for _, rc := range r.Routes {
		errs = append(errs, checkRouteConfiguration(rc, clusters))
	}
	for _, c := range r.Clusters {
		if c.GetType() == clusterv3.Cluster_EDS && !assignments[edsServiceName(c)] {
			errs = append(errs, fmt.Errorf("cluster %q: no load assignment %q", c.GetName(), edsServiceName(c)))
		}
	}
	return errors.Join(errs...)
}

func edsServiceName(c *clusterv3.Cluster) string {
	if n := c.GetEdsClusterConfig().GetServiceName(); n != "" {
		return n
	}
	return c.GetName()
}

func checkListener(l *listenerv3.Listener, routes map[string]bool) error {
	var errs []error
	for _, hcm := range connectionManagers(l) {
		m := new(hcmv3.HttpConnectionManager)
		if err := hcm.UnmarshalTo(m); err != nil {
			errs = append(errs, fmt.Errorf("listener %q: http connection manager: %w", l.GetName(), err))
			continue
		}
		if name := m.GetRds().GetRouteConfigName(); !routes[name] {
			errs = append(errs, fmt.Errorf("listener %q: route configuration %q does not exist", l.GetName(), name))
		}
		if !routerLast(m.GetHttpFilters()) {
			errs = append(errs, fmt.Errorf("listener %q: the router must be the last HTTP filter", l.GetName()))
		}
	}
	return errors.Join(errs...)
}

// connectionManagers are the packed HTTP connection managers of a listener:
// in its filter chains (Envoy) and its API listener (gRPC).
func connectionManagers(l *listenerv3.Listener) []*anypb.Any {
	var hcms []*anypb.Any
	if a := l.GetApiListener().GetApiListener(); a != nil {
		hcms = append(hcms, a)
	}
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			if f.GetName() == hcmFilterName {
				hcms = append(hcms, f.GetTypedConfig())
			}
		}
	}
	return hcms
}

func routerLast(filters []*hcmv3.HttpFilter) bool {
	if len(filters) == 0 {
		return false
	}
	return filters[len(filters)-1].GetTypedConfig().MessageIs(&routerv3.Router{})
}

func checkRouteConfiguration(rc *routev3.RouteConfiguration, clusters map[string]bool) error {
	var errs []error
	for _, vh := range rc.GetVirtualHosts() {
		for _, rt := range vh.GetRoutes() {
			if rt.GetMatch().GetPathSpecifier() == nil {
				errs = append(errs, fmt.Errorf("route configuration %q: route %q: gRPC clients need a path match", rc.GetName(), rt.GetName()))
			}
			for _, c := range routeClusters(rt.GetRoute()) {
				if !clusters[c] {
					errs = append(errs, fmt.Errorf("route configuration %q: route %q: cluster %q does not exist", rc.GetName(), rt.GetName(), c))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// routeClusters are the clusters a route sends to or mirrors to.
func routeClusters(a *routev3.RouteAction) []string {
	var names []string
	if c := a.GetCluster(); c != "" {
		names = append(names, c)
	}
	for _, wc := range a.GetWeightedClusters().GetClusters() {
		names = append(names, wc.GetName())
	}
	for _, m := range a.GetRequestMirrorPolicies() {
		names = append(names, m.GetCluster())
	}
	return names
}

// nameSet is the set of the items' names, and an error for each name used
// twice.
func nameSet[T any](kind string, items []T, name func(T) string) (map[string]bool, error) {
	set := make(map[string]bool, len(items))
	var errs []error
	for _, it := range items {
		n := name(it)
		if set[n] {
			errs = append(errs, fmt.Errorf("%s %q appears twice", kind, n))
		}
		set[n] = true
	}
	return set, errors.Join(errs...)
}

// reachesAny searches the message types below md for Any. A type already
// visited adds nothing new, so the search ends on recursive types.
func reachesAny(md protoreflect.MessageDescriptor, visited map[protoreflect.FullName]bool) bool {
	if md.FullName() == anyFullName {
		return true
	}
	if visited[md.FullName()] {
		return false
	}
	visited[md.FullName()] = true
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.IsMap() {
			fd = fd.MapValue()
		}
		if fd.Message() != nil && reachesAny(fd.Message(), visited) {
			return true
		}
	}
	return false
}
