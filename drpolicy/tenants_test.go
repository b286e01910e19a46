package drpolicy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inferxds/inferxds/drpolicy"
)

const testJWKS = `{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`

const tenantPolicy = `models:
  - name: chat-model
    tenant: chat
  - name: shared-model
tenants:
  - name: chat
    rateLimit: {requestsPerSecond: 10}
  - name: batch
    models: [chat-model]
tenantAuth:
  jwt:
    issuer: https://auth.example.com
    jwksFile: jwks.json
`

func writePolicyDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadReadsTheTenantsJWKS(t *testing.T) {
	p, err := drpolicy.Load(writePolicyDir(t, map[string]string{"tenants.yaml": tenantPolicy, "jwks.json": testJWKS}))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Tenancy() || p.TenantAuth.JWT.JWKS != testJWKS || p.TenantAuth.JWT.TenantClaim != "tenant" {
		t.Fatalf("tenancy %v, jwt %+v: want the JWKS file's text and the default claim", p.Tenancy(), p.TenantAuth.JWT)
	}
	chat, batch := p.Tenants[0], p.Tenants[1]
	own, shared := p.Models[0], p.Models[1]
	if !chat.MayCall(&own) || !chat.MayCall(&shared) || !batch.MayCall(&own) {
		t.Error("a tenant may call its own, the shared and its listed models")
	}
	if other := (drpolicy.Model{Name: "x", Tenant: "batch"}); chat.MayCall(&other) {
		t.Error("chat may call batch's model")
	}
}

func TestLoadReportsBadTenantConfig(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(string) string
		jwks  string
		wants []string
	}{
		{"unknown model in a tenant's list", func(s string) string { return strings.Replace(s, "[chat-model]", "[chat-model, gpt-9]", 1) }, testJWKS,
			[]string{"tenants.yaml:9: tenants[1].models[1]: model \"gpt-9\" is not defined"}},
		{"JWKS that is not JSON", nil, "{keys:",
			[]string{"tenants.yaml:13: tenantAuth.jwt.jwksFile: ", "jwks.json: not a JSON Web Key Set"}},
		{"JWKS without keys", nil, `{"keys":[]}`,
			[]string{"tenants.yaml:13: tenantAuth.jwt.jwksFile: ", "jwks.json: the JSON Web Key Set has no keys"}},
		{"missing JWKS file", func(s string) string { return strings.Replace(s, "jwks.json", "gone.json", 1) }, testJWKS,
			[]string{"tenants.yaml:13: tenantAuth.jwt.jwksFile: reading ", "gone.json"}},
		{"JWKS outside the directory", func(s string) string { return strings.Replace(s, "jwks.json", "../jwks.json", 1) }, testJWKS,
			[]string{"tenants.yaml:13: tenantAuth.jwt.jwksFile: must name a file directly in the policy directory"}},
		{"JWKS file that is not .json", func(s string) string { return strings.Replace(s, "jwks.json", "keys.pem", 1) }, testJWKS,
			[]string{"tenants.yaml:13: tenantAuth.jwt.jwksFile: must be a .json file"}},
		{"no issuer, bad claim, share over 100", func(s string) string {
			s = strings.Replace(s, "    issuer: https://auth.example.com\n", "    tenantClaim: \"a b\"\n", 1)
			return strings.Replace(s, "models: [chat-model]", "models: [chat-model]\n    concurrencyShare: 120", 1)
		}, testJWKS, []string{"tenantAuth.jwt.issuer: is required", `tenantAuth.jwt.tenantClaim: must be a claim name`, "tenants[1].concurrencyShare: must be a percentage"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := tenantPolicy
			if tt.edit != nil {
				text = tt.edit(text)
			}
			_, err := drpolicy.Load(writePolicyDir(t, map[string]string{"tenants.yaml": text, "jwks.json": tt.jwks}))
			if err == nil {
				t.Fatal("Load accepted the policy")
			}
			for _, want := range tt.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
		})
	}
}
