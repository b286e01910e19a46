package main

import (
	"errors"

	"github.com/spf13/cobra"

	bootstrap "github.com/inferxds/inferxds/envoy-bootstrap"
)

func newBootstrapCommand() *cobra.Command {
	var p bootstrap.Params
	var grpcFormat bool
	var fleetFile string
	var mode string
	cmd := &cobra.Command{
		Use:   "bootstrap --node-id ID --zone Z --xds-address HOST:PORT",
		Short: "Print an Envoy bootstrap (or, with --grpc, a gRPC xDS bootstrap) for one node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkZoneInFile(fleetFile, p.Zone); err != nil {
				return err
			}
			p.XDSMode = bootstrap.XDSMode(mode)
			render := bootstrap.Envoy
			if grpcFormat {
				if p.XDSMode == bootstrap.XDSModeDelta {
					return errors.New("--xds-mode delta: gRPC clients speak state-of-the-world ADS only")
				}
				render = bootstrap.GRPC
			}
			out, err := render(p)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.NodeID, "node-id", "", "node id, unique per proxy or client")
	f.StringVar(&p.Zone, "zone", "", "the node's zone; it selects the node group (what the node receives)")
	f.StringVar(&p.XDSAddress, "xds-address", "", "control plane gRPC address, HOST:PORT")
	f.StringVar(&p.Cluster, "cluster", bootstrap.DefaultCluster, "node cluster (the fleet of like proxies)")
	f.Uint16Var(&p.AdminPort, "admin-port", bootstrap.DefaultAdminPort, "Envoy admin port on 127.0.0.1")
	f.StringVar(&mode, "xds-mode", string(bootstrap.XDSModeSotW),
		"ADS variant Envoy speaks: sotw (state of the world) or delta (incremental); gRPC clients speak sotw")
	f.BoolVar(&grpcFormat, "grpc", false, "print a gRPC-Go xDS bootstrap JSON (GRPC_XDS_BOOTSTRAP) instead")
	f.StringVar(&fleetFile, "fleet", "", "fleet file; when given, --zone must be one of its zones")
	f.StringVar(&p.TLS.Cert, "tls-cert", "", "path, on the client's host, of its PEM certificate naming the node "+
		"(URI SAN spiffe://<trust-domain>/zone/<zone>/node/<node-id>); none: plaintext to a serve --insecure")
	f.StringVar(&p.TLS.Key, "tls-key", "", "path of the client's PEM private key")
	f.StringVar(&p.TLS.CA, "ca", "", "path of the PEM CA bundle the control plane's certificate chains to")
	for _, name := range []string{"node-id", "zone", "xds-address"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}
