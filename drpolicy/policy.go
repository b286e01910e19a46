// Package drpolicy owns the per-model disaster-recovery and traffic policy:
// its schema, loading it from a directory of YAML files kept in Git, and
// validating it with errors that name file, line and field.
//
// A loaded Policy is normalized: defaults are filled in and every reference
// checked, so consumers (the translator, the DR planner) read it as is.
package drpolicy

import (
	"slices"
	"time"
)

// Policy is the whole policy directory, merged.
type Policy struct {
	Models     []Model     `json:"models" yaml:"models"`
	AZFailover *AZFailover `json:"az_failover,omitempty" yaml:"az_failover,omitempty"`
	Tenants    []Tenant    `json:"tenants,omitempty" yaml:"tenants,omitempty"`
	// TenantAuth identifies callers on the Envoy data path; without it the
	// tenants share the GPU pool but the data path does not tell them apart.
	TenantAuth *TenantAuth `json:"tenantAuth,omitempty" yaml:"tenantAuth,omitempty"`
}

// Criticality ranks models for recovery order and standby budgets.
type Criticality string

// Model criticalities, as the seed's dr-policy.yaml spells them.
const (
	CriticalityCritical Criticality = "critical"
	CriticalityHigh     Criticality = "high"
	CriticalityNormal   Criticality = "normal"
	CriticalityLow      Criticality = "low"
)

// Model is the policy for one model.
type Model struct {
	Name        string      `json:"name" yaml:"name"`
	Priority    Criticality `json:"priority,omitempty" yaml:"priority,omitempty"`
	HotStandby  int         `json:"hotStandby" yaml:"hotStandby"`
	WarmStandby int         `json:"warmStandby" yaml:"warmStandby"`
	ColdStandby int         `json:"coldStandby" yaml:"coldStandby"`
	RTO         Duration    `json:"rto,omitempty" yaml:"rto,omitempty"`
	RPO         Duration    `json:"rpo,omitempty" yaml:"rpo,omitempty"`
	Tenant      string      `json:"tenant,omitempty" yaml:"tenant,omitempty"`
	// Resources is what one instance of the model holds on its node, for
	// placing standbys the DR planner wakes or creates.
	Resources Resources `json:"resources,omitzero" yaml:"resources,omitempty"`
	// DeepProbe is the known request the DR loop's deep probe sends an
	// instance that speaks OpenAI's API (vLLM); without it such an
	// instance is judged by its health alone.
	DeepProbe *DeepProbe `json:"deepProbe,omitempty" yaml:"deepProbe,omitempty"`

	Routing          Routing           `json:"routing,omitempty" yaml:"routing,omitempty"`
	LoadBalancing    LoadBalancing     `json:"loadBalancing,omitempty" yaml:"loadBalancing,omitempty"`
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty" yaml:"outlierDetection,omitempty"`
	Retries          *Retries          `json:"retries,omitempty" yaml:"retries,omitempty"`
	Timeout          Duration          `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	CircuitBreakers  *CircuitBreakers  `json:"circuitBreakers,omitempty" yaml:"circuitBreakers,omitempty"`
	Mirror           *Mirror           `json:"mirror,omitempty" yaml:"mirror,omitempty"`
}

// DeepProbe is a completion with a deterministic answer: the prompt is
// sent with temperature 0 and at most MaxTokens tokens, and the text
// answered must contain Expect, else the model is corrupt. Model is the
// name the server serves the model under (vLLM's --served-model-name or
// --model); left out, the request names none and the server answers with
// its own.
type DeepProbe struct {
	Prompt    string `json:"prompt" yaml:"prompt"`
	Expect    string `json:"expect" yaml:"expect"`
	MaxTokens int    `json:"maxTokens,omitempty" yaml:"maxTokens,omitempty"`
	Model     string `json:"model,omitempty" yaml:"model,omitempty"`
}

// DefaultDeepProbeMaxTokens bounds a deep probe's answer when the policy
// leaves maxTokens out.
const DefaultDeepProbeMaxTokens = 16

// Resources is one instance's GPU footprint. Zero GPUs means as many as
// the model's instances in the fleet hold (at least one); zero memory means
// each GPU is taken whole.
type Resources struct {
	GPUs         int   `json:"gpus,omitempty" yaml:"gpus,omitempty"`
	GPUMemoryMiB int64 `json:"gpuMemoryMiB,omitempty" yaml:"gpuMemoryMiB,omitempty"`
}

// Routing says which requests belong to the model. After loading, Header
// defaults to "model-name" and PathPrefix to "/v1/models/<name>/".
type Routing struct {
	Header     string `json:"header,omitempty" yaml:"header,omitempty"`
	PathPrefix string `json:"pathPrefix,omitempty" yaml:"pathPrefix,omitempty"`
}

// LBPolicy is the endpoint-picking algorithm.
type LBPolicy string

// Load-balancing policies.
const (
	LBRoundRobin   LBPolicy = "round_robin"
	LBLeastRequest LBPolicy = "least_request"
	LBRingHash     LBPolicy = "ring_hash"
)

// LoadBalancing selects the LB policy; HashHeader is required for ring_hash.
type LoadBalancing struct {
	Policy      LBPolicy `json:"policy,omitempty" yaml:"policy,omitempty"`
	HashHeader  string   `json:"hashHeader,omitempty" yaml:"hashHeader,omitempty"`
	MinRingSize uint64   `json:"minRingSize,omitempty" yaml:"minRingSize,omitempty"`
}

// OutlierDetection ejects failing endpoints. Envoy honours every rule; gRPC
// clients honour only SuccessRate and FailurePercentage.
type OutlierDetection struct {
	Consecutive5xx           uint32             `json:"consecutive5xx,omitempty" yaml:"consecutive5xx,omitempty"`
	ConsecutiveGatewayErrors uint32             `json:"consecutiveGatewayErrors,omitempty" yaml:"consecutiveGatewayErrors,omitempty"`
	Interval                 Duration           `json:"interval,omitempty" yaml:"interval,omitempty"`
	BaseEjectionTime         Duration           `json:"baseEjectionTime,omitempty" yaml:"baseEjectionTime,omitempty"`
	MaxEjectionPercent       uint32             `json:"maxEjectionPercent,omitempty" yaml:"maxEjectionPercent,omitempty"`
	SuccessRate              *SuccessRate       `json:"successRate,omitempty" yaml:"successRate,omitempty"`
	FailurePercentage        *FailurePercentage `json:"failurePercentage,omitempty" yaml:"failurePercentage,omitempty"`
}

// SuccessRate ejects hosts whose success rate is StdevFactor/1000 standard
// deviations below the mean.
type SuccessRate struct {
	MinimumHosts  uint32 `json:"minimumHosts,omitempty" yaml:"minimumHosts,omitempty"`
	RequestVolume uint32 `json:"requestVolume,omitempty" yaml:"requestVolume,omitempty"`
	StdevFactor   uint32 `json:"stdevFactor,omitempty" yaml:"stdevFactor,omitempty"`
}

// FailurePercentage ejects hosts whose failure percentage reaches Threshold.
type FailurePercentage struct {
	Threshold     uint32 `json:"threshold,omitempty" yaml:"threshold,omitempty"`
	MinimumHosts  uint32 `json:"minimumHosts,omitempty" yaml:"minimumHosts,omitempty"`
	RequestVolume uint32 `json:"requestVolume,omitempty" yaml:"requestVolume,omitempty"`
}

// Retries is the route retry policy.
type Retries struct {
	Attempts      uint32   `json:"attempts" yaml:"attempts"`
	PerTryTimeout Duration `json:"perTryTimeout,omitempty" yaml:"perTryTimeout,omitempty"`
	// RetryOn lists Envoy retry conditions (x-envoy-retry-on and
	// x-envoy-retry-grpc-on values such as "connect-failure", "unavailable").
	RetryOn []string `json:"retryOn,omitempty" yaml:"retryOn,omitempty"`
	// NextPriority makes each retry prefer a priority not yet tried, so a
	// retry after a primary failure lands on a standby.
	NextPriority bool         `json:"nextPriority,omitempty" yaml:"nextPriority,omitempty"`
	Budget       *RetryBudget `json:"budget,omitempty" yaml:"budget,omitempty"`
}

// RetryBudget caps concurrent retries as a share of active requests.
type RetryBudget struct {
	Percent        float64 `json:"percent" yaml:"percent"`
	MinConcurrency uint32  `json:"minConcurrency,omitempty" yaml:"minConcurrency,omitempty"`
}

// CircuitBreakers are the cluster's default-priority thresholds.
type CircuitBreakers struct {
	MaxConnections     uint32 `json:"maxConnections,omitempty" yaml:"maxConnections,omitempty"`
	MaxPendingRequests uint32 `json:"maxPendingRequests,omitempty" yaml:"maxPendingRequests,omitempty"`
	MaxRequests        uint32 `json:"maxRequests,omitempty" yaml:"maxRequests,omitempty"`
	MaxRetries         uint32 `json:"maxRetries,omitempty" yaml:"maxRetries,omitempty"`
}

// Mirror shadows a share of the model's traffic to another model's cluster.
type Mirror struct {
	Model   string  `json:"model" yaml:"model"`
	Percent float64 `json:"percent" yaml:"percent"`
}

// AZFailover is the zone-level failover strategy.
type AZFailover struct {
	Strategy            string   `json:"strategy" yaml:"strategy"`
	ActiveZones         []string `json:"activeZones" yaml:"activeZones"`
	StandbyZone         string   `json:"standbyZone,omitempty" yaml:"standbyZone,omitempty"`
	HealthCheckInterval Duration `json:"healthCheckInterval,omitempty" yaml:"healthCheckInterval,omitempty"`
	FailoverThreshold   int      `json:"failoverThreshold,omitempty" yaml:"failoverThreshold,omitempty"`
}

// Tenant is a team sharing the GPU pool, modelled on a Volcano Queue.
type Tenant struct {
	Name        string     `json:"name" yaml:"name"`
	Weight      int        `json:"weight,omitempty" yaml:"weight,omitempty"`
	GPUQuota    int        `json:"gpuQuota,omitempty" yaml:"gpuQuota,omitempty"`
	Reclaimable bool       `json:"reclaimable,omitempty" yaml:"reclaimable,omitempty"`
	RateLimit   *RateLimit `json:"rateLimit,omitempty" yaml:"rateLimit,omitempty"`
	// Models are other tenants' models this tenant may also call; it may
	// always call its own (tenant: <name>) and the shared ones (no tenant).
	Models []string `json:"models,omitempty" yaml:"models,omitempty"`
	// ConcurrencyShare is the percentage (1..100) of each model's
	// maxRequests circuit-breaker budget the tenant's requests may hold at
	// once through Envoy; 0 leaves the tenant on the model's shared budget.
	ConcurrencyShare uint32 `json:"concurrencyShare,omitempty" yaml:"concurrencyShare,omitempty"`
}

// TenantAuth says how Envoy identifies a caller's tenant.
type TenantAuth struct {
	JWT *JWTAuth `json:"jwt,omitempty" yaml:"jwt,omitempty"`
}

// JWTAuth verifies a bearer JWT (Authorization: Bearer <token>) and reads
// the tenant from one of its claims.
type JWTAuth struct {
	Issuer    string   `json:"issuer" yaml:"issuer"`
	Audiences []string `json:"audiences,omitempty" yaml:"audiences,omitempty"`
	// TenantClaim names the string claim holding the tenant; default
	// "tenant".
	TenantClaim string `json:"tenantClaim,omitempty" yaml:"tenantClaim,omitempty"`
	// JWKSFile is a JSON Web Key Set file in the policy directory; Load
	// reads it into JWKS. A policy built in code sets JWKS directly.
	JWKSFile string `json:"jwksFile,omitempty" yaml:"jwksFile,omitempty"`
	JWKS     string `json:"jwks,omitempty" yaml:"jwks,omitempty"`
}

// Tenancy reports whether the data path identifies tenants: the policy
// declares tenants and a way to authenticate them.
func (p *Policy) Tenancy() bool {
	return len(p.Tenants) > 0 && p.TenantAuth != nil && p.TenantAuth.JWT != nil
}

// MayCall reports whether tenant t may call model m: its own, a shared one,
// or one it lists.
func (t *Tenant) MayCall(m *Model) bool {
	return m.Tenant == "" || m.Tenant == t.Name || slices.Contains(t.Models, m.Name)
}

// RateLimit is a token bucket applied per tenant.
type RateLimit struct {
	RequestsPerSecond uint32 `json:"requestsPerSecond" yaml:"requestsPerSecond"`
	Burst             uint32 `json:"burst,omitempty" yaml:"burst,omitempty"`
}

// Model returns the named model's policy and whether it exists.
func (p *Policy) Model(name string) (Model, bool) {
	for _, m := range p.Models {
		if m.Name == name {
			return m, true
		}
	}
	return Model{}, false
}

// Duration is a time.Duration written in YAML as a Go duration string
// ("10s", "1m"); the bare number 0 (the seed's `rpo: "0"`) is accepted.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
