package snapshot

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Envoy extension names for the filters the listeners use.
const (
	hcmFilterName    = "envoy.filters.network.http_connection_manager"
	routerFilterName = "envoy.filters.http.router"
)

// buildListeners returns the API listener for gRPC proxyless clients and the
// socket listener for Envoy, in name order. Only the socket listener
// enforces tenancy (nil: none).
func buildListeners(o Options, ten *tenancy) []*listenerv3.Listener {
	return []*listenerv3.Listener{apiListener(), socketListener(o, ten)}
}

func socketListener(o Options, ten *tenancy) *listenerv3.Listener {
	filters := append(ten.filters(), jsonToMetadataFilter())
	return &listenerv3.Listener{
		Name:    SocketListenerName,
		Address: socketAddress(o.ListenAddress, o.ListenPort),
		FilterChains: []*listenerv3.FilterChain{{
			Filters: []*listenerv3.Filter{{
				Name:       hcmFilterName,
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(httpConnectionManager(SocketListenerName, filters...))},
			}},
		}},
	}
}

func apiListener() *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:        APIListenerName,
		ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(httpConnectionManager(APIListenerName))},
	}
}

// httpConnectionManager fetches RouteConfigName over ADS and runs filters
// before the router, which ends the chain as both Envoy and gRPC require.
// The API listener gets no other filter: gRPC clients reject filters they
// do not implement.
func httpConnectionManager(statPrefix string, filters ...*hcmv3.HttpFilter) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{
		StatPrefix: statPrefix,
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource:    adsConfigSource(),
			RouteConfigName: RouteConfigName,
		}},
		HttpFilters: append(filters, &hcmv3.HttpFilter{
			Name:       routerFilterName,
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})},
		}),
	}
}

// adsConfigSource points RDS and EDS at the ADS stream the client already has.
func adsConfigSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

func socketAddress(address string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       address,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// mustAny packs one of the fixed-shape extension configs this package builds.
// They hold no caller-supplied strings, so marshalling cannot fail.
func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic("snapshot: packing " + string(proto.MessageName(m)) + ": " + err.Error())
	}
	return a
}
