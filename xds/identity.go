package xds

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"
)

// DefaultTrustDomain is the SPIFFE trust domain node certificates name
// unless the server is given another.
const DefaultTrustDomain = "inferxds.local"

// NodeURI is the URI SAN a node's client certificate carries:
// spiffe://<trust domain>/zone/<zone>/node/<node id>. The node id may
// contain slashes; both parts are path-escaped.
func NodeURI(trustDomain, zone, nodeID string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: trustDomain, Path: "/zone/" + zone + "/node/" + nodeID}
}

// certIdentity is the zone and node a client certificate speaks for.
type certIdentity struct {
	uri, zone, node string
}

// identityOf finds the certificate's node URI SAN of trustDomain.
func identityOf(cert *x509.Certificate, trustDomain string) (certIdentity, error) {
	var seen []string
	for _, u := range cert.URIs {
		seen = append(seen, u.String())
		if u.Scheme != "spiffe" || u.Host != trustDomain {
			continue
		}
		rest, ok := strings.CutPrefix(u.Path, "/zone/")
		if !ok {
			continue
		}
		zone, node, ok := strings.Cut(rest, "/node/")
		if ok && zone != "" && node != "" && !strings.Contains(zone, "/") {
			return certIdentity{uri: u.String(), zone: zone, node: node}, nil
		}
	}
	return certIdentity{}, fmt.Errorf("client certificate %q has no URI SAN %s (URI SANs: %v)",
		cert.Subject.String(), NodeURI(trustDomain, "<zone>", "<node-id>"), seen)
}

// mismatch says how a request's node differs from the certificate's, or
// returns "" when they match.
func (id certIdentity) mismatch(nodeID, zone string) (reason, message string) {
	switch {
	case nodeID != id.node:
		reason = RefusedNodeMismatch
	case zone != id.zone:
		reason = RefusedZoneMismatch
	default:
		return "", ""
	}
	return reason, fmt.Sprintf("client certificate %s is for node %q in zone %q; the request names node %q in zone %q",
		id.uri, id.node, id.zone, nodeID, zone)
}
