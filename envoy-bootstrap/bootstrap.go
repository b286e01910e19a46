// Package bootstrap owns the bootstrap files that connect data-plane clients
// to the inferxds control plane: an Envoy bootstrap (ADS over gRPC, node
// identity and locality, dynamic listeners and clusters) and a gRPC-Go xDS
// bootstrap for proxyless clients. The templates live next to this file.
//
// It only renders text; it opens no connections and reads no files.
package bootstrap

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"text/template"
)

// XDSClusterName is the static Envoy cluster that points at the control plane.
const XDSClusterName = "xds_cluster"

// DefaultCluster is the node cluster used when none is given.
const DefaultCluster = "inferxds-envoy"

// DefaultAdminPort is Envoy's conventional admin port.
const DefaultAdminPort = 9901

// XDSMode is the ADS protocol variant an Envoy speaks to the control plane.
type XDSMode string

// The two ADS variants: state of the world (every response holds every
// resource of a type) and incremental (only what changed).
const (
	XDSModeSotW  XDSMode = "sotw"
	XDSModeDelta XDSMode = "delta"
)

//go:embed envoy.yaml.tmpl grpc.json.tmpl
var files embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{"quote": quote}).ParseFS(files, "*.tmpl"))

// Params identify one data-plane client and the control plane it talks to.
type Params struct {
	// NodeID is the node's unique id (Envoy --service-node / node.id).
	NodeID string
	// Cluster is the node cluster, a name for the fleet of like proxies.
	Cluster string
	// Zone is the node's locality zone; the control plane groups nodes by it.
	Zone string
	// XDSAddress is the control plane's gRPC address, HOST:PORT.
	XDSAddress string
	// AdminPort is Envoy's admin port on 127.0.0.1 (Envoy only); 0 lets
	// Envoy pick a free port (read it back with --admin-address-path).
	AdminPort uint16
	// XDSMode is the ADS variant Envoy uses (Envoy only; gRPC-Go speaks
	// state of the world); empty means XDSModeSotW.
	XDSMode XDSMode
	// TLS, when set, makes the client speak mutual TLS to the control
	// plane; empty means plaintext (a control plane run with --insecure).
	TLS TLSFiles
}

// TLSFiles are paths, on the client's host, of its PEM certificate (whose
// URI SAN names the node: spiffe://<trust domain>/zone/<zone>/node/<id>),
// its key, and the CA bundle the control plane's certificate chains to.
type TLSFiles struct {
	Cert, Key, CA string
}

func (f TLSFiles) check() error {
	if f == (TLSFiles{}) || f.Cert != "" && f.Key != "" && f.CA != "" {
		return nil
	}
	return errors.New("tls: the certificate, key and CA files go together")
}

type templateData struct {
	Params
	XDSHost        string
	XDSPort        uint16
	XDSClusterName string
	ADSAPIType     string
}

// Envoy renders the Envoy bootstrap YAML.
func Envoy(p Params) ([]byte, error) {
	return render("envoy.yaml.tmpl", p)
}

// GRPC renders the gRPC-Go xDS bootstrap JSON (GRPC_XDS_BOOTSTRAP).
func GRPC(p Params) ([]byte, error) {
	return render("grpc.json.tmpl", p)
}

func render(name string, p Params) ([]byte, error) {
	data, err := p.templateData()
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := templates.ExecuteTemplate(&out, name, data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return out.Bytes(), nil
}

func (p Params) templateData() (templateData, error) {
	if p.Cluster == "" {
		p.Cluster = DefaultCluster
	}
	host, port, err := splitHostPort(p.XDSAddress)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if p.NodeID == "" {
		errs = append(errs, errors.New("node id: must not be empty"))
	}
	apiType, err := adsAPIType(p.XDSMode)
	if err != nil {
		errs = append(errs, err)
	}
	if err := p.TLS.check(); err != nil {
		errs = append(errs, err)
	}
	d := templateData{Params: p, XDSHost: host, XDSPort: port, XDSClusterName: XDSClusterName, ADSAPIType: apiType}
	return d, errors.Join(errs...)
}

// adsAPIType is the ads_config api_type Envoy needs for mode.
func adsAPIType(mode XDSMode) (string, error) {
	switch mode {
	case "", XDSModeSotW:
		return "GRPC", nil
	case XDSModeDelta:
		return "DELTA_GRPC", nil
	}
	return "", fmt.Errorf("xds mode %q: want %s or %s", mode, XDSModeSotW, XDSModeDelta)
}

func splitHostPort(address string) (string, uint16, error) {
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return "", 0, fmt.Errorf("xds address %q: want HOST:PORT: %w", address, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 || host == "" {
		return "", 0, fmt.Errorf("xds address %q: want HOST:PORT with a port in 1..65535", address)
	}
	return host, uint16(port), nil
}

// quote writes s as a JSON string, which is also a valid YAML scalar, so
// any id or zone renders safely in both formats.
func quote(s string) (string, error) {
	b, err := json.Marshal(s)
	return string(b), err
}
