package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/inferxds/inferxds/snapshot"
)

// adsStream is one ADS stream, state-of-the-world or Delta, seen as a
// proxy sees it. Names nil subscribes to every resource of the type.
type adsStream interface {
	subscribe(typeURL string, names []string) error
	recv() (adsResponse, error)
	ack(adsResponse) error
}

// adsResponse is one response in either protocol's terms. A state-of-the-
// world response replaces the type's resources; a Delta one updates them.
type adsResponse struct {
	typeURL   string
	version   string
	nonce     string
	resources map[string]*anypb.Any
	removed   []string
	replace   bool
}

// typeState is what the client holds for one resource type.
type typeState struct {
	version   string
	resources map[string]*anypb.Any
}

// adsFetch subscribes like a proxy: listeners and clusters by wildcard, then
// the routes and endpoints they name. It collects until every subscribed
// type has arrived and quiet has passed without news.
type adsFetch struct {
	stream     adsStream
	quiet      time.Duration
	state      map[string]*typeState
	subscribed map[string][]string
}

func fetchResources(ctx context.Context, stream adsStream, quiet time.Duration) (map[string]*typeState, error) {
	f := &adsFetch{stream: stream, quiet: quiet, state: map[string]*typeState{}, subscribed: map[string][]string{}}
	return f.state, f.run(ctx)
}

func (f *adsFetch) run(ctx context.Context) error {
	responses, errs := f.receive(ctx)
	for _, typeURL := range []string{resource.ListenerType, resource.ClusterType} {
		if err := f.subscribe(typeURL, nil); err != nil {
			return f.streamError(ctx, err, errs)
		}
	}
	quiet := time.NewTimer(f.quiet)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return f.incomplete(ctx.Err())
		case err := <-errs:
			return f.incomplete(err)
		case r := <-responses:
			if err := f.handle(r); err != nil {
				return f.streamError(ctx, err, errs)
			}
			quiet.Reset(f.quiet)
		case <-quiet.C:
			if len(f.missing()) == 0 {
				return nil
			}
		}
	}
}

// receive moves responses from the blocking stream onto a channel until ctx
// ends or the stream fails.
func (f *adsFetch) receive(ctx context.Context) (<-chan adsResponse, <-chan error) {
	responses, errs := make(chan adsResponse), make(chan error, 1)
	go func() {
		for {
			r, err := f.stream.recv()
			if err != nil {
				errs <- err
				return
			}
			select {
			case responses <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	return responses, errs
}

// streamError is err, or, when a send found the stream ended (io.EOF),
// the status the server ended it with (a refusal, say), which only the
// receiving side is given.
func (f *adsFetch) streamError(ctx context.Context, err error, errs <-chan error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	select {
	case recvErr := <-errs:
		return f.incomplete(recvErr)
	case <-ctx.Done():
		return f.incomplete(err)
	}
}

func (f *adsFetch) handle(r adsResponse) error {
	st := f.state[r.typeURL]
	if st == nil || r.replace {
		st = &typeState{resources: map[string]*anypb.Any{}}
		f.state[r.typeURL] = st
	}
	st.version = r.version
	maps.Copy(st.resources, r.resources)
	for _, name := range r.removed {
		delete(st.resources, name)
	}
	if err := f.stream.ack(r); err != nil {
		return err
	}
	return f.followReferences(r.typeURL, st)
}

// followReferences subscribes to the routes listeners name and the
// endpoints clusters name, when those sets change.
func (f *adsFetch) followReferences(typeURL string, st *typeState) error {
	var refType string
	var names []string
	var err error
	switch typeURL {
	case resource.ListenerType:
		refType = resource.RouteType
		names, err = referencedNames(st, routeConfigNames)
	case resource.ClusterType:
		refType = resource.EndpointType
		names, err = referencedNames(st, edsServiceNames)
	default:
		return nil
	}
	if err != nil || len(names) == 0 || slices.Equal(names, f.subscribed[refType]) {
		return err
	}
	return f.subscribe(refType, names)
}

func (f *adsFetch) subscribe(typeURL string, names []string) error {
	f.subscribed[typeURL] = names
	return f.stream.subscribe(typeURL, names)
}

// missing lists the subscribed types that have not arrived yet.
func (f *adsFetch) missing() []string {
	var out []string
	for _, typeURL := range slices.Sorted(maps.Keys(f.subscribed)) {
		if f.state[typeURL] == nil {
			out = append(out, typeURL)
		}
	}
	return out
}

func (f *adsFetch) incomplete(cause error) error {
	if missing := f.missing(); len(missing) > 0 {
		return fmt.Errorf("%w; nothing received for %s", cause, strings.Join(missing, ", "))
	}
	if errors.Is(cause, context.DeadlineExceeded) {
		return fmt.Errorf("%w; responses were still arriving", cause)
	}
	return cause
}

// referencedNames decodes every resource of st and returns, sorted, the
// names refs finds in them.
func referencedNames[M proto.Message](st *typeState, refs func(M) []string) ([]string, error) {
	seen := map[string]bool{}
	for _, a := range st.resources {
		m, err := a.UnmarshalNew()
		if err != nil {
			return nil, err
		}
		typed, ok := m.(M)
		if !ok {
			return nil, fmt.Errorf("unexpected resource type %s", a.GetTypeUrl())
		}
		for _, n := range refs(typed) {
			seen[n] = true
		}
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// routeConfigNames are the RDS names a listener's HTTP connection managers
// use, in filter chains and in an API listener.
func routeConfigNames(l *listenerv3.Listener) []string {
	var names []string
	for _, hcm := range connectionManagers(l) {
		if n := hcm.GetRds().GetRouteConfigName(); n != "" {
			names = append(names, n)
		}
	}
	return names
}

func connectionManagers(l *listenerv3.Listener) []*hcmv3.HttpConnectionManager {
	var out []*hcmv3.HttpConnectionManager
	chains := append(slices.Clone(l.GetFilterChains()), l.GetDefaultFilterChain())
	for _, chain := range chains {
		for _, filter := range chain.GetFilters() {
			if hcm := resource.GetHTTPConnectionManager(filter); hcm != nil {
				out = append(out, hcm)
			}
		}
	}
	var api hcmv3.HttpConnectionManager
	if l.GetApiListener().GetApiListener().UnmarshalTo(&api) == nil {
		out = append(out, &api)
	}
	return out
}

// edsServiceNames is the EDS name of an EDS cluster.
func edsServiceNames(c *clusterv3.Cluster) []string {
	if c.GetType() != clusterv3.Cluster_EDS {
		return nil
	}
	return []string{cmp.Or(c.GetEdsClusterConfig().GetServiceName(), c.GetName())}
}

// nodeOf is the identity dump presents, as a proxy's bootstrap would. It
// asks for the view of every client kind (both listeners), as plan shows.
func nodeOf(id, zone string) *corev3.Node {
	return &corev3.Node{
		Id: id, Cluster: "inferxds-dump", Locality: &corev3.Locality{Zone: zone},
		Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{"client": structpb.NewStringValue(snapshot.ClientAll.String())}},
	}
}
