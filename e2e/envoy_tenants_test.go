package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const tenantIssuer = "https://auth.test.invalid"

// tenantPolicy: llama-2-7b is shared, mistral-7b is chat's. batch may make
// 20 requests a second (burst 20), chat 1000; each may hold half of a
// model's 8-request circuit-breaker budget.
const tenantPolicy = `models:
  - name: llama-2-7b
    circuitBreakers: {maxRequests: 8}
  - name: mistral-7b
    tenant: chat
tenants:
  - name: chat
    concurrencyShare: 50
    rateLimit: {requestsPerSecond: 1000, burst: 1000}
  - name: batch
    concurrencyShare: 50
    rateLimit: {requestsPerSecond: 20, burst: 20}
tenantAuth:
  jwt:
    issuer: ` + tenantIssuer + `
    jwksFile: jwks.json
`

// signer issues ES256 JWTs with a key made for the test.
type signer struct {
	key *ecdsa.PrivateKey
	kid string
}

func newSigner(t *testing.T, kid string) *signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{key: key, kid: kid}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwks is the JSON Web Key Set holding the signer's public key.
func (s *signer) jwks() string {
	pub := s.key.PublicKey
	x, y := make([]byte, 32), make([]byte, 32)
	pub.X.FillBytes(x)
	pub.Y.FillBytes(y)
	return fmt.Sprintf(`{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":%q,"x":%q,"y":%q}]}`, s.kid, b64(x), b64(y))
}

// token is a JWT for tenant, valid for an hour.
func (s *signer) token(t *testing.T, tenant string) string {
	t.Helper()
	header, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": s.kid})
	claims, _ := json.Marshal(map[string]any{"iss": tenantIssuer, "sub": tenant + "-client", "tenant": tenant, "exp": time.Now().Add(time.Hour).Unix()})
	input := b64(header) + "." + b64(claims)
	digest := sha256.Sum256([]byte(input))
	r, sig, err := ecdsa.Sign(rand.Reader, s.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 64)
	r.FillBytes(raw[:32])
	sig.FillBytes(raw[32:])
	return input + "." + b64(raw)
}

// tenantReply is one predict call's outcome as a tenant's client sees it.
type tenantReply struct {
	envoyReply
	took time.Duration
}

// predictAs calls model's predict path through Envoy with token as the
// bearer JWT (none when empty).
func (e *envoyProxy) predictAs(token, model string) (tenantReply, error) {
	headers := []string{"model-name", model}
	if token != "" {
		headers = append(headers, "Authorization", "Bearer "+token)
	}
	start := time.Now()
	r, err := e.send(predictPath(model), headers...)
	return tenantReply{envoyReply: r, took: time.Since(start)}, err
}

// TestEnvoyTenantIsolation: tenants identified by JWT through a real Envoy.
// A missing or foreign-signed token gets 401, a tenant the policy does not
// know 403, batch calling chat's model 403. While batch floods the shared
// model with concurrent callers far beyond its rate limit (and gets 429s
// with retry-after), chat's steady stream to the same model keeps a 100%
// success rate; its latency with and without the flood is printed.
func TestEnvoyTenantIsolation(t *testing.T) {
	envoyBin := requireEnvoy(t)
	llama := startModelSim(t, "llama-a", "llama-2-7b", "--latency", "5ms")
	mistral := startModelSim(t, "mistral-a", "mistral-7b")
	cp := startControlPlane(t, twoModelPolicy, fleetOf(llama.httpInstance(t), mistral.httpInstance(t)))
	proxy := startEnvoy(t, envoyBin, cp, "az-1")
	proxy.waitRoutable(t, "llama-2-7b")

	keys := newSigner(t, "test-key")
	writeFileAtomic(t, filepath.Join(filepath.Dir(cp.policyPath), "jwks.json"), []byte(keys.jwks()))
	cp.writePolicy(t, tenantPolicy)
	edited := time.Now()
	chat, batch := keys.token(t, "chat"), keys.token(t, "batch")
	if err := poll(hangGuard, func() error {
		// Every tenant cluster in use is warm once each tenant gets through.
		for _, call := range []struct{ token, model string }{{chat, "mistral-7b"}, {chat, "llama-2-7b"}, {batch, "llama-2-7b"}} {
			if r, err := proxy.predictAs(call.token, call.model); err != nil || r.status != http.StatusOK {
				return fmt.Errorf("a tenant calling %s: %v %+v", call.model, err, r)
			}
		}
		if r, err := proxy.predictAs("", "llama-2-7b"); err != nil || r.status != http.StatusUnauthorized {
			return fmt.Errorf("no token: %v %+v", err, r)
		}
		return nil
	}); err != nil {
		t.Fatalf("Envoy never enforced the tenants: %v", err)
	}
	report(t, "envoy tenants enforced %v after the policy edit", time.Since(edited).Round(time.Millisecond))

	checkTenantStatus(t, proxy, "", "mistral-7b", http.StatusUnauthorized, "no token")
	checkTenantStatus(t, proxy, newSigner(t, "test-key").token(t, "chat"), "mistral-7b", http.StatusUnauthorized, "a token signed by another key")
	checkTenantStatus(t, proxy, keys.token(t, "mallory"), "llama-2-7b", http.StatusForbidden, "a tenant the policy does not know")
	denied := checkTenantStatus(t, proxy, batch, "mistral-7b", http.StatusForbidden, "batch calling chat's model")
	if !strings.Contains(denied.body, "model_not_permitted") {
		t.Errorf("403 body %q lacks the model_not_permitted error", denied.body)
	}
	checkTenantStatus(t, proxy, batch, "llama-2-7b", http.StatusOK, "batch calling the shared model")

	const steady = 100
	quiet := steadyStream(t, proxy, chat, steady)
	report(t, "envoy tenants quiet-alone requests=%d ok=%d p50=%v p99=%v", steady, quiet.ok, quiet.percentile(50), quiet.percentile(99))

	flood := startFlood(t, proxy, batch, 16, 1000)
	quietFlooded := steadyStream(t, proxy, chat, steady)
	flooded := flood.stop()
	report(t, "envoy tenants quiet-during-flood requests=%d ok=%d p50=%v p99=%v; flood callers=16 requests=%d ok=%d rate-limited=%d overloaded=%d",
		steady, quietFlooded.ok, quietFlooded.percentile(50), quietFlooded.percentile(99),
		flooded.total, flooded.counts[http.StatusOK], flooded.counts[http.StatusTooManyRequests], flooded.counts[http.StatusServiceUnavailable])
	if quiet.ok != steady || quietFlooded.ok != steady {
		t.Errorf("chat's success: %d/%d alone, %d/%d during batch's flood; want all", quiet.ok, steady, quietFlooded.ok, steady)
	}
	if flooded.counts[http.StatusTooManyRequests] == 0 {
		t.Errorf("batch's flood of %d requests got no 429: %v", flooded.total, flooded.counts)
	}
	if h := flooded.first429.header; h.Get("retry-after") == "" || h.Get("x-ratelimit-limit") == "" {
		t.Errorf("a 429 lacks retry-after or x-ratelimit-limit: %v", h)
	}
	for status := range flooded.counts {
		if !slices.Contains([]int{http.StatusOK, http.StatusTooManyRequests, http.StatusServiceUnavailable}, status) {
			t.Errorf("the flood got HTTP %d replies: %v", status, flooded.counts)
		}
	}
}

func checkTenantStatus(t *testing.T, proxy *envoyProxy, token, model string, want int, what string) tenantReply {
	t.Helper()
	r, err := proxy.predictAs(token, model)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if r.status != want {
		t.Errorf("%s: HTTP %d (%s), want %d", what, r.status, r.body, want)
	}
	return r
}

// latencies are one steady stream's outcome.
type latencies struct {
	ok    int
	times []time.Duration
}

func (l latencies) percentile(p int) time.Duration {
	if len(l.times) == 0 {
		return 0
	}
	sorted := slices.Clone(l.times)
	slices.Sort(sorted)
	return sorted[min(len(sorted)-1, len(sorted)*p/100)].Round(10 * time.Microsecond)
}

// steadyStream sends n requests to the shared model one after another.
func steadyStream(t *testing.T, proxy *envoyProxy, token string, n int) latencies {
	t.Helper()
	var l latencies
	for range n {
		r, err := proxy.predictAs(token, "llama-2-7b")
		if err != nil {
			t.Fatalf("steady stream: %v", err)
		}
		if r.status == http.StatusOK {
			l.ok++
		} else {
			t.Logf("steady stream: HTTP %d: %s", r.status, r.body)
		}
		l.times = append(l.times, r.took)
	}
	return l
}

// flood is callers goroutines each sending up to perCaller requests to the
// shared model until stopped.
type flood struct {
	done   atomic.Bool
	wg     sync.WaitGroup
	mu     sync.Mutex
	result floodResult
}

type floodResult struct {
	total    int
	counts   map[int]int
	first429 tenantReply
	errs     []error
}

func startFlood(t *testing.T, proxy *envoyProxy, token string, callers, perCaller int) *flood {
	f := &flood{result: floodResult{counts: map[int]int{}}}
	for range callers {
		f.wg.Go(func() {
			for i := 0; i < perCaller && !f.done.Load(); i++ {
				r, err := proxy.predictAs(token, "llama-2-7b")
				f.record(r, err)
			}
		})
	}
	t.Cleanup(func() { f.stop() })
	return f
}

func (f *flood) record(r tenantReply, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.result.errs = append(f.result.errs, err)
		return
	}
	f.result.total++
	f.result.counts[r.status]++
	if r.status == http.StatusTooManyRequests && f.result.first429.status == 0 {
		f.result.first429 = r
	}
}

func (f *flood) stop() floodResult {
	f.done.Store(true)
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.result
}

// TestGRPCClientsAcceptTenantRoutes: tenancy is the Envoy listener's alone.
// A gRPC proxyless client ACKs the route configuration and clusters that
// carry the tenant routes and copies (no NACK), and keeps reaching both
// models without any token.
func TestGRPCClientsAcceptTenantRoutes(t *testing.T) {
	sims, fleet := startTwoModels(t, (*modelSim).grpcInstance)
	cp := startControlPlane(t, twoModelPolicy, fleet)
	client := dialXDS(t, cp, "az-1")
	for model := range sims {
		client.waitRoutable(t, model, hangGuard)
	}
	before := grpcNodeTypes(t, cp)["RouteConfiguration"]

	writeFileAtomic(t, filepath.Join(filepath.Dir(cp.policyPath), "jwks.json"), []byte(newSigner(t, "k").jwks()))
	cp.writePolicy(t, tenantPolicy)
	if err := poll(hangGuard, func() error {
		types := grpcNodeTypes(t, cp)
		for name, s := range types {
			if s.NackedVersion != "" {
				t.Fatalf("the gRPC client NACKed a %s with tenancy: %s", name, s.LastNackError)
			}
		}
		now := types["RouteConfiguration"]
		if now.AckedVersion == before.AckedVersion || now.AckedVersion != now.SentVersion {
			return fmt.Errorf("routes acked %q, sent %q; before the change %q", now.AckedVersion, now.SentVersion, before.AckedVersion)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for model := range sims {
		if _, err := client.call(t.Context(), model); err != nil {
			t.Errorf("gRPC call to %s without a token after tenancy: %v", model, err)
		}
	}
}

// typeStatus is a node's exchange of one resource type in /status.
type typeStatus struct {
	SentVersion, AckedVersion, NackedVersion, LastNackError string
}

// grpcNodeTypes is the one connected node's exchanges by resource type.
func grpcNodeTypes(t *testing.T, cp *controlPlane) map[string]typeStatus {
	t.Helper()
	var doc struct {
		Nodes []struct {
			Types map[string]typeStatus `json:"types"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(cp.status(t)), &doc); err != nil || len(doc.Nodes) != 1 {
		t.Fatalf("/status nodes: %v (%d nodes)", err, len(doc.Nodes))
	}
	return doc.Nodes[0].Types
}
