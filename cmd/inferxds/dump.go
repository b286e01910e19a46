package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
)

// dumpQuiet is how long dump waits for more after every subscribed type has
// arrived: long enough for a follow-up RDS/EDS response, short for a CLI.
const dumpQuiet = 300 * time.Millisecond

type dumpOptions struct {
	xdsAddress string
	nodeID     string
	zone       string
	delta      bool
	timeout    time.Duration
	tls        clientTLSFiles
}

func newDumpCommand() *cobra.Command {
	var o dumpOptions
	cmd := &cobra.Command{
		Use:   "dump --xds-address HOST:PORT --node-id ID --zone Z",
		Short: "Connect over ADS like a proxy and print what the control plane sends",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDump(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.xdsAddress, "xds-address", "", "control plane gRPC address, HOST:PORT")
	f.StringVar(&o.nodeID, "node-id", "", "node id to present")
	f.StringVar(&o.zone, "zone", "", "locality zone to present (selects the node group)")
	f.BoolVar(&o.delta, "delta", false, "use incremental (Delta) ADS instead of state-of-the-world")
	f.DurationVar(&o.timeout, "timeout", 5*time.Second, "give up after this long")
	addClientTLSFlags(f, &o.tls)
	for _, name := range []string{"xds-address", "node-id", "zone"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

func runDump(ctx context.Context, w io.Writer, o dumpOptions) error {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	conn, err := o.tls.dial(o.xdsAddress)
	if err != nil {
		return err
	}
	defer conn.Close()
	open := openSotW
	if o.delta {
		open = openDelta
	}
	stream, err := open(ctx, conn, nodeOf(o.nodeID, o.zone))
	if err != nil {
		return fmt.Errorf("open ADS stream to %s: %w", o.xdsAddress, err)
	}
	state, fetchErr := fetchResources(ctx, stream, dumpQuiet)
	doc, err := resourceDocument(state)
	if err != nil {
		return err
	}
	if err := writeResourceYAML(w, doc); err != nil {
		return err
	}
	if fetchErr != nil {
		return fmt.Errorf("ADS from %s: %w", o.xdsAddress, fetchErr)
	}
	return nil
}
