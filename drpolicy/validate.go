package drpolicy

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/inferxds/inferxds/internal/fielderr"
	"github.com/inferxds/inferxds/internal/names"
)

// MaxRetryAttempts is the most retries a model may ask for.
const MaxRetryAttempts = 10

// Zone-failover strategies.
const (
	StrategyActivePassive = "active-passive"
	StrategyActiveActive  = "active-active"
)

// RetryOnConditions are the retry conditions a policy may name: Envoy's
// x-envoy-retry-on values and its gRPC status ones (x-envoy-retry-grpc-on).
var RetryOnConditions = []string{
	"5xx", "gateway-error", "reset", "reset-before-request", "connect-failure",
	"envoy-ratelimited", "retriable-4xx", "refused-stream", "retriable-status-codes",
	"retriable-headers", "http3-post-connect-failure",
	"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
}

var headerNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9_.-]*[a-z0-9])?$`)

// Validate checks a policy built in code, after ApplyDefaults. It returns
// every problem (errors.Join of *fielderr.FieldError) with field paths such
// as "models[1].hotStandby"; Load and Parse report the same problems with
// file and line.
func (p *Policy) Validate() error { return p.check(fielderr.NoFile{}) }

func (p *Policy) check(loc fielderr.Locator) error {
	pr := fielderr.NewProblems(loc)
	tenants := pr.Names("tenant", "tenants[%d].name", tenantNames(p.Tenants), names.Validate)
	models := pr.Names("model", "models[%d].name", modelNames(p.Models), names.Validate)
	for i := range p.Tenants {
		p.Tenants[i].check(pr, fmt.Sprintf("tenants[%d]", i), models)
	}
	if p.TenantAuth != nil {
		p.TenantAuth.check(pr, "tenantAuth", len(p.Tenants))
	}
	for i := range p.Models {
		p.Models[i].check(pr, fmt.Sprintf("models[%d]", i), models, tenants)
	}
	pr.Unique("path prefix", "models[%d].routing.pathPrefix", pathPrefixes(p.Models))
	if p.AZFailover != nil {
		p.AZFailover.check(pr, "az_failover")
	}
	return pr.Err()
}

func modelNames(models []Model) []string {
	names := make([]string, len(models))
	for i, m := range models {
		names[i] = m.Name
	}
	return names
}

func tenantNames(tenants []Tenant) []string {
	names := make([]string, len(tenants))
	for i, t := range tenants {
		names[i] = t.Name
	}
	return names
}

// pathPrefixes lists the models' path prefixes, blank for unnamed models
// (already reported) so that their defaulted prefixes do not collide.
func pathPrefixes(models []Model) []string {
	prefixes := make([]string, len(models))
	for i, m := range models {
		if m.Name != "" {
			prefixes[i] = m.Routing.PathPrefix
		}
	}
	return prefixes
}

func (m *Model) check(pr *fielderr.Problems, at string, models, tenants map[string]bool) {
	switch m.Priority {
	case CriticalityCritical, CriticalityHigh, CriticalityNormal, CriticalityLow:
	default:
		pr.Add(at+".priority", "must be one of critical, high, normal, low (got %q)", m.Priority)
	}
	nonNegative(pr, at+".hotStandby", m.HotStandby)
	nonNegative(pr, at+".warmStandby", m.WarmStandby)
	nonNegative(pr, at+".coldStandby", m.ColdStandby)
	nonNegative(pr, at+".resources.gpus", m.Resources.GPUs)
	if m.Resources.GPUMemoryMiB < 0 {
		pr.Add(at+".resources.gpuMemoryMiB", "must not be negative (got %d)", m.Resources.GPUMemoryMiB)
	}
	nonNegativeDuration(pr, at+".rto", m.RTO)
	nonNegativeDuration(pr, at+".rpo", m.RPO)
	nonNegativeDuration(pr, at+".timeout", m.Timeout)
	if m.Tenant != "" && !tenants[m.Tenant] {
		pr.Add(at+".tenant", "tenant %q is not defined under tenants", m.Tenant)
	}
	if m.DeepProbe != nil {
		m.DeepProbe.check(pr, at+".deepProbe")
	}
	m.Routing.check(pr, at+".routing")
	m.LoadBalancing.check(pr, at+".loadBalancing")
	if m.OutlierDetection != nil {
		m.OutlierDetection.check(pr, at+".outlierDetection")
	}
	if m.Retries != nil {
		m.Retries.check(pr, at+".retries", m.Timeout)
	}
	if m.Mirror != nil {
		m.Mirror.check(pr, at+".mirror", m.Name, models)
	}
}

func (d *DeepProbe) check(pr *fielderr.Problems, at string) {
	if d.Prompt == "" {
		pr.Add(at+".prompt", "is required")
	}
	if strings.TrimSpace(d.Expect) == "" {
		pr.Add(at+".expect", "is required: the text a correct answer contains")
	}
	if d.MaxTokens < 1 {
		pr.Add(at+".maxTokens", "must be at least 1 (got %d); leave the key out for the default %d", d.MaxTokens, DefaultDeepProbeMaxTokens)
	}
}

func (r Routing) check(pr *fielderr.Problems, at string) {
	checkHeaderName(pr, at+".header", r.Header)
	if !strings.HasPrefix(r.PathPrefix, "/") || strings.ContainsAny(r.PathPrefix, " \t?#") {
		pr.Add(at+".pathPrefix", "must start with '/' and contain no spaces, '?' or '#' (got %q)", r.PathPrefix)
	}
}

func checkHeaderName(pr *fielderr.Problems, field, name string) {
	if !headerNamePattern.MatchString(name) {
		pr.Add(field, "must be a lowercase HTTP header name such as \"model-name\" (got %q)", name)
	}
}

func (lb LoadBalancing) check(pr *fielderr.Problems, at string) {
	switch lb.Policy {
	case LBRoundRobin, LBLeastRequest:
		if lb.HashHeader != "" {
			pr.Add(at+".hashHeader", "applies only to policy ring_hash (policy is %s)", lb.Policy)
		}
		if lb.MinRingSize != 0 {
			pr.Add(at+".minRingSize", "applies only to policy ring_hash (policy is %s)", lb.Policy)
		}
	case LBRingHash:
		if lb.HashHeader == "" {
			pr.Add(at+".hashHeader", "is required with policy ring_hash")
		} else {
			checkHeaderName(pr, at+".hashHeader", lb.HashHeader)
		}
	default:
		pr.Add(at+".policy", "must be one of round_robin, least_request, ring_hash (got %q)", lb.Policy)
	}
}

func (o *OutlierDetection) check(pr *fielderr.Problems, at string) {
	percent(pr, at+".maxEjectionPercent", float64(o.MaxEjectionPercent))
	nonNegativeDuration(pr, at+".interval", o.Interval)
	nonNegativeDuration(pr, at+".baseEjectionTime", o.BaseEjectionTime)
	if o.FailurePercentage != nil {
		percent(pr, at+".failurePercentage.threshold", float64(o.FailurePercentage.Threshold))
	}
}

func (r *Retries) check(pr *fielderr.Problems, at string, timeout Duration) {
	if r.Attempts > MaxRetryAttempts {
		pr.Add(at+".attempts", "must be at most %d (got %d)", MaxRetryAttempts, r.Attempts)
	}
	nonNegativeDuration(pr, at+".perTryTimeout", r.PerTryTimeout)
	if timeout > 0 && r.PerTryTimeout > timeout {
		pr.Add(at+".perTryTimeout", "must not exceed the model's timeout %v (got %v)", timeout.D(), r.PerTryTimeout.D())
	}
	for i, cond := range r.RetryOn {
		if !slices.Contains(RetryOnConditions, cond) {
			pr.Add(fmt.Sprintf("%s.retryOn[%d]", at, i), "unknown retry condition %q; want one of %s", cond, strings.Join(RetryOnConditions, ", "))
		}
	}
	if r.Budget != nil {
		percent(pr, at+".budget.percent", r.Budget.Percent)
	}
}

func (m *Mirror) check(pr *fielderr.Problems, at, self string, models map[string]bool) {
	switch {
	case m.Model == "":
		pr.Add(at+".model", "is required")
	case m.Model == self:
		pr.Add(at+".model", "a model cannot mirror to itself")
	case !models[m.Model]:
		pr.Add(at+".model", "model %q is not defined", m.Model)
	}
	percent(pr, at+".percent", m.Percent)
}

func (t *Tenant) check(pr *fielderr.Problems, at string, models map[string]bool) {
	nonNegative(pr, at+".weight", t.Weight)
	nonNegative(pr, at+".gpuQuota", t.GPUQuota)
	if t.RateLimit != nil && t.RateLimit.RequestsPerSecond == 0 {
		pr.Add(at+".rateLimit.requestsPerSecond", "must be positive")
	}
	for i, m := range t.Models {
		if !models[m] {
			pr.Add(fmt.Sprintf("%s.models[%d]", at, i), "model %q is not defined", m)
		}
	}
	if t.ConcurrencyShare > 100 {
		pr.Add(at+".concurrencyShare", "must be a percentage between 1 and 100 (got %d)", t.ConcurrencyShare)
	}
}

func (a *TenantAuth) check(pr *fielderr.Problems, at string, tenants int) {
	if a.JWT == nil {
		pr.Add(at+".jwt", "is required")
		return
	}
	if tenants == 0 {
		pr.Add(at, "needs tenants to identify; none are defined")
	}
	j, at := a.JWT, at+".jwt"
	if j.Issuer == "" {
		pr.Add(at+".issuer", "is required")
	}
	if !jwtClaimPattern.MatchString(j.TenantClaim) {
		pr.Add(at+".tenantClaim", "must be a claim name of letters, digits, '_' or '-' (got %q)", j.TenantClaim)
	}
	field := at + ".jwks"
	if j.JWKSFile != "" {
		field = at + ".jwksFile"
	}
	if j.JWKS == "" {
		pr.Add(field, "is required: a JSON Web Key Set (jwksFile names one in the policy directory)")
	} else if err := checkJWKS(j.JWKS); err != nil {
		pr.Add(field, "%v", err)
	}
}

var jwtClaimPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// checkJWKS accepts a JSON Web Key Set whose keys all name their type, as
// Envoy requires; it does not check the key material.
func checkJWKS(text string) error {
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(text), &set); err != nil {
		return fmt.Errorf("not a JSON Web Key Set: %v", err)
	}
	if len(set.Keys) == 0 {
		return errors.New("the JSON Web Key Set has no keys")
	}
	for i, k := range set.Keys {
		if kty, _ := k["kty"].(string); kty == "" {
			return fmt.Errorf("key %d of the JSON Web Key Set has no kty", i)
		}
	}
	return nil
}

func (a *AZFailover) check(pr *fielderr.Problems, at string) {
	switch a.Strategy {
	case StrategyActivePassive:
		if a.StandbyZone == "" {
			pr.Add(at+".standbyZone", "is required with strategy %s", StrategyActivePassive)
		}
	case StrategyActiveActive:
	default:
		pr.Add(at+".strategy", "must be %s or %s (got %q)", StrategyActivePassive, StrategyActiveActive, a.Strategy)
	}
	if len(a.ActiveZones) == 0 {
		pr.Add(at+".activeZones", "must list at least one zone")
	}
	pr.Names("active zone", at+".activeZones[%d]", a.ActiveZones, names.Validate)
	if a.StandbyZone != "" {
		if err := names.Validate(a.StandbyZone); err != nil {
			pr.Add(at+".standbyZone", "zone name %v", err)
		} else if slices.Contains(a.ActiveZones, a.StandbyZone) {
			pr.Add(at+".standbyZone", "zone %q is also listed in activeZones", a.StandbyZone)
		}
	}
	if a.HealthCheckInterval <= 0 {
		pr.Add(at+".healthCheckInterval", "must be positive (got %v)", a.HealthCheckInterval.D())
	}
	if a.FailoverThreshold < 1 {
		pr.Add(at+".failoverThreshold", "must be at least 1 (got %d)", a.FailoverThreshold)
	}
}

func nonNegative(pr *fielderr.Problems, field string, n int) {
	if n < 0 {
		pr.Add(field, "must not be negative (got %d)", n)
	}
}

func nonNegativeDuration(pr *fielderr.Problems, field string, d Duration) {
	if d < 0 {
		pr.Add(field, "must not be negative (got %v)", d.D())
	}
}

func percent(pr *fielderr.Problems, field string, v float64) {
	if v < 0 || v > 100 {
		pr.Add(field, "must be a percentage between 0 and 100 (got %v)", v)
	}
}
