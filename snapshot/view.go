package snapshot

import "cmp"

// Client is the kind of xDS client a view is for; it decides which
// listener the view carries.
type Client uint8

const (
	// ClientAll carries both listeners: what plan, dump and the golden
	// files show.
	ClientAll Client = iota
	// ClientEnvoy carries only the socket listener. Envoy accepts at most
	// one API listener and has no use for it.
	ClientEnvoy
	// ClientGRPC carries only the API listener gRPC proxyless clients ask
	// for.
	ClientGRPC
)

var clientNames = [...]string{ClientAll: "all", ClientEnvoy: "envoy", ClientGRPC: "grpc"}

func (c Client) String() string {
	if int(c) < len(clientNames) {
		return clientNames[c]
	}
	return "unknown"
}

// ParseClient is the Client a name (as String prints it) stands for.
func ParseClient(name string) (Client, bool) {
	for c, n := range clientNames {
		if n == name {
			return Client(c), true
		}
	}
	return 0, false
}

// View is what one set of clients receives alike: the clients' local zone
// ("" for none) and their kind. Every node of a view shares one snapshot.
type View struct {
	Zone   string
	Client Client
}

// String is the view's name in cache keys, metrics and /status, e.g.
// "az-1/envoy"; a view without a zone is "/envoy".
func (v View) String() string { return v.Zone + "/" + v.Client.String() }

// CompareViews orders views by zone, then client kind.
func CompareViews(a, b View) int {
	return cmp.Or(cmp.Compare(a.Zone, b.Zone), cmp.Compare(a.Client, b.Client))
}

// carries says whether a client of this view receives the named listener.
func (c Client) carries(listener string) bool {
	switch c {
	case ClientEnvoy:
		return listener == SocketListenerName
	case ClientGRPC:
		return listener == APIListenerName
	default:
		return true
	}
}
