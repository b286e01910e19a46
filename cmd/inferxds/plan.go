package main

import (
	"fmt"
	"io"

	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/inferxds/inferxds/snapshot"
)

func newPlanCommand() *cobra.Command {
	var zone string
	cmd := &cobra.Command{
		Use:   "plan --zone Z",
		Short: "Print every resource (with versions) that one zone's proxies receive",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd.Flags())
			if err != nil {
				return err
			}
			return plan(cmd.OutOrStdout(), cfg, zone)
		},
	}
	f := cmd.Flags()
	f.StringVar(&zone, "zone", "", "the zone (node group) to plan for")
	addSourceFlags(f)
	addEnvoyListenFlag(f)
	addConfigFlag(f)
	_ = cmd.MarkFlagRequired("zone")
	return cmd
}

func plan(w io.Writer, cfg config, zone string) error {
	opts, err := cfg.translateOptions()
	if err != nil {
		return err
	}
	fleet, pol, err := cfg.sources().load()
	if err != nil {
		return err
	}
	if err := checkZone(fleet, zone); err != nil {
		return err
	}
	r, err := snapshot.Translate(fleet, pol, zone, opts...)
	if err != nil {
		return fmt.Errorf("%s: %w", groupLabel(zone), err)
	}
	state, err := plannedState(r)
	if err != nil {
		return err
	}
	doc, err := resourceDocument(state)
	if err != nil {
		return err
	}
	return writeResourceYAML(w, doc)
}

// plannedState holds r as a client would after receiving it, so plan and
// dump print through the same code.
func plannedState(r *snapshot.Resources) (map[string]*typeState, error) {
	sections := []struct {
		typeURL, version string
		msgs             []proto.Message
	}{
		{resource.ListenerType, r.Versions.Listeners, asMessages(r.Listeners)},
		{resource.RouteType, r.Versions.Routes, asMessages(r.Routes)},
		{resource.ClusterType, r.Versions.Clusters, asMessages(r.Clusters)},
		{resource.EndpointType, r.Versions.Endpoints, asMessages(r.Endpoints)},
	}
	state := map[string]*typeState{}
	for _, s := range sections {
		st, err := packTypeState(s.version, s.msgs)
		if err != nil {
			return nil, err
		}
		state[s.typeURL] = st
	}
	return state, nil
}

func packTypeState(version string, msgs []proto.Message) (*typeState, error) {
	st := &typeState{version: version, resources: make(map[string]*anypb.Any, len(msgs))}
	for _, m := range msgs {
		a, err := anypb.New(m)
		if err != nil {
			return nil, err
		}
		st.resources[cache.GetResourceName(m)] = a
	}
	return st, nil
}

func asMessages[M proto.Message](items []M) []proto.Message {
	out := make([]proto.Message, len(items))
	for i, m := range items {
		out[i] = m
	}
	return out
}
