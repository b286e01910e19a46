package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"
)

// resourceTypes are the xDS types plan and dump print, with their keys in
// the printed document.
var resourceTypes = []struct{ key, url string }{
	{"listeners", resource.ListenerType},
	{"routes", resource.RouteType},
	{"clusters", resource.ClusterType},
	{"endpoints", resource.EndpointType},
}

// typedResources is one type's section of the printed document.
type typedResources struct {
	Version   string            `json:"version"`
	Resources []json.RawMessage `json:"resources"`
}

func newTypedResources(version string, msgs []proto.Message) (typedResources, error) {
	out := typedResources{Version: version, Resources: make([]json.RawMessage, 0, len(msgs))}
	for _, m := range msgs {
		js, err := protojson.Marshal(m)
		if err != nil {
			return typedResources{}, err
		}
		out.Resources = append(out.Resources, js)
	}
	return out, nil
}

// writeResourceYAML prints doc as YAML, the resources in their proto3 JSON
// form.
func writeResourceYAML(w io.Writer, doc map[string]typedResources) error {
	js, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	out, err := yaml.JSONToYAML(js)
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

// resourceDocument arranges what a client holds (keyed by type URL) for
// printing: every type, each type's resources sorted by name.
func resourceDocument(state map[string]*typeState) (map[string]typedResources, error) {
	doc := map[string]typedResources{}
	for _, t := range resourceTypes {
		st := state[t.url]
		if st == nil {
			st = &typeState{}
		}
		msgs, err := unpackSorted(st.resources)
		if err != nil {
			return nil, err
		}
		if doc[t.key], err = newTypedResources(st.version, msgs); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

func unpackSorted(resources map[string]*anypb.Any) ([]proto.Message, error) {
	msgs := make([]proto.Message, 0, len(resources))
	for _, name := range slices.Sorted(maps.Keys(resources)) {
		m, err := resources[name].UnmarshalNew()
		if err != nil {
			return nil, fmt.Errorf("resource %s: %w", name, err)
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}
