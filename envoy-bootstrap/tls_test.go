package bootstrap

import (
	"encoding/json"
	"strings"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

var tlsFiles = TLSFiles{Cert: "/etc/inferxds/node.pem", Key: "/etc/inferxds/node-key.pem", CA: "/etc/inferxds/ca.pem"}

func TestEnvoyBootstrapWithTLSPresentsTheNodeCertificate(t *testing.T) {
	p := params
	p.TLS = tlsFiles
	b := parseEnvoy(t, p)
	checkXDSCluster(t, b)
	var ctx tlsv3.UpstreamTlsContext
	if err := b.GetStaticResources().GetClusters()[0].GetTransportSocket().GetTypedConfig().UnmarshalTo(&ctx); err != nil {
		t.Fatalf("xds cluster has no TLS transport socket: %v", err)
	}
	common := ctx.GetCommonTlsContext()
	cert := common.GetTlsCertificates()[0]
	if cert.GetCertificateChain().GetFilename() != tlsFiles.Cert || cert.GetPrivateKey().GetFilename() != tlsFiles.Key ||
		common.GetValidationContext().GetTrustedCa().GetFilename() != tlsFiles.CA {
		t.Errorf("TLS context = %v, want the files %+v", common, tlsFiles)
	}
	if got := strings.Join(common.GetAlpnProtocols(), ","); got != "h2" {
		t.Errorf("ALPN = %q, want h2 (gRPC)", got)
	}
	if plain := parseEnvoy(t, params); plain.GetStaticResources().GetClusters()[0].GetTransportSocket() != nil {
		t.Error("a bootstrap without TLS files has a transport socket")
	}
}

func TestGRPCBootstrapWithTLSIsAcceptedByGRPC(t *testing.T) {
	p := grpcParams
	p.TLS = tlsFiles
	out, err := GRPC(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := buildGRPCResolver(out); err != nil {
		t.Fatalf("gRPC rejects the bootstrap: %v\n%s", err, out)
	}
	type files struct {
		Cert string `json:"certificate_file"`
		Key  string `json:"private_key_file"`
		CA   string `json:"ca_certificate_file"`
	}
	var got struct {
		XDSServers []struct {
			ChannelCreds []struct {
				Type   string
				Config files
			} `json:"channel_creds"`
		} `json:"xds_servers"`
		CertificateProviders map[string]struct {
			PluginName string `json:"plugin_name"`
			Config     files
		} `json:"certificate_providers"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	want := files{tlsFiles.Cert, tlsFiles.Key, tlsFiles.CA}
	if creds := got.XDSServers[0].ChannelCreds; len(creds) != 1 || creds[0].Type != "tls" || creds[0].Config != want {
		t.Errorf("channel_creds = %+v, want tls with %+v", creds, want)
	}
	if provider := got.CertificateProviders["default"]; provider.PluginName != "file_watcher" || provider.Config != want {
		t.Errorf("certificate_providers = %+v, want a file_watcher default with %+v", got.CertificateProviders, want)
	}
}

func TestTLSFilesGoTogether(t *testing.T) {
	p := params
	p.TLS = TLSFiles{Cert: "node.pem"}
	if _, err := Envoy(p); err == nil || !strings.Contains(err.Error(), "tls") {
		t.Errorf("a certificate without key and CA: err = %v, want one about the TLS files", err)
	}
}
