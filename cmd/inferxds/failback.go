package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

type failbackOptions struct {
	metricsAddress string
	zone           string
	tokenFile      string
	timeout        time.Duration
}

func newFailbackCommand() *cobra.Command {
	var o failbackOptions
	cmd := &cobra.Command{
		Use:   "failback --zone ZONE",
		Short: "Return a failed-over zone to service (serve --dr never fails back by itself)",
		Long: "Asks the control plane at --metrics-address (POST /dr/failback?zone=ZONE) to give every " +
			"zone its configured role again after ZONE failed over to the standby zone, and to lift the " +
			"drains of ZONE's failed instances; the DR loop then probes them again like any instance. " +
			"Only the replica that leads can fail back.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.zone == "" {
				return errors.New("--zone is required")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			return runFailback(ctx, cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.zone, "zone", "", "the failed-over zone to return to service")
	f.StringVar(&o.metricsAddress, "metrics-address", "127.0.0.1:9090", "control plane HTTP address, HOST:PORT")
	f.StringVar(&o.tokenFile, "metrics-token-file", "", "file holding the bearer token serve's metrics port requires")
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "give up after this long")
	return cmd
}

func runFailback(ctx context.Context, w io.Writer, o failbackOptions) error {
	token, err := securityConfig{MetricsTokenFile: o.tokenFile}.metricsToken()
	if err != nil {
		return err
	}
	u := "http://" + o.metricsAddress + "/dr/failback?zone=" + url.QueryEscape(o.zone)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("POST %s: %s: %s", u, resp.Status, e.Error)
	}
	_, err = fmt.Fprintf(w, "zone %s failed back\n", o.zone)
	return err
}
