package snapshot

// Defaults for the Envoy socket listener.
const (
	DefaultListenAddress        = "0.0.0.0"
	DefaultListenPort    uint32 = 10000
)

// Options are the translation settings that do not come from the fleet or
// the policy. The zero value is not useful; start from DefaultOptions.
type Options struct {
	// ListenAddress and ListenPort are where the Envoy socket listener binds.
	ListenAddress string
	ListenPort    uint32
}

// Option changes one setting of Options.
type Option func(*Options)

// DefaultOptions are the settings Translate uses when given no Option.
func DefaultOptions() Options {
	return Options{ListenAddress: DefaultListenAddress, ListenPort: DefaultListenPort}
}

// WithListenAddress makes the Envoy socket listener bind address:port.
func WithListenAddress(address string, port uint32) Option {
	return func(o *Options) {
		o.ListenAddress = address
		o.ListenPort = port
	}
}

func buildOptions(opts []Option) Options {
	o := DefaultOptions()
	for _, apply := range opts {
		apply(&o)
	}
	return o
}
