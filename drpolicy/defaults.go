package drpolicy

import "time"

// Defaults applied to every model that leaves a setting out.
const (
	DefaultRoutingHeader = "model-name"
	DefaultTimeout       = 30 * time.Second
)

// DefaultPathPrefix is the path every model answers under.
func DefaultPathPrefix(model string) string { return "/v1/models/" + model + "/" }

// ApplyDefaults fills what the files left out, in place. Loading calls it;
// it is exported for callers that build a Policy in code.
func (p *Policy) ApplyDefaults() {
	for i := range p.Models {
		p.Models[i].applyDefaults()
	}
	if p.AZFailover != nil {
		p.AZFailover.applyDefaults()
	}
	if p.TenantAuth != nil && p.TenantAuth.JWT != nil && p.TenantAuth.JWT.TenantClaim == "" {
		p.TenantAuth.JWT.TenantClaim = DefaultTenantClaim
	}
}

// DefaultTenantClaim is the JWT claim naming the caller's tenant.
const DefaultTenantClaim = "tenant"

func (m *Model) applyDefaults() {
	if m.Priority == "" {
		m.Priority = CriticalityNormal
	}
	if m.Routing.Header == "" {
		m.Routing.Header = DefaultRoutingHeader
	}
	if m.Routing.PathPrefix == "" {
		m.Routing.PathPrefix = DefaultPathPrefix(m.Name)
	}
	if m.LoadBalancing.Policy == "" {
		m.LoadBalancing.Policy = LBRoundRobin
	}
	if m.Timeout == 0 {
		m.Timeout = Duration(DefaultTimeout)
	}
	if m.Retries == nil {
		m.Retries = &Retries{
			Attempts:     2,
			RetryOn:      []string{"connect-failure", "refused-stream", "reset", "unavailable", "gateway-error"},
			NextPriority: true,
		}
	}
	if m.DeepProbe != nil && m.DeepProbe.MaxTokens == 0 {
		m.DeepProbe.MaxTokens = DefaultDeepProbeMaxTokens
	}
	if m.OutlierDetection == nil {
		m.OutlierDetection = &OutlierDetection{
			Consecutive5xx:           5,
			ConsecutiveGatewayErrors: 3,
			Interval:                 Duration(5 * time.Second),
			BaseEjectionTime:         Duration(30 * time.Second),
			MaxEjectionPercent:       50,
			FailurePercentage:        &FailurePercentage{Threshold: 85, MinimumHosts: 2, RequestVolume: 20},
		}
	}
}

// Zone-failover defaults: the seed's health-check cadence and threshold.
const (
	DefaultHealthCheckInterval = 10 * time.Second
	DefaultFailoverThreshold   = 3
)

func (a *AZFailover) applyDefaults() {
	if a.HealthCheckInterval == 0 {
		a.HealthCheckInterval = Duration(DefaultHealthCheckInterval)
	}
	if a.FailoverThreshold == 0 {
		a.FailoverThreshold = DefaultFailoverThreshold
	}
}
