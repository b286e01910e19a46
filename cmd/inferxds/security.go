package main

import (
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/inferxds/inferxds/xds"
)

// securityConfig is how serve authenticates xDS clients and metrics
// readers, and what it lets one client cost.
type securityConfig struct {
	TLSCert     string `mapstructure:"tlsCert"`
	TLSKey      string `mapstructure:"tlsKey"`
	ClientCA    string `mapstructure:"clientCA"`
	TrustDomain string `mapstructure:"trustDomain"`
	Insecure    bool   `mapstructure:"insecure"`

	MaxNodeBytes              int    `mapstructure:"maxNodeBytes"`
	MaxStreamsPerConnection   int    `mapstructure:"maxStreamsPerConnection"`
	MaxConnectionsPerIdentity int    `mapstructure:"maxConnectionsPerIdentity"`
	MetricsTokenFile          string `mapstructure:"metricsTokenFile"`
}

var securitySettings = []setting{
	{"tls-cert", "tlsCert"},
	{"tls-key", "tlsKey"},
	{"client-ca", "clientCA"},
	{"trust-domain", "trustDomain"},
	{"insecure", "insecure"},
	{"max-node-bytes", "maxNodeBytes"},
	{"max-streams-per-connection", "maxStreamsPerConnection"},
	{"max-connections-per-identity", "maxConnectionsPerIdentity"},
	{"metrics-token-file", "metricsTokenFile"},
}

func addSecurityFlags(f *pflag.FlagSet) {
	f.String("tls-cert", "", "PEM certificate chain xDS is served with (mutual TLS; reloaded when the file changes)")
	f.String("tls-key", "", "PEM private key of --tls-cert")
	f.String("client-ca", "", "PEM CA bundle client certificates must chain to")
	f.String("trust-domain", xds.DefaultTrustDomain,
		"SPIFFE trust domain of node certificates; each names its node as URI SAN spiffe://<trust-domain>/zone/<zone>/node/<node-id>")
	f.Bool("insecure", false, "serve xDS in plaintext to anyone who can connect, with no node identity check (local demos and tests only)")
	f.Int("max-node-bytes", xds.DefaultMaxNodeBytes, "largest node (id, locality, metadata) an xDS request may carry, serialized")
	f.Int("max-streams-per-connection", xds.DefaultMaxStreamsPerConnection, "xDS streams one client connection may hold open")
	f.Int("max-connections-per-identity", xds.DefaultMaxConnectionsPerIdentity,
		"connections with xDS streams one certificate identity (with --insecure: one node id) may hold")
	f.String("metrics-token-file", "", "file holding a bearer token that /metrics and /status require (/healthz and /readyz stay open)")
}

var errNoTransportSecurity = errors.New("serve needs --tls-cert, --tls-key and --client-ca (mutual TLS for xDS), " +
	"or --insecure to serve plaintext with no client authentication (local demos and tests only)")

// xdsServerConfig adds the transport credentials, identity check and
// limits to base.
func (c securityConfig) xdsServerConfig(base xds.ServerConfig, logger *slog.Logger) (xds.ServerConfig, error) {
	base.Limits = xds.Limits{
		MaxNodeBytes: c.MaxNodeBytes, MaxStreamsPerConnection: c.MaxStreamsPerConnection, MaxConnectionsPerIdentity: c.MaxConnectionsPerIdentity,
	}
	tlsFlags := c.TLSCert != "" || c.TLSKey != "" || c.ClientCA != ""
	switch {
	case c.Insecure && tlsFlags:
		return base, errors.New("--insecure cannot be combined with --tls-cert, --tls-key or --client-ca")
	case c.Insecure:
		logger.Warn("serving xDS in plaintext without client authentication (--insecure)")
		return base, nil
	case c.TLSCert == "" || c.TLSKey == "" || c.ClientCA == "":
		return base, errNoTransportSecurity
	case c.TrustDomain == "":
		return base, errors.New("--trust-domain must not be empty")
	}
	creds, err := xds.ServerTLS(xds.TLSFiles{Cert: c.TLSCert, Key: c.TLSKey, ClientCA: c.ClientCA}, logger)
	if err != nil {
		return base, err
	}
	base.GRPCOptions = append(base.GRPCOptions, grpc.Creds(creds))
	base.TrustDomain = c.TrustDomain
	return base, nil
}

// metricsToken reads the bearer token the metrics port requires; "" when
// none is configured.
func (c securityConfig) metricsToken() (string, error) {
	if c.MetricsTokenFile == "" {
		return "", nil
	}
	data, err := os.ReadFile(c.MetricsTokenFile)
	if err != nil {
		return "", fmt.Errorf("metrics token: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("metrics token file %s is empty", c.MetricsTokenFile)
	}
	return token, nil
}

// warnIfExposed says when the metrics port listens beyond loopback with
// nothing guarding it.
func warnIfExposed(logger *slog.Logger, addr net.Addr, token string) {
	tcp, ok := addr.(*net.TCPAddr)
	if ok && !tcp.IP.IsLoopback() && token == "" {
		logger.Warn("the metrics port is reachable beyond this host without --metrics-token-file; /status shows every node and its NACKs",
			"address", addr.String())
	}
}

// requireToken guards every path but the health probes with a bearer
// token; an empty token guards nothing.
func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" ||
			subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) == 1 {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="inferxds"`)
		http.Error(w, "a bearer token is required (see --metrics-token-file)", http.StatusUnauthorized)
	})
}

// clientTLSFiles are the PEM files a client (dump, status) presents to and
// trusts of the control plane; all empty means plaintext.
type clientTLSFiles struct{ cert, key, ca string }

func addClientTLSFlags(f *pflag.FlagSet, files *clientTLSFiles) {
	f.StringVar(&files.cert, "tls-cert", "", "PEM client certificate naming the node (URI SAN spiffe://<trust-domain>/zone/<zone>/node/<node-id>); none: plaintext")
	f.StringVar(&files.key, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&files.ca, "ca", "", "PEM CA bundle the control plane's certificate must chain to")
}

// dial opens a client connection to address, over mutual TLS when files
// name a certificate, else in plaintext.
func (files clientTLSFiles) dial(address string) (*grpc.ClientConn, error) {
	creds, err := files.credentials()
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(address, grpc.WithTransportCredentials(creds))
}

func (files clientTLSFiles) credentials() (credentials.TransportCredentials, error) {
	if files == (clientTLSFiles{}) {
		return insecure.NewCredentials(), nil
	}
	if files.cert == "" || files.key == "" || files.ca == "" {
		return nil, errors.New("--tls-cert, --tls-key and --ca go together")
	}
	pair, err := tls.LoadX509KeyPair(files.cert, files.key)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s with --tls-key %s: %w", files.cert, files.key, err)
	}
	pem, err := os.ReadFile(files.ca)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca %s: no PEM certificate in it", files.ca)
	}
	return credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: roots, MinVersion: tls.VersionTLS12}), nil
}
