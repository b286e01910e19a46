package snapshot

import (
	"cmp"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/inferxds/inferxds/drpolicy"
)

const (
	// httpProtocolOptionsKey is the typed_extension_protocol_options key
	// Envoy reads upstream HTTP settings from.
	httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	connectTimeout         = 5 * time.Second
	// enforcingAlways makes an outlier rule eject every host it detects;
	// enforcingNever turns a rule off (Envoy enables success rate by default).
	enforcingAlways = 100
	enforcingNever  = 0
	// envoyDefaultMaxRequests is Envoy's max_requests when none is set.
	envoyDefaultMaxRequests = 1024
)

// modelCluster is the model's EDS cluster: defaults first, then what the
// policy sets.
func modelCluster(m drpolicy.Model) *clusterv3.Cluster {
	c := clusterDefaults(ClusterName(m.Name))
	setLoadBalancing(c, m.LoadBalancing)
	c.OutlierDetection = outlierDetection(m.OutlierDetection)
	c.CircuitBreakers = circuitBreakers(m.CircuitBreakers, m.Retries)
	return c
}

// clusterDefaults is an EDS-over-ADS cluster that speaks the downstream's
// HTTP version upstream, so both gRPC and HTTP/1.1 model servers work.
func clusterDefaults(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsConfigSource(), ServiceName: name},
		ConnectTimeout:       durationpb.New(connectTimeout),
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			httpProtocolOptionsKey: mustAny(downstreamProtocolOptions()),
		},
	}
}

// downstreamProtocolOptions makes Envoy speak to a model server in the
// protocol the client used: HTTP/2 for gRPC, HTTP/1.1 for the REST API that
// servers such as vLLM offer only over HTTP/1.1.
func downstreamProtocolOptions() *upstreamhttpv3.HttpProtocolOptions {
	return &upstreamhttpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_UseDownstreamProtocolConfig{
			UseDownstreamProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_UseDownstreamHttpConfig{
				HttpProtocolOptions:  &corev3.Http1ProtocolOptions{},
				Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
			},
		},
	}
}

func setLoadBalancing(c *clusterv3.Cluster, lb drpolicy.LoadBalancing) {
	switch lb.Policy {
	case drpolicy.LBLeastRequest:
		c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
	case drpolicy.LBRingHash:
		c.LbPolicy = clusterv3.Cluster_RING_HASH
		c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: ringHashConfig(lb.MinRingSize)}
	}
}

// ringHashConfig uses XX_HASH, the only hash gRPC clients accept.
func ringHashConfig(minRingSize uint64) *clusterv3.Cluster_RingHashLbConfig {
	cfg := &clusterv3.Cluster_RingHashLbConfig{HashFunction: clusterv3.Cluster_RingHashLbConfig_XX_HASH}
	if minRingSize > 0 {
		cfg.MinimumRingSize = wrapperspb.UInt64(minRingSize)
	}
	return cfg
}

// outlierDetection turns on exactly the rules the policy sets: each set rule
// is enforced on every detection, each unset rule is off.
func outlierDetection(od *drpolicy.OutlierDetection) *clusterv3.OutlierDetection {
	if od == nil {
		return nil
	}
	out := &clusterv3.OutlierDetection{
		Consecutive_5Xx:                    optionalUInt32(od.Consecutive5xx),
		EnforcingConsecutive_5Xx:           enforcing(od.Consecutive5xx > 0),
		ConsecutiveGatewayFailure:          optionalUInt32(od.ConsecutiveGatewayErrors),
		EnforcingConsecutiveGatewayFailure: enforcing(od.ConsecutiveGatewayErrors > 0),
		Interval:                           optionalDuration(od.Interval),
		BaseEjectionTime:                   optionalDuration(od.BaseEjectionTime),
		MaxEjectionPercent:                 optionalUInt32(od.MaxEjectionPercent),
		EnforcingSuccessRate:               enforcing(od.SuccessRate != nil),
		EnforcingFailurePercentage:         enforcing(od.FailurePercentage != nil),
	}
	if sr := od.SuccessRate; sr != nil {
		out.SuccessRateMinimumHosts = optionalUInt32(sr.MinimumHosts)
		out.SuccessRateRequestVolume = optionalUInt32(sr.RequestVolume)
		out.SuccessRateStdevFactor = optionalUInt32(sr.StdevFactor)
	}
	if fp := od.FailurePercentage; fp != nil {
		out.FailurePercentageThreshold = optionalUInt32(fp.Threshold)
		out.FailurePercentageMinimumHosts = optionalUInt32(fp.MinimumHosts)
		out.FailurePercentageRequestVolume = optionalUInt32(fp.RequestVolume)
	}
	return out
}

// circuitBreakers sets the default-priority thresholds. A retry budget, when
// the policy has one, replaces max_retries: Envoy ignores max_retries next
// to a budget, so it is not sent.
//
// A model that retries gets max_retries as large as max_requests unless the
// policy caps retries itself: Envoy's default of 3 concurrent retries per
// cluster fails every request beyond the third that loses its host at once,
// which is exactly what a primary crash under load does.
func circuitBreakers(cb *drpolicy.CircuitBreakers, retries *drpolicy.Retries) *clusterv3.CircuitBreakers {
	var budget *drpolicy.RetryBudget
	if retries != nil {
		budget = retries.Budget
	}
	retrying := retries != nil && retries.Attempts > 0
	if cb == nil && budget == nil && !retrying {
		return nil
	}
	if cb == nil {
		cb = &drpolicy.CircuitBreakers{}
	}
	t := &clusterv3.CircuitBreakers_Thresholds{
		Priority:           corev3.RoutingPriority_DEFAULT,
		MaxConnections:     optionalUInt32(cb.MaxConnections),
		MaxPendingRequests: optionalUInt32(cb.MaxPendingRequests),
		MaxRequests:        optionalUInt32(cb.MaxRequests),
		MaxRetries:         optionalUInt32(cb.MaxRetries),
	}
	switch {
	case budget != nil:
		t.MaxRetries = nil
		t.RetryBudget = &clusterv3.CircuitBreakers_Thresholds_RetryBudget{
			BudgetPercent:       &typev3.Percent{Value: budget.Percent},
			MinRetryConcurrency: optionalUInt32(budget.MinConcurrency),
		}
	case retrying && cb.MaxRetries == 0:
		t.MaxRetries = wrapperspb.UInt32(cmp.Or(cb.MaxRequests, envoyDefaultMaxRequests))
	}
	return &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{t}}
}

func enforcing(on bool) *wrapperspb.UInt32Value {
	if on {
		return wrapperspb.UInt32(enforcingAlways)
	}
	return wrapperspb.UInt32(enforcingNever)
}

// optionalUInt32 leaves a field unset (Envoy's default) for zero.
func optionalUInt32(v uint32) *wrapperspb.UInt32Value {
	if v == 0 {
		return nil
	}
	return wrapperspb.UInt32(v)
}

func optionalDuration(d drpolicy.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d.D())
}
