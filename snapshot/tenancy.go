package snapshot

import (
	"cmp"
	"net/http"
	"reflect"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	rbacconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/inferxds/inferxds/drpolicy"
)

// Tenancy on the Envoy socket listener, when the policy declares tenants
// and tenantAuth. Each step is an Envoy filter or route, in request order:
//
//   - header_mutation drops any TenantHeader the caller sent;
//   - jwt_authn requires a bearer JWT signed by a key of the policy's JWKS
//     (401 without one), puts its payload in dynamic metadata and copies the
//     tenant claim into TenantHeader;
//   - RBAC admits only callers whose verified claim names a policy tenant
//     (403 otherwise);
//   - local_ratelimit keeps a token bucket per tenant with a rateLimit
//     (429 with retry-after and x-ratelimit-* headers);
//   - ahead of each model route, a route per tenant allowed on the model
//     (matching TenantHeader) serves it, to the tenant's own copy of the
//     model's cluster when the tenant has a concurrencyShare; then a route
//     for any other tenant answers 403.
//
// The API listener (gRPC proxyless clients) gets none of these filters;
// gRPC clients never send TenantHeader, so the tenant routes never match
// theirs and they keep the model routes they had.
const (
	headerMutationFilterName = "envoy.filters.http.header_mutation"
	jwtAuthnFilterName       = "envoy.filters.http.jwt_authn"
	rbacFilterName           = "envoy.filters.http.rbac"
	localRateLimitFilterName = "envoy.filters.http.local_ratelimit"
	// TenantHeader carries the verified tenant from jwt_authn to the routes
	// and the rate limiter.
	TenantHeader = "x-inferxds-tenant"
	// jwtProvider is the one jwt_authn provider; jwtPayloadKey is where,
	// under the filter's metadata namespace, it puts the verified payload.
	jwtProvider   = "tenants"
	jwtPayloadKey = "jwt_payload"
	// tenantDescriptorKey is the rate-limit descriptor entry naming a tenant.
	tenantDescriptorKey = "tenant"
	// unlimitedTokens fills the default bucket of tenants without a
	// rateLimit: local_ratelimit needs one, and must never empty it.
	unlimitedTokens = 1 << 30
	// TenantDeniedStatus answers a tenant calling a model it may not.
	TenantDeniedStatus = http.StatusForbidden
)

const tenantDeniedBody = `{"error":{"message":"This tenant may not call the requested model.",` +
	`"type":"permission_error","code":"model_not_permitted"}}` + "\n"

// tenancy is what of the policy the data path's tenancy depends on, in a
// stable order; key encodes it for the Translator's caches.
type tenancy struct {
	jwt     drpolicy.JWTAuth
	tenants []drpolicy.Tenant // by name
	key     []byte
}

// newTenancy returns nil when the policy asks for no tenancy.
func newTenancy(pol *drpolicy.Policy) *tenancy {
	if !pol.Tenancy() {
		return nil
	}
	t := &tenancy{jwt: *pol.TenantAuth.JWT, tenants: slices.Clone(pol.Tenants)}
	slices.SortStableFunc(t.tenants, func(a, b drpolicy.Tenant) int { return cmp.Compare(a.Name, b.Name) })
	t.key = appendCanonical(nil, reflect.ValueOf(struct {
		JWT     drpolicy.JWTAuth
		Tenants []drpolicy.Tenant
	}{t.jwt, t.tenants}))
	return t
}

// keyOf is t's cache key; no tenancy has the empty key.
func (t *tenancy) keyOf() []byte {
	if t == nil {
		return nil
	}
	return t.key
}

// filters are the socket listener's tenancy filters, before the others.
func (t *tenancy) filters() []*hcmv3.HttpFilter {
	if t == nil {
		return nil
	}
	filters := []*hcmv3.HttpFilter{
		httpFilter(headerMutationFilterName, &headermutationv3.HeaderMutation{Mutations: &headermutationv3.Mutations{
			RequestMutations: []*mutationrulesv3.HeaderMutation{{Action: &mutationrulesv3.HeaderMutation_Remove{Remove: TenantHeader}}},
		}}),
		httpFilter(jwtAuthnFilterName, t.jwtAuthn()),
		httpFilter(rbacFilterName, t.rbac()),
	}
	if rl := t.rateLimit(); rl != nil {
		filters = append(filters, httpFilter(localRateLimitFilterName, rl))
	}
	return filters
}

func httpFilter(name string, cfg proto.Message) *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(cfg)}}
}

func (t *tenancy) jwtAuthn() *jwtauthnv3.JwtAuthentication {
	return &jwtauthnv3.JwtAuthentication{
		Providers: map[string]*jwtauthnv3.JwtProvider{jwtProvider: {
			Issuer:    t.jwt.Issuer,
			Audiences: t.jwt.Audiences,
			JwksSourceSpecifier: &jwtauthnv3.JwtProvider_LocalJwks{LocalJwks: &corev3.DataSource{
				Specifier: &corev3.DataSource_InlineString{InlineString: t.jwt.JWKS},
			}},
			PayloadInMetadata: jwtPayloadKey,
			ClaimToHeaders:    []*jwtauthnv3.JwtClaimToHeader{{HeaderName: TenantHeader, ClaimName: t.jwt.TenantClaim}},
			// The routes match the header it sets: pick the route again.
			ClearRouteCache: true,
		}},
		Rules: []*jwtauthnv3.RequirementRule{{
			Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			RequirementType: &jwtauthnv3.RequirementRule_Requires{Requires: &jwtauthnv3.JwtRequirement{
				RequiresType: &jwtauthnv3.JwtRequirement_ProviderName{ProviderName: jwtProvider},
			}},
		}},
	}
}

// rbac admits a caller whose verified tenant claim names a policy tenant.
// It reads the claim from jwt_authn's metadata, which a caller cannot set.
func (t *tenancy) rbac() *rbacv3.RBAC {
	ids := make([]*rbacconfigv3.Principal, len(t.tenants))
	for i, tenant := range t.tenants {
		ids[i] = &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_SourcedMetadata{SourcedMetadata: &rbacconfigv3.SourcedMetadata{
			MetadataMatcher: &matcherv3.MetadataMatcher{
				Filter: jwtAuthnFilterName,
				Path: []*matcherv3.MetadataMatcher_PathSegment{
					{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: jwtPayloadKey}},
					{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: t.jwt.TenantClaim}},
				},
				Value: &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_StringMatch{StringMatch: exactly(tenant.Name)}},
			},
		}}}
	}
	return &rbacv3.RBAC{Rules: &rbacconfigv3.RBAC{
		Action: rbacconfigv3.RBAC_ALLOW,
		Policies: map[string]*rbacconfigv3.Policy{"policy-tenants": {
			Permissions: []*rbacconfigv3.Permission{{Rule: &rbacconfigv3.Permission_Any{Any: true}}},
			Principals:  []*rbacconfigv3.Principal{{Identifier: &rbacconfigv3.Principal_OrIds{OrIds: &rbacconfigv3.Principal_Set{Ids: ids}}}},
		}},
	}}
}

// rateLimit has a token bucket per tenant with a rateLimit, shared by all
// the proxy's connections; nil when no tenant has one.
func (t *tenancy) rateLimit() *localratelimitv3.LocalRateLimit {
	var descriptors []*ratelimitv3.LocalRateLimitDescriptor
	for _, tenant := range t.tenants {
		if rl := tenant.RateLimit; rl != nil {
			descriptors = append(descriptors, tenantDescriptor(tenant.Name, rl))
		}
	}
	if len(descriptors) == 0 {
		return nil
	}
	always := 100
	return &localratelimitv3.LocalRateLimit{
		StatPrefix:     "tenant_rate_limit",
		TokenBucket:    tokenBucket(unlimitedTokens, unlimitedTokens),
		FilterEnabled:  runtimePercent("inferxds.tenant_rate_limit.enabled", always),
		FilterEnforced: runtimePercent("inferxds.tenant_rate_limit.enforced", always),
		Descriptors:    descriptors,
		RateLimits: []*routev3.RateLimit{{Actions: []*routev3.RateLimit_Action{{
			ActionSpecifier: &routev3.RateLimit_Action_RequestHeaders_{RequestHeaders: &routev3.RateLimit_Action_RequestHeaders{
				HeaderName: TenantHeader, DescriptorKey: tenantDescriptorKey,
			}},
		}}}},
		EnableXRatelimitHeaders:         ratelimitv3.XRateLimitHeadersRFCVersion_DRAFT_VERSION_03,
		EnableRetryAfterHeader:          true,
		AlwaysConsumeDefaultTokenBucket: wrapperspb.Bool(false),
	}
}

func tenantDescriptor(tenant string, rl *drpolicy.RateLimit) *ratelimitv3.LocalRateLimitDescriptor {
	return &ratelimitv3.LocalRateLimitDescriptor{
		Entries:     []*ratelimitv3.RateLimitDescriptor_Entry{{Key: tenantDescriptorKey, Value: tenant}},
		TokenBucket: tokenBucket(max(rl.Burst, rl.RequestsPerSecond), rl.RequestsPerSecond),
	}
}

func tokenBucket(maxTokens, perSecond uint32) *typev3.TokenBucket {
	return &typev3.TokenBucket{
		MaxTokens:     maxTokens,
		TokensPerFill: wrapperspb.UInt32(perSecond),
		FillInterval:  durationpb.New(1e9),
	}
}

func runtimePercent(key string, percent int) *corev3.RuntimeFractionalPercent {
	return &corev3.RuntimeFractionalPercent{
		RuntimeKey:   key,
		DefaultValue: &typev3.FractionalPercent{Numerator: uint32(percent), Denominator: typev3.FractionalPercent_HUNDRED},
	}
}

func exactly(s string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}}
}

// TenantClusterName is the copy of a model's cluster that carries one
// tenant's requests when the tenant has a concurrencyShare.
func TenantClusterName(model, tenant string) string { return model + "/tenant/" + tenant }

// routes puts, ahead of each model route, one route per tenant allowed on
// the model and one answering 403 to any other tenant.
func (t *tenancy) routes(m *drpolicy.Model, modelRoutes []*routev3.Route) []*routev3.Route {
	if t == nil {
		return modelRoutes
	}
	out := make([]*routev3.Route, 0, len(modelRoutes)*(len(t.tenants)+2))
	for _, r := range modelRoutes {
		for i := range t.tenants {
			tenant := &t.tenants[i]
			if !tenant.MayCall(m) {
				continue
			}
			tr := withTenantMatch(r, tenant.Name, exactly(tenant.Name))
			if tenant.ConcurrencyShare > 0 {
				tr.GetRoute().ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: TenantClusterName(m.Name, tenant.Name)}
			}
			out = append(out, tr)
		}
		denied := withTenantMatch(r, "denied", nil)
		denied.Action = jsonResponse(TenantDeniedStatus, tenantDeniedBody)
		denied.ResponseHeadersToAdd = jsonContentType()
		out = append(out, denied, r)
	}
	return out
}

// withTenantMatch copies r, named for the tenant, matching TenantHeader as
// well: exactly value, or present when value is nil.
func withTenantMatch(r *routev3.Route, name string, value *matcherv3.StringMatcher) *routev3.Route {
	tr := proto.Clone(r).(*routev3.Route)
	tr.Name = r.GetName() + "/tenant/" + name
	h := &routev3.HeaderMatcher{Name: TenantHeader, HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}}
	if value != nil {
		h.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: value}
	}
	tr.Match.Headers = append(tr.Match.Headers, h)
	return tr
}

// tenantLoadAssignment is a copy of a model's load assignment for one of
// its tenant clusters, with its digest.
func tenantLoadAssignment(cla *endpointv3.ClusterLoadAssignment, cluster string) (*endpointv3.ClusterLoadAssignment, digest, error) {
	tcla := proto.Clone(cla).(*endpointv3.ClusterLoadAssignment)
	tcla.ClusterName = cluster
	sum, err := digestOf(tcla)
	return tcla, sum, err
}

// clusters are the tenant copies of a model's cluster: its settings, and a
// maxRequests budget of the tenant's share of the model's (at least 1).
func (t *tenancy) clusters(m *drpolicy.Model, c *clusterv3.Cluster) []*clusterv3.Cluster {
	if t == nil {
		return nil
	}
	var out []*clusterv3.Cluster
	for i := range t.tenants {
		tenant := &t.tenants[i]
		if tenant.ConcurrencyShare == 0 || !tenant.MayCall(m) {
			continue
		}
		tc := proto.Clone(c).(*clusterv3.Cluster)
		tc.Name = TenantClusterName(m.Name, tenant.Name)
		// Its own load assignment: Envoy does not reliably warm a second
		// cluster on a load assignment another cluster already watches.
		tc.EdsClusterConfig.ServiceName = tc.Name
		thresholds := tc.GetCircuitBreakers().GetThresholds()
		if len(thresholds) == 0 {
			tc.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{}}}
			thresholds = tc.CircuitBreakers.Thresholds
		}
		budget := uint64(envoyDefaultMaxRequests)
		if mr := thresholds[0].GetMaxRequests(); mr != nil {
			budget = uint64(mr.GetValue())
		}
		thresholds[0].MaxRequests = wrapperspb.UInt32(uint32(max(1, budget*uint64(tenant.ConcurrencyShare)/100)))
		out = append(out, tc)
	}
	return out
}
