package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	statusv3 "github.com/envoyproxy/go-control-plane/envoy/service/status/v3"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/inferxds/inferxds/xds"
)

// Output formats of status.
const (
	outputTable = "table"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

type statusOptions struct {
	xdsAddress     string
	metricsAddress string
	output         string
	timeout        time.Duration
	// tls is what status presents to an xDS port served with mutual TLS;
	// tokenFile holds the metrics port's bearer token, if it wants one.
	tls       clientTLSFiles
	tokenFile string
}

func newStatusCommand() *cobra.Command {
	var o statusOptions
	cmd := &cobra.Command{
		Use:   "status [MODEL]",
		Short: "Show each connected proxy's sync state (over CSDS), or one model's instances and priorities",
		Long: "Without MODEL: every proxy connected to the control plane at --xds-address, read over the " +
			"Client Status Discovery Service: its zone, client kind, the version it ACKed per type, and " +
			"whether it is synced, stale (and for how long) or rejected the latest config (and why).\n\n" +
			"With MODEL: the model's instances as the control plane at --metrics-address sees them " +
			"(GET /status/models/MODEL): zone, node, tier, role, health, weight, and the EDS priority " +
			"the proxies of each zone give it (- where it is not an endpoint); with serve --dr, the " +
			"DR state applied, the checkpoint each instance reported, and the model's open and recent " +
			"incidents with each stage's time after the fault (or detection).",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(o.output); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			if len(args) == 1 {
				return runModelStatus(ctx, cmd.OutOrStdout(), o, args[0])
			}
			return runProxyStatus(ctx, cmd.OutOrStdout(), o, time.Now())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.xdsAddress, "xds-address", "127.0.0.1:18000", "control plane gRPC (xDS and CSDS) address, HOST:PORT")
	f.StringVar(&o.metricsAddress, "metrics-address", "127.0.0.1:9090", "control plane HTTP address (for status MODEL), HOST:PORT")
	f.StringVarP(&o.output, "output", "o", outputTable, "output format: table, json or yaml")
	f.DurationVar(&o.timeout, "timeout", 5*time.Second, "give up after this long")
	addClientTLSFlags(f, &o.tls)
	f.StringVar(&o.tokenFile, "metrics-token-file", "", "file holding the bearer token serve's metrics port requires (for status MODEL)")
	return cmd
}

func checkOutput(format string) error {
	switch format {
	case outputTable, outputJSON, outputYAML:
		return nil
	}
	return fmt.Errorf("--output %q: must be table, json or yaml", format)
}

// writeOutput prints v as JSON or YAML, or as table prints it.
func writeOutput(w io.Writer, format string, v any, table func(*tabwriter.Writer)) error {
	switch format {
	case outputJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case outputYAML:
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// proxyStatus is one connected proxy as status prints it.
type proxyStatus struct {
	Node   string `json:"node"`
	Zone   string `json:"zone"`
	Client string `json:"client"`
	// Types are in the order listeners, routes, clusters, endpoints.
	Types []typeSync `json:"types"`
}

// typeSync is one type's CSDS status for a proxy.
type typeSync struct {
	Type string `json:"type"`
	// Version is the version the proxy ACKed.
	Version string `json:"version,omitempty"`
	// Status is SYNCED, STALE, ERROR or NOT_SENT.
	Status string `json:"status"`
	// Since, for STALE and ERROR, is when the response the proxy has not
	// ACKed was sent.
	Since  time.Time `json:"since,omitzero"`
	Error  string    `json:"error,omitempty"`
	Failed string    `json:"failedVersion,omitempty"`
}

func runProxyStatus(ctx context.Context, w io.Writer, o statusOptions, now time.Time) error {
	conn, err := o.tls.dial(o.xdsAddress)
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := statusv3.NewClientStatusDiscoveryServiceClient(conn).FetchClientStatus(ctx,
		&statusv3.ClientStatusRequest{ExcludeResourceContents: true})
	if err != nil {
		return fmt.Errorf("CSDS at %s: %w", o.xdsAddress, err)
	}
	proxies := proxyStatuses(resp)
	return writeOutput(w, o.output, proxies, func(tw *tabwriter.Writer) { proxyTable(tw, proxies, now) })
}

func proxyStatuses(resp *statusv3.ClientStatusResponse) []proxyStatus {
	out := []proxyStatus{}
	for _, cc := range resp.GetConfig() {
		zone, client, _ := strings.Cut(cc.GetClientScope(), "/")
		p := proxyStatus{Node: cc.GetNode().GetId(), Zone: zone, Client: client}
		seen := map[string]bool{}
		for _, e := range cc.GetGenericXdsConfigs() {
			typ := xds.TypeName(e.GetTypeUrl())
			if seen[typ] { // one entry per resource; the status is the type's
				continue
			}
			seen[typ] = true
			p.Types = append(p.Types, typeSyncOf(typ, e))
		}
		out = append(out, p)
	}
	return out
}

func typeSyncOf(typ string, e *statusv3.ClientConfig_GenericXdsConfig) typeSync {
	ts := typeSync{Type: typ, Version: e.GetVersionInfo(), Status: e.GetConfigStatus().String()}
	if s := e.GetConfigStatus(); s == statusv3.ConfigStatus_STALE || s == statusv3.ConfigStatus_ERROR {
		ts.Since = e.GetLastUpdated().AsTime()
	}
	ts.Error, ts.Failed = e.GetErrorState().GetDetails(), e.GetErrorState().GetVersionInfo()
	return ts
}

var typeColumns = []struct{ header, typ string }{
	{"LDS", "Listener"}, {"RDS", "RouteConfiguration"}, {"CDS", "Cluster"}, {"EDS", "ClusterLoadAssignment"},
}

func proxyTable(tw *tabwriter.Writer, proxies []proxyStatus, now time.Time) {
	fmt.Fprint(tw, "NODE\tZONE\tCLIENT")
	for _, c := range typeColumns {
		fmt.Fprint(tw, "\t"+c.header)
	}
	fmt.Fprintln(tw, "\tSTATUS")
	for _, p := range proxies {
		fmt.Fprintf(tw, "%s\t%s\t%s", p.Node, cmp.Or(p.Zone, "-"), p.Client)
		for _, c := range typeColumns {
			fmt.Fprint(tw, "\t"+cmp.Or(p.typeSync(c.typ).Version, "-"))
		}
		fmt.Fprintln(tw, "\t"+p.summary(now))
	}
}

func (p proxyStatus) typeSync(typ string) typeSync {
	for _, ts := range p.Types {
		if ts.Type == typ {
			return ts
		}
	}
	return typeSync{Type: typ, Status: statusv3.ConfigStatus_NOT_SENT.String()}
}

// summary is the worst of the proxy's types: a rejected config (with the
// proxy's message), then types behind (for how long), then types never
// sent, else SYNCED.
func (p proxyStatus) summary(now time.Time) string {
	var stale, notSent []string
	var oldest time.Time
	for _, c := range typeColumns {
		ts := p.typeSync(c.typ)
		switch ts.Status {
		case statusv3.ConfigStatus_ERROR.String():
			return fmt.Sprintf("NACKED %s %s: %s", c.header, ts.Failed, ts.Error)
		case statusv3.ConfigStatus_STALE.String():
			stale = append(stale, c.header)
			if oldest.IsZero() || ts.Since.Before(oldest) {
				oldest = ts.Since
			}
		case statusv3.ConfigStatus_NOT_SENT.String():
			notSent = append(notSent, c.header)
		}
	}
	switch {
	case len(stale) > 0:
		return fmt.Sprintf("STALE %s for %s", strings.Join(stale, ","), now.Sub(oldest).Round(time.Second))
	case len(notSent) > 0:
		return "NOT_SENT " + strings.Join(notSent, ",")
	}
	return "SYNCED"
}
