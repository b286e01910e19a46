package main

import (
	"context"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"
)

// sotwStream speaks state-of-the-world ADS. Every request of a type carries
// the full name list and the last version and nonce seen for the type.
type sotwStream struct {
	node   *corev3.Node
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	names  map[string][]string
	last   map[string]adsResponse
}

func openSotW(ctx context.Context, conn grpc.ClientConnInterface, node *corev3.Node) (adsStream, error) {
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return nil, err
	}
	return &sotwStream{node: node, stream: stream, names: map[string][]string{}, last: map[string]adsResponse{}}, nil
}

func (s *sotwStream) subscribe(typeURL string, names []string) error {
	s.names[typeURL] = names
	return s.send(typeURL)
}

func (s *sotwStream) ack(r adsResponse) error {
	s.last[r.typeURL] = r
	return s.send(r.typeURL)
}

func (s *sotwStream) send(typeURL string) error {
	last := s.last[typeURL]
	return s.stream.Send(&discoveryv3.DiscoveryRequest{
		Node:          s.node,
		TypeUrl:       typeURL,
		ResourceNames: s.names[typeURL],
		VersionInfo:   last.version,
		ResponseNonce: last.nonce,
	})
}

func (s *sotwStream) recv() (adsResponse, error) {
	resp, err := s.stream.Recv()
	if err != nil {
		return adsResponse{}, err
	}
	r := adsResponse{
		typeURL:   resp.GetTypeUrl(),
		version:   resp.GetVersionInfo(),
		nonce:     resp.GetNonce(),
		resources: map[string]*anypb.Any{},
		replace:   true,
	}
	for _, a := range resp.GetResources() {
		m, err := a.UnmarshalNew()
		if err != nil {
			return adsResponse{}, err
		}
		r.resources[cache.GetResourceName(m)] = a
	}
	return r, nil
}

// deltaStream speaks incremental (Delta) ADS: requests carry only changes
// to the subscription, and responses only changed resources.
type deltaStream struct {
	node   *corev3.Node
	stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	names  map[string][]string
}

func openDelta(ctx context.Context, conn grpc.ClientConnInterface, node *corev3.Node) (adsStream, error) {
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		return nil, err
	}
	return &deltaStream{node: node, stream: stream, names: map[string][]string{}}, nil
}

func (d *deltaStream) subscribe(typeURL string, names []string) error {
	add, remove := diffNames(d.names[typeURL], names)
	d.names[typeURL] = names
	return d.stream.Send(&discoveryv3.DeltaDiscoveryRequest{
		Node:                     d.node,
		TypeUrl:                  typeURL,
		ResourceNamesSubscribe:   add,
		ResourceNamesUnsubscribe: remove,
	})
}

func (d *deltaStream) ack(r adsResponse) error {
	return d.stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: d.node, TypeUrl: r.typeURL, ResponseNonce: r.nonce})
}

func (d *deltaStream) recv() (adsResponse, error) {
	resp, err := d.stream.Recv()
	if err != nil {
		return adsResponse{}, err
	}
	r := adsResponse{
		typeURL:   resp.GetTypeUrl(),
		version:   resp.GetSystemVersionInfo(),
		nonce:     resp.GetNonce(),
		resources: map[string]*anypb.Any{},
		removed:   resp.GetRemovedResources(),
	}
	for _, res := range resp.GetResources() {
		r.resources[res.GetName()] = res.GetResource()
	}
	return r, nil
}

// diffNames returns the names in next but not in prev, and the reverse.
func diffNames(prev, next []string) (add, remove []string) {
	inPrev, inNext := toSet(prev), toSet(next)
	for _, n := range next {
		if !inPrev[n] {
			add = append(add, n)
		}
	}
	for _, n := range prev {
		if !inNext[n] {
			remove = append(remove, n)
		}
	}
	return add, remove
}

func toSet(names []string) map[string]bool {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	return set
}
