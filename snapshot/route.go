package snapshot

import (
	"math"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	previoushostsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	previousprioritiesv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/inferxds/inferxds/drpolicy"
)

// Retry extensions and their settings.
const (
	previousHostsPredicateName = "envoy.retry_host_predicates.previous_hosts"
	previousPrioritiesName     = "envoy.retry_priorities.previous_priorities"
	// previousPrioritiesUpdateFrequency is how many attempts pass before the
	// tried priorities are excluded again; 2 moves every retry to an untried
	// priority while a fresh request still starts at P0.
	previousPrioritiesUpdateFrequency = 2
	// hostSelectionRetryMaxAttempts is how often Envoy re-picks a host the
	// previous-hosts predicate rejects before taking it anyway.
	hostSelectionRetryMaxAttempts = 3
)

// routeConfiguration holds one virtual host with every model's routes, in
// the order given (models sorted by name).
func routeConfiguration(routes []*routev3.Route) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{
		Name: RouteConfigName,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    VirtualHostName,
			Domains: []string{"*"},
			Routes:  routes,
		}},
		MaxDirectResponseBodySizeBytes: directResponseLimit(routes),
	}
}

// envoyDirectResponseBodyLimit is the largest direct response body Envoy
// accepts when the route configuration does not raise the limit.
const envoyDirectResponseBodyLimit = 4096

// directResponseLimit raises Envoy's direct response body limit to the
// largest body the routes answer with (the model list grows with the
// policy: 2,000 models are about 140 KB), and leaves it unset while the
// default holds them all. Envoy rejects the whole route configuration
// otherwise.
func directResponseLimit(routes []*routev3.Route) *wrapperspb.UInt32Value {
	largest := 0
	for _, r := range routes {
		largest = max(largest, len(r.GetDirectResponse().GetBody().GetInlineString()))
	}
	if largest <= envoyDirectResponseBodyLimit {
		return nil
	}
	return wrapperspb.UInt32(uint32(largest))
}

// modelRoutes are a model's three routes: its header on any path (the one
// gRPC clients use), its HTTP path prefix, and OpenAI requests whose body
// names it. All carry the same action.
func modelRoutes(m drpolicy.Model) []*routev3.Route {
	action := routeAction(m)
	byHeader := &routev3.Route{
		Name: headerRouteName(m.Name),
		Match: &routev3.RouteMatch{
			PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"},
			Headers: []*routev3.HeaderMatcher{{
				Name: m.Routing.Header,
				HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
					MatchPattern: &matcherv3.StringMatcher_Exact{Exact: m.Name},
				}},
			}},
		},
		Action: &routev3.Route_Route{Route: action},
	}
	byPath := &routev3.Route{
		Name:   pathRouteName(m.Name),
		Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: m.Routing.PathPrefix}},
		Action: &routev3.Route_Route{Route: action},
	}
	return []*routev3.Route{byHeader, byPath, openAIRoute(m.Name, action)}
}

// routeAction bounds the whole request by the policy's timeout in a way
// both data planes honour: Envoy reads timeout, gRPC clients read only
// max_stream_duration (and cap a client's grpc-timeout with
// grpc_timeout_header_max, as Envoy does).
func routeAction(m drpolicy.Model) *routev3.RouteAction {
	timeout := durationpb.New(m.Timeout.D())
	a := &routev3.RouteAction{
		ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: ClusterName(m.Name)},
		Timeout:          timeout,
		MaxStreamDuration: &routev3.RouteAction_MaxStreamDuration{
			MaxStreamDuration:    timeout,
			GrpcTimeoutHeaderMax: timeout,
		},
		RetryPolicy: retryPolicy(m),
	}
	if m.Mirror != nil {
		a.RequestMirrorPolicies = []*routev3.RouteAction_RequestMirrorPolicy{mirrorPolicy(*m.Mirror)}
	}
	if m.LoadBalancing.Policy == drpolicy.LBRingHash {
		a.HashPolicy = []*routev3.RouteAction_HashPolicy{{
			PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{Header: &routev3.RouteAction_HashPolicy_Header{
				HeaderName: m.LoadBalancing.HashHeader,
			}},
		}}
	}
	return a
}

// retryPolicy is nil when the model does not retry: gRPC rejects a whole
// route configuration holding num_retries 0.
func retryPolicy(m drpolicy.Model) *routev3.RetryPolicy {
	r := m.Retries
	if r == nil || r.Attempts == 0 {
		return nil
	}
	p := &routev3.RetryPolicy{
		RetryOn:    strings.Join(r.RetryOn, ","),
		NumRetries: wrapperspb.UInt32(r.Attempts),
		RetryHostPredicate: []*routev3.RetryPolicy_RetryHostPredicate{{
			Name:       previousHostsPredicateName,
			ConfigType: &routev3.RetryPolicy_RetryHostPredicate_TypedConfig{TypedConfig: mustAny(&previoushostsv3.PreviousHostsPredicate{})},
		}},
		HostSelectionRetryMaxAttempts: hostSelectionRetryMaxAttempts,
	}
	if d := perTryTimeout(m); d > 0 {
		p.PerTryTimeout = durationpb.New(d)
	}
	if r.NextPriority {
		p.RetryPriority = &routev3.RetryPolicy_RetryPriority{
			Name: previousPrioritiesName,
			ConfigType: &routev3.RetryPolicy_RetryPriority_TypedConfig{TypedConfig: mustAny(
				&previousprioritiesv3.PreviousPrioritiesConfig{UpdateFrequency: previousPrioritiesUpdateFrequency},
			)},
		}
	}
	return p
}

// perTryTimeout is the policy's per-try timeout, or else the model's rto
// when that is shorter than the whole request's timeout: an attempt that
// hangs longer than the model may be unavailable counts as a failed host
// and is retried elsewhere (and, as a local-origin timeout, counts toward
// outlier ejection). 0 leaves the attempt bounded by the route timeout only.
// gRPC clients ignore per-try timeouts; Envoy honours them.
func perTryTimeout(m drpolicy.Model) time.Duration {
	if d := m.Retries.PerTryTimeout.D(); d > 0 {
		return d
	}
	if rto := m.RTO.D(); rto > 0 && rto < m.Timeout.D() {
		return rto
	}
	return 0
}

func mirrorPolicy(m drpolicy.Mirror) *routev3.RouteAction_RequestMirrorPolicy {
	return &routev3.RouteAction_RequestMirrorPolicy{
		Cluster:         ClusterName(m.Model),
		RuntimeFraction: &corev3.RuntimeFractionalPercent{DefaultValue: fractionOf(m.Percent)},
	}
}

// fractionOf writes a percentage exactly: whole percentages over a hundred,
// others over a million (four decimal places).
func fractionOf(percent float64) *typev3.FractionalPercent {
	if percent == math.Trunc(percent) {
		return &typev3.FractionalPercent{Numerator: uint32(percent), Denominator: typev3.FractionalPercent_HUNDRED}
	}
	return &typev3.FractionalPercent{Numerator: uint32(math.Round(percent * 10000)), Denominator: typev3.FractionalPercent_MILLION}
}
